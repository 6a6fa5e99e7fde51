// The conformance vectors of PROTOCOL.md section 10: the independent sample (copied from
// shared/vectors), our own generated files, and the command-line tool's exit codes.
#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <set>
#include <unistd.h>
#include <sstream>

#include "messages/protobuf_log.h"
#include "overlay/conformance.h"
#include "testdata_path.h"

namespace nodelink::overlay {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t CountPassed(const std::vector<VectorResult>& results) {
  size_t n = 0;
  for (const auto& r : results) n += r.passed() ? 1 : 0;
  return n;
}

TEST_CASE("the independent implementation's sample vectors all pass") {
  messages::SilenceProtobufLogs();
  auto results = VerifyConformanceVectors(ReadFile(testing::TestdataPath("nodelink1-sample.json")));
  REQUIRE(results.ok());
  CHECK(results->size() == 60);
  for (const auto& r : *results) {
    CHECK_MESSAGE(r.passed(), "vector " << r.index << " expected " << r.expect << " got " << r.got
                                        << " " << r.detail);
  }
  MESSAGE("nodelink1-sample.json: " << CountPassed(*results) << "/" << results->size() << " passed");
}

TEST_CASE("generated vectors cover every case and verify") {
  messages::SilenceProtobufLogs();
  auto text = GenerateConformanceVectors(200);
  REQUIRE(text.ok());
  auto results = VerifyConformanceVectors(*text);
  REQUIRE(results.ok());
  CHECK(CountPassed(*results) == 200);
  std::set<std::string> codes;
  for (const auto& r : *results) codes.insert(r.kind + ":" + r.expect);
  for (const char* c : {"sealed:ok", "sealed:DECRYPT_FAILED", "sealed:BAD_SIGNATURE",
                        "sealed:MALFORMED", "sealed:UNKNOWN_TYPE", "setup:ok", "setup:MALFORMED",
                        "setup:BAD_SIGNATURE"}) {
    CHECK_MESSAGE(codes.count(c) == 1, "no generated vector for " << c);
  }
}

TEST_CASE("a wrong expectation is reported, and broken files are errors") {
  auto text = GenerateConformanceVectors(3);
  REQUIRE(text.ok());
  std::string flipped = *text;
  size_t pos = flipped.find("\"expect\": \"ok\"");
  REQUIRE(pos != std::string::npos);
  flipped.replace(pos, 14, "\"expect\": \"DECRYPT_FAILED\"");
  auto results = VerifyConformanceVectors(flipped);
  REQUIRE(results.ok());
  CHECK(CountPassed(*results) == 2);

  CHECK_FALSE(VerifyConformanceVectors("not json").ok());
  CHECK_FALSE(VerifyConformanceVectors(R"({"suite":"other","vectors":[]})").ok());
  CHECK_FALSE(VerifyConformanceVectors(R"({"suite":"nodelink/1","vectors":[{"kind":"sealed"}]})").ok());
  CHECK_FALSE(VerifyConformanceVectors(
                  R"({"suite":"nodelink/1","vectors":[{"kind":"x","expect":"ok"}]})")
                  .ok());
}

TEST_CASE("nodelink-conformance exit codes") {
  std::string tool = testing::BinPath("nodelink-conformance");
  std::string sample = testing::TestdataPath("nodelink1-sample.json");
  CHECK(std::system((tool + " verify -q " + sample + " > /dev/null").c_str()) == 0);
  std::string generated = "/tmp/nodelink-conformance-test-" + std::to_string(::getpid()) + ".json";
  CHECK(std::system((tool + " generate --count 50 -o " + generated).c_str()) == 0);
  CHECK(std::system((tool + " verify -q " + generated).c_str()) == 0);
  std::remove(generated.c_str());
  CHECK(WEXITSTATUS(std::system((tool + " verify /nonexistent.json 2>/dev/null").c_str())) == 1);
  CHECK(WEXITSTATUS(std::system((tool + " --bogus 2>/dev/null").c_str())) == 2);
}

}  // namespace
}  // namespace nodelink::overlay

// nodelink-conformance: checks PROTOCOL.md section 10 vector files, and writes fresh ones.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>

#include "messages/protobuf_log.h"
#include "overlay/conformance.h"

namespace {

int Verify(const std::string& path, bool quiet) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::cerr << "nodelink-conformance: cannot read " << path << "\n";
    return 1;
  }
  std::stringstream text;
  text << in.rdbuf();
  auto results = nodelink::overlay::VerifyConformanceVectors(text.str());
  if (!results.ok()) {
    std::cerr << "nodelink-conformance: " << path << ": " << results.status().message() << "\n";
    return 1;
  }
  size_t failed = 0;
  for (const auto& r : *results) {
    if (r.passed()) continue;
    ++failed;
    std::cout << "FAIL vector " << r.index << " (" << r.kind << "): expected " << r.expect
              << ", got " << r.got << (r.detail.empty() ? "" : " (" + r.detail + ")") << "\n";
  }
  if (!quiet || failed > 0) {
    std::cout << path << ": " << results->size() - failed << "/" << results->size()
              << " vectors match their expected result\n";
  }
  return failed == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  // Negative vectors hold invalid UTF-8 on purpose; protobuf would log each one.
  nodelink::messages::SilenceProtobufLogs();
  CLI::App app{"Checks nodelink/1 conformance vectors (PROTOCOL.md section 10) and writes new ones."};
  app.require_subcommand(1);

  std::string verify_path;
  bool quiet = false;
  CLI::App* verify = app.add_subcommand(
      "verify", "Check every vector of FILE; one line per failure, then a summary. Exit 1 if any "
                "vector's result differs from its \"expect\".");
  verify->add_option("FILE", verify_path, "vector file (JSON)")->required();
  verify->add_flag("-q,--quiet", quiet, "print the summary only when something failed");

  size_t count = 60;
  std::string out_path;
  CLI::App* generate = app.add_subcommand(
      "generate", "Write a vector file from fresh random inputs: positive vectors and negative "
                  "ones for every failure code a vector can express.");
  generate->add_option("--count", count, "number of vectors (default 60)")
      ->check(CLI::Range(size_t{1}, size_t{100000}));
  generate->add_option("-o,--output", out_path, "output file (default: standard output)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }

  if (*verify) return Verify(verify_path, quiet);

  auto text = nodelink::overlay::GenerateConformanceVectors(count);
  if (!text.ok()) {
    std::cerr << "nodelink-conformance: " << text.status().message() << "\n";
    return 1;
  }
  if (out_path.empty()) {
    std::cout << *text;
  } else {
    std::ofstream out(out_path, std::ios::binary | std::ios::trunc);
    out << *text;
    if (!out) {
      std::cerr << "nodelink-conformance: cannot write " << out_path << "\n";
      return 1;
    }
  }
  return 0;
}

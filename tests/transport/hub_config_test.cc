// The daemon's configuration: JSON keys, their types, and the conversion into server options.
#include "transport/hub_config.h"

#include <doctest/doctest.h>

#include <fstream>

#include "process/temp_dir.h"
#include "transport/tls_files.h"

namespace nodelink::transport {
namespace {

std::string WriteJson(const process::TempDir& dir, const std::string& text) {
  const std::string path = dir.File("hub.json");
  std::ofstream(path) << text;
  return path;
}

TEST_CASE("hub config: JSON keys override defaults; errors name the key") {
  process::TempDir dir;
  HubConfig c;
  REQUIRE(LoadHubConfigJson(WriteJson(dir, R"({"federation": "clinics", "members": ["a", "b"],
      "queue_ttl_ms": 5000, "queue": "memory", "insecure": true, "listen": "127.0.0.1:0",
      "metrics_listen": "off", "rate_per_second": 2.5})"),
                            c)
              .ok());
  CHECK(c.federation == "clinics");
  CHECK(c.members == std::vector<std::string>{"a", "b"});
  CHECK(c.queue_ttl_ms == 5000);
  auto o = ToServerOptions(c);
  REQUIRE(o.ok());
  CHECK(o->insecure);
  CHECK(o->queue == QueueBackend::kMemory);
  CHECK(o->members->size() == 2);
  CHECK(o->metrics_listen.empty());
  CHECK(o->rate.envelopes_per_second == 2.5);

  HubConfig bad;
  absl::Status unknown = LoadHubConfigJson(WriteJson(dir, R"({"federaton": "x"})"), bad);
  CHECK(unknown.code() == absl::StatusCode::kInvalidArgument);
  CHECK(unknown.message().find("federaton") != std::string::npos);
  absl::Status type = LoadHubConfigJson(WriteJson(dir, R"({"queue_ttl_ms": "soon"})"), bad);
  CHECK(type.code() == absl::StatusCode::kInvalidArgument);
  CHECK(type.message().find("queue_ttl_ms") != std::string::npos);
  CHECK_FALSE(LoadHubConfigJson(WriteJson(dir, "{not json"), bad).ok());
  CHECK_FALSE(LoadHubConfigJson(WriteJson(dir, "[1, 2]"), bad).ok());
  CHECK(LoadHubConfigJson(dir.File("missing.json"), bad).code() == absl::StatusCode::kNotFound);
}

TEST_CASE("hub config: disk headroom and fault injection (off unless asked; bad specs named)") {
  process::TempDir dir;
  HubConfig c;
  c.federation = "fed";
  c.insecure = true;
  auto plain = ToServerOptions(c);
  REQUIRE(plain.ok());
  CHECK_FALSE(plain->faults.any());
  CHECK(plain->min_free_bytes == 64u << 20);
  REQUIRE(LoadHubConfigJson(WriteJson(dir, R"({"min_free_bytes": 0,
      "inject_faults": "duplicate=0.5,seed=3"})"),
                            c)
              .ok());
  auto faulty = ToServerOptions(c);
  REQUIRE(faulty.ok());
  CHECK(faulty->min_free_bytes == 0);
  CHECK(faulty->faults.duplicate == 0.5);
  CHECK(faulty->faults.seed == 3);
  c.inject_faults = "duplicate=lots";
  absl::Status bad = ToServerOptions(c).status();
  CHECK(bad.code() == absl::StatusCode::kInvalidArgument);
  CHECK(bad.message().find("--inject-faults") != std::string::npos);
}

TEST_CASE("hub config: TLS files are required unless insecure; enumerations are checked") {
  process::TempDir dir;
  HubConfig c;
  c.federation = "fed";
  CHECK(ToServerOptions(c).status().code() == absl::StatusCode::kInvalidArgument);
  c.tls_cert = dir.File("nope.pem");
  c.tls_key = dir.File("nope.key");
  c.tls_ca = dir.File("nope-ca.pem");
  CHECK(ToServerOptions(c).status().code() == absl::StatusCode::kNotFound);
  HubConfig i;
  i.insecure = true;
  i.queue = "redis";
  CHECK(ToServerOptions(i).status().code() == absl::StatusCode::kInvalidArgument);
  i.queue = "sqlite";
  i.sqlite_synchronous = "sometimes";
  CHECK(ToServerOptions(i).status().code() == absl::StatusCode::kInvalidArgument);
}

TEST_CASE("CRL directory: garbage is refused") {
  process::TempDir dir;
  CHECK(WriteCrlDirectory("not a CRL", dir.File("crl")).code() ==
        absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace nodelink::transport

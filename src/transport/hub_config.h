// The nodelink-hub daemon's configuration: plain values (file paths, numbers) that come from an
// optional JSON file and then from command-line flags, turned into HubServerOptions by reading
// the files. docs/hub-operations.md lists every key.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "transport/hub_server.h"

namespace nodelink::transport {

struct HubConfig {
  std::string listen = "127.0.0.1:7443";
  std::string metrics_listen = "127.0.0.1:9464";  // "" or "off" disables the endpoint
  std::string federation;
  std::string hub_id = "nodelink-hub";
  std::string tls_cert, tls_key, tls_ca, tls_crl;  // PEM file paths
  bool insecure = false;
  std::vector<std::string> members;  // empty = any participant with a valid certificate
  uint64_t max_envelope_bytes = 16 << 20;
  uint64_t queue_ttl_ms = 3'600'000;
  uint64_t dedup_window_ms = 0;
  uint64_t queue_max_count = 100'000;
  uint64_t queue_max_bytes = 1ull << 30;
  uint32_t default_max_in_flight = 128;
  uint32_t max_in_flight_cap = 4096;
  double rate_per_second = 0;
  double rate_burst = 0;
  std::string data_dir;
  std::string queue = "sqlite";               // "sqlite" | "memory"
  std::string sqlite_synchronous = "normal";  // "normal" | "full"
  uint64_t expiry_interval_ms = 1000;
  uint64_t min_free_bytes = 64 << 20;
  std::string port_file;
  std::string log_level = "info";
  std::string inject_faults;  // tests only: fault_injection.h; empty = none
};

// Overwrites the fields of `config` named in the JSON object at `path` (keys as in HubConfig,
// e.g. "listen", "tls_cert", "members"). Errors: unreadable file, invalid JSON, unknown key, wrong
// type — each naming the key.
[[nodiscard]] absl::Status LoadHubConfigJson(const std::string& path, HubConfig& config);

// Reads the TLS files and checks the enumerations. Errors name the flag to fix.
[[nodiscard]] absl::StatusOr<HubServerOptions> ToServerOptions(const HubConfig& config);

}  // namespace nodelink::transport

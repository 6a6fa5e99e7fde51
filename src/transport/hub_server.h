// The hub in a process: nodelink.v1.Hub over gRPC's asynchronous API, grpc.health.v1.Health and
// server reflection (v1alpha, what gRPC 1.51 serves), the durable queue, the expiry timer and the
// metrics endpoint. Used by the nodelink-hub daemon, by tests and by benchmarks.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/secret_bytes.h"
#include "transport/metrics.h"
#include "transport/queue_store.h"
#include "transport/rate_limiter.h"
#include "transport/sqlite_queue_store.h"

namespace nodelink::transport {

// PEM material of the hub's TLS endpoint.
struct HubServerTls {
  std::string cert_chain_pem;  // hub certificate (serverAuth, the names nodes dial) first
  core::SecretBytes key_pem;   // its private key
  std::string ca_pem;          // the federation CA(s): client certificates must chain to it
  std::string crl_pem;         // optional: CRLs of the CA(s); listed client certificates refused
};

// Per-stream backpressure (PROTOCOL 4, last rules): a participant that sends but does not read is
// no longer read from once what waits for it passes these bounds; reading resumes below them.
struct StreamLimits {
  size_t max_outbound_frames = 4096;  // frames queued for writing to the participant
  uint64_t max_outbound_bytes = 64 << 20;
  size_t max_unanswered = 2048;  // envelopes read, not yet answered
  uint64_t max_unanswered_bytes = 64 << 20;
};

enum class QueueBackend {
  kSqlite,  // durable (data_dir/queue.db)
  kMemory,  // NOT durable: a restart loses every queued envelope; for measurements and tests
};

struct HubServerOptions {
  // "host:port"; port 0 picks a free one (read it back with port()).
  std::string listen_address = "127.0.0.1:0";
  // TLS with client certificates (PROTOCOL 4). Exactly one of `tls` and `insecure` must be set.
  std::optional<HubServerTls> tls;
  // Development only: no TLS, identity taken from Hello. Refuses a non-loopback address and logs
  // a warning at start.
  bool insecure = false;

  std::string federation;
  std::string hub_id = "nodelink-hub";
  // Node ids allowed to connect and to receive; nullopt = any id with a valid certificate (then
  // envelopes for any well-formed id are queued).
  std::optional<std::vector<std::string>> members;

  uint64_t max_envelope_bytes = 16 << 20;         // Envelope.ByteSizeLong(), announced in Welcome
  uint64_t queue_ttl_ms = 3'600'000;              // announced in Welcome
  uint64_t dedup_window_ms = 0;                   // 0 = queue_ttl_ms (never less)
  QueueBounds queue_bounds{100'000, 1ull << 30};  // per recipient
  uint32_t default_max_in_flight = 128;
  uint32_t max_in_flight_cap = 4096;
  uint64_t max_in_flight_bytes = 64 << 20;
  RateLimit rate;  // per sender; default unlimited

  QueueBackend queue = QueueBackend::kSqlite;
  std::string data_dir;  // required for kSqlite; also holds the CRL directory gRPC reads
  SqliteSynchronous synchronous = SqliteSynchronous::kNormal;
  uint64_t min_free_bytes = 64 << 20;  // disk headroom below which envelopes are refused
  size_t max_commit_batch = 256;

  core::Clock* clock = nullptr;        // nullptr = system clock; TTL and Welcome read it
  uint64_t expiry_interval_ms = 1000;  // how often the expiry pass runs; 0 = only ExpireNow()

  std::string metrics_listen;  // "host:port" for Prometheus text; empty = no endpoint
  FaultOptions faults;         // tests only: a misbehaving relay (fault_injection.h)
  StreamLimits stream_limits;
};

class HubServer {
 public:
  // Validates the options, opens the queue, builds and starts the gRPC server. Errors:
  // INVALID_ARGUMENT for inconsistent options (insecure on a non-loopback address, no TLS and no
  // insecure, missing federation or data dir), the store's errors, UNAVAILABLE if the address
  // cannot be bound (in use: SO_REUSEPORT is off).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<HubServer>> Start(HubServerOptions options);
  ~HubServer();  // Shutdown()

  // The bound port and "host:port" of the hub and of the metrics endpoint (0 / "" if none).
  int port() const;
  std::string address() const;
  int metrics_port() const;

  // Health NOT_SERVING, ends every stream (UNAVAILABLE), waits up to `grace` for in-flight writes,
  // then stops the server, runs what the committer holds and closes the database. Idempotent.
  // Thread-safe, but not from a signal handler.
  void Shutdown(std::chrono::milliseconds grace = std::chrono::seconds(2));

  // One expiry pass now (tests use it with a ManualClock). Returns the expired envelope count.
  [[nodiscard]] absl::StatusOr<uint64_t> ExpireNow();

  HubMetricsSnapshot counters() const;
  std::string MetricsText() const;

  class Impl;

 private:
  explicit HubServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nodelink::transport

// nodelink-hub: the relay daemon (PROTOCOL.md section 4), and `nodelink-hub health`, a standard
// grpc.health.v1 check for operators (Debian ships no grpc_health_probe). A thin main: parse,
// call the transport library, print, exit 0 (ok), 1 (operation failed) or 2 (bad usage).
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "CLI/CLI.hpp"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"
#include "transport/hub_config.h"
#include "transport/hub_server.h"
#include "transport/library_logs.h"
#include "transport/probe.h"

namespace {

using nodelink::transport::HubConfig;

constexpr const char* kDescription =
    "nodelink-hub: relays sealed envelopes between the participants of one federation.\n"
    "Participants authenticate with TLS client certificates issued by the federation CA (their\n"
    "identity is the certificate's nodelink://<federation>/<node> URI). Envelopes are queued\n"
    "durably (SQLite, WAL) until their recipient acknowledges them. Also serves\n"
    "grpc.health.v1.Health and server reflection (v1alpha), and Prometheus metrics on a\n"
    "separate address. Flags override the JSON file given with --config. See\n"
    "docs/hub-operations.md.";

// --config is read before the other flags, so that flags override the file.
std::string FindConfigPath(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--config" && i + 1 < argc) return argv[i + 1];
    if (a.starts_with("--config=")) return a.substr(9);
  }
  return "";
}

bool WritePortFile(const std::string& path, int port) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return false;
    out << port << "\n";
    if (!out.flush()) return false;
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);  // atomic: a reader never sees a partial file
  return !ec;
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

int Serve(const HubConfig& config) {
  // No core dumps: the process holds the hub's TLS key (STYLE: secrets and C handles).
  prctl(PR_SET_DUMPABLE, 0);
  // SIGTERM/SIGINT are taken by sigwait in the main thread; blocked before any thread starts so
  // that every thread inherits the mask. Shutdown never runs in a signal handler.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<nodelink::transport::HubServerOptions> options =
      nodelink::transport::ToServerOptions(config);
  if (!options.ok()) {
    std::cerr << "nodelink-hub: " << options.status().message() << "\n";
    return 2;
  }
  absl::StatusOr<std::unique_ptr<nodelink::transport::HubServer>> server =
      nodelink::transport::HubServer::Start(*std::move(options));
  if (!server.ok()) {
    std::cerr << "nodelink-hub: " << server.status().message() << "\n";
    return server.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  if (!config.port_file.empty() && !WritePortFile(config.port_file, (*server)->port())) {
    std::cerr << "nodelink-hub: cannot write --port-file " << config.port_file << "\n";
    return 1;
  }
  std::cout << "nodelink-hub: listening on " << (*server)->address() << std::endl;
  if ((*server)->metrics_port() != 0) {
    const std::string& m = config.metrics_listen;
    std::cout << "nodelink-hub: metrics on http://" << m.substr(0, m.rfind(':')) << ":"
              << (*server)->metrics_port() << "/metrics" << std::endl;
  }
  int sig = 0;
  sigwait(&signals, &sig);
  spdlog::info("hub: signal {} received; stopping (finishing writes, closing the database)", sig);
  (*server)->Shutdown(std::chrono::seconds(2));
  server->reset();
  std::cout << "nodelink-hub: stopped" << std::endl;
  return 0;
}

struct HealthArgs {
  std::string target, ca, cert, key, service, target_name;
  int timeout_ms = 5000;
};

int Health(const HealthArgs& a) {
  nodelink::transport::ProbeOptions probe;
  probe.target = a.target;
  probe.timeout = std::chrono::milliseconds(a.timeout_ms);
  probe.tls_target_name_override = a.target_name;
  if (!a.ca.empty()) {
    nodelink::transport::TlsMaterial tls;
    absl::StatusOr<std::string> ca = ReadFile(a.ca);
    if (!ca.ok()) {
      std::cerr << "nodelink-hub health: " << ca.status().message() << "\n";
      return 2;
    }
    tls.ca_pem = *ca;
    if (!a.cert.empty()) {
      absl::StatusOr<std::string> cert = ReadFile(a.cert), key = ReadFile(a.key);
      if (!cert.ok() || !key.ok()) {
        std::cerr << "nodelink-hub health: cannot read --cert/--key\n";
        return 2;
      }
      tls.cert_chain_pem = *cert;
      tls.key_pem = nodelink::core::SecretBytes::CopyOf(nodelink::AsBytes(*key));
      nodelink::core::WipeString(*key);
    }
    probe.tls = std::move(tls);
  }
  absl::StatusOr<nodelink::transport::ServingStatus> status =
      nodelink::transport::CheckHealth(probe, a.service);
  if (!status.ok()) {
    std::cout << "UNREACHABLE (" << status.status().ToString() << ")\n";
    return 1;
  }
  static constexpr const char* kNames[] = {"UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"};
  std::cout << kNames[static_cast<int>(*status)] << "\n";
  return *status == nodelink::transport::ServingStatus::kServing ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  spdlog::set_default_logger(spdlog::stderr_logger_mt("nodelink-hub"));
  nodelink::transport::RouteLibraryLogsToSpdlog();

  HubConfig config;
  const std::string config_path = FindConfigPath(argc, argv);
  if (!config_path.empty()) {
    if (absl::Status s = nodelink::transport::LoadHubConfigJson(config_path, config); !s.ok()) {
      std::cerr << "nodelink-hub: " << s.message() << "\n";
      return 2;
    }
  }

  CLI::App app{kDescription, "nodelink-hub"};
  app.set_version_flag("--version",
                       std::string("nodelink-hub ") + NODELINK_VERSION + " (protocol nodelink/1)");
  app.require_subcommand(0, 1);
  app.footer(
      "Metrics (Prometheus text on --metrics-listen, GET /metrics):\n"
      "  nodelink_hub_connected_participants, nodelink_hub_envelopes_accepted_total,\n"
      "  nodelink_hub_envelopes_rejected_total{code}, nodelink_hub_envelopes_delivered_total,\n"
      "  nodelink_hub_redeliveries_total, nodelink_hub_queued_bytes, nodelink_hub_queued_items,\n"
      "  nodelink_hub_commits_total, nodelink_hub_commit_appends_total (mean batch), ... (all in\n"
      "  docs/hub-operations.md).\n"
      "Signals: SIGTERM/SIGINT stop gracefully (health NOT_SERVING, streams ended, queue\n"
      "committed, database closed). Exit codes: 0 ok, 1 failed, 2 bad usage.");
  std::string ignored_config;
  app.add_option("--config", ignored_config,
                 "JSON file with any of the keys below (snake_case, e.g. \"tls_cert\"); flags "
                 "given on the command line override it");
  app.add_option("--listen", config.listen, "Address to serve gRPC on, host:port (port 0 = any)")
      ->capture_default_str();
  app.add_option("--federation", config.federation, "Federation name this hub serves (required)");
  app.add_option("--hub-id", config.hub_id, "Name announced in Welcome")->capture_default_str();
  app.add_option("--tls-cert", config.tls_cert,
                 "Hub certificate chain, PEM (extendedKeyUsage serverAuth, the names nodes dial)");
  app.add_option("--tls-key", config.tls_key, "Hub private key, PEM");
  app.add_option("--tls-ca", config.tls_ca,
                 "Federation CA certificate(s), PEM: participant certificates must chain to it");
  app.add_option("--tls-crl", config.tls_crl,
                 "CRL(s) of the CA, PEM: listed participant certificates are refused");
  app.add_flag("--insecure", config.insecure,
               "DEVELOPMENT ONLY: no TLS, identity taken from Hello; refuses non-loopback "
               "addresses and warns at start");
  app.add_option("--member", config.members,
                 "A node id allowed to connect and receive (repeat); none = any participant with "
                 "a valid certificate");
  app.add_option("--max-envelope-bytes", config.max_envelope_bytes,
                 "Largest serialized Envelope accepted (TOO_LARGE above), announced in Welcome")
      ->capture_default_str();
  app.add_option("--queue-ttl-ms", config.queue_ttl_ms,
                 "Time to live of a queued envelope; then it is deleted and its sender gets "
                 "Rejected{EXPIRED}")
      ->capture_default_str();
  app.add_option("--dedup-window-ms", config.dedup_window_ms,
                 "How long (sender, message_id) is remembered to drop resends; 0 = the TTL "
                 "(never less)")
      ->capture_default_str();
  app.add_option("--queue-max-count", config.queue_max_count,
                 "Envelopes queued per recipient before QUEUE_FULL (0 = unbounded)")
      ->capture_default_str();
  app.add_option("--queue-max-bytes", config.queue_max_bytes,
                 "Bytes queued per recipient before QUEUE_FULL (0 = unbounded)")
      ->capture_default_str();
  app.add_option("--default-max-in-flight", config.default_max_in_flight,
                 "Envelopes pushed before a Delivered, when Hello asks for 0")
      ->capture_default_str();
  app.add_option("--max-in-flight-cap", config.max_in_flight_cap,
                 "Upper bound on a participant's Hello.max_in_flight")
      ->capture_default_str();
  app.add_option("--rate-per-second", config.rate_per_second,
                 "Envelopes per second per sender before RATE_LIMITED (0 = unlimited)")
      ->capture_default_str();
  app.add_option("--rate-burst", config.rate_burst,
                 "Token-bucket size of the rate limit (0 = one second's worth)")
      ->capture_default_str();
  app.add_option("--data-dir", config.data_dir,
                 "Directory of the durable queue (queue.db) and the CRL copy gRPC reads");
  app.add_option("--queue", config.queue,
                 "sqlite (durable) or memory (NOT durable: a restart loses queued envelopes; for "
                 "measurements)")
      ->capture_default_str();
  app.add_option("--sqlite-synchronous", config.sqlite_synchronous,
                 "normal: an Accepted envelope survives a killed hub but not power loss; full: "
                 "survives power loss too (one fsync per group commit)")
      ->capture_default_str();
  app.add_option("--min-free-bytes", config.min_free_bytes,
                 "Refuse envelopes (Rejected QUEUE_FULL) when less would stay free on the data "
                 "directory's disk, so that the queue can always drain; 0 = no check")
      ->capture_default_str();
  app.add_option("--expiry-interval-ms", config.expiry_interval_ms,
                 "How often expired envelopes are swept")
      ->capture_default_str();
  app.add_option("--metrics-listen", config.metrics_listen,
                 "Address of the Prometheus text endpoint (GET /metrics); \"off\" disables it")
      ->capture_default_str();
  app.add_option("--port-file", config.port_file,
                 "Write the bound gRPC port to this file once serving (for scripts and tests)");
  app.add_option("--log-level", config.log_level, "trace, debug, info, warn, error")
      ->capture_default_str();
  app.add_option("--inject-faults", config.inject_faults,
                 "TESTS ONLY: misbehave on purpose with sealed messages pushed to recipients, "
                 "e.g. drop=0.01,duplicate=0.02,reorder=0.05,delay=0.01,delay-ms=50,"
                 "corrupt=0.01,seed=7 (probabilities; off by default)");

  HealthArgs health;
  CLI::App* health_cmd = app.add_subcommand(
      "health",
      "Standard grpc.health.v1.Health/Check against a hub; prints SERVING and exits 0, "
      "else prints the status and exits 1");
  health_cmd->add_option("--target", health.target, "host:port of the hub")->required();
  health_cmd->add_option("--ca", health.ca,
                         "CA of the hub certificate, PEM (omit: plaintext, "
                         "loopback only)");
  health_cmd->add_option("--cert", health.cert, "Client certificate, PEM (optional)");
  health_cmd->add_option("--key", health.key, "Its key, PEM");
  health_cmd->add_option("--service", health.service,
                         "Service to check (\"\" = the server, or nodelink.v1.Hub)");
  health_cmd->add_option("--timeout-ms", health.timeout_ms, "Deadline")->capture_default_str();
  health_cmd->add_option("--tls-target-name", health.target_name,
                         "Name to expect in the hub certificate if it differs from the target");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  spdlog::set_level(spdlog::level::from_str(config.log_level));
  if (health_cmd->parsed()) return Health(health);
  if (config.federation.empty()) {
    std::cerr << "nodelink-hub: --federation is required (see --help)\n";
    return 2;
  }
  return Serve(config);
}

#include "transport/hub_config.h"

#include <fstream>
#include <sstream>

#include "core/status.h"
#include "nlohmann/json.hpp"

namespace nodelink::transport {

namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(std::string("cannot read ") + flag + " file " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

template <typename T>
void Get(const nlohmann::json& j, const char* key, T& out) {
  out = j.at(key).get<T>();
}

}  // namespace

absl::Status LoadHubConfigJson(const std::string& path, HubConfig& c) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read config file " + path);
  std::string current_key;
  try {
    const nlohmann::json j = nlohmann::json::parse(in);
    if (!j.is_object()) return absl::InvalidArgumentError(path + ": expected a JSON object");
    for (auto it = j.begin(); it != j.end(); ++it) {
      current_key = it.key();
      const std::string& k = current_key;
      if (k == "listen")
        Get(j, "listen", c.listen);
      else if (k == "metrics_listen")
        Get(j, "metrics_listen", c.metrics_listen);
      else if (k == "federation")
        Get(j, "federation", c.federation);
      else if (k == "hub_id")
        Get(j, "hub_id", c.hub_id);
      else if (k == "tls_cert")
        Get(j, "tls_cert", c.tls_cert);
      else if (k == "tls_key")
        Get(j, "tls_key", c.tls_key);
      else if (k == "tls_ca")
        Get(j, "tls_ca", c.tls_ca);
      else if (k == "tls_crl")
        Get(j, "tls_crl", c.tls_crl);
      else if (k == "insecure")
        Get(j, "insecure", c.insecure);
      else if (k == "members")
        Get(j, "members", c.members);
      else if (k == "max_envelope_bytes")
        Get(j, "max_envelope_bytes", c.max_envelope_bytes);
      else if (k == "queue_ttl_ms")
        Get(j, "queue_ttl_ms", c.queue_ttl_ms);
      else if (k == "dedup_window_ms")
        Get(j, "dedup_window_ms", c.dedup_window_ms);
      else if (k == "queue_max_count")
        Get(j, "queue_max_count", c.queue_max_count);
      else if (k == "queue_max_bytes")
        Get(j, "queue_max_bytes", c.queue_max_bytes);
      else if (k == "default_max_in_flight")
        Get(j, "default_max_in_flight", c.default_max_in_flight);
      else if (k == "max_in_flight_cap")
        Get(j, "max_in_flight_cap", c.max_in_flight_cap);
      else if (k == "rate_per_second")
        Get(j, "rate_per_second", c.rate_per_second);
      else if (k == "rate_burst")
        Get(j, "rate_burst", c.rate_burst);
      else if (k == "data_dir")
        Get(j, "data_dir", c.data_dir);
      else if (k == "queue")
        Get(j, "queue", c.queue);
      else if (k == "sqlite_synchronous")
        Get(j, "sqlite_synchronous", c.sqlite_synchronous);
      else if (k == "expiry_interval_ms")
        Get(j, "expiry_interval_ms", c.expiry_interval_ms);
      else if (k == "port_file")
        Get(j, "port_file", c.port_file);
      else if (k == "log_level")
        Get(j, "log_level", c.log_level);
      else if (k == "min_free_bytes")
        Get(j, "min_free_bytes", c.min_free_bytes);
      else if (k == "inject_faults")
        Get(j, "inject_faults", c.inject_faults);
      else
        return absl::InvalidArgumentError(path + ": unknown key \"" + k + "\"");
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        path + (current_key.empty() ? "" : ": key \"" + current_key + "\"") + ": " + e.what());
  }
  return absl::OkStatus();
}

absl::StatusOr<HubServerOptions> ToServerOptions(const HubConfig& c) {
  HubServerOptions o;
  o.listen_address = c.listen;
  o.metrics_listen = c.metrics_listen == "off" ? "" : c.metrics_listen;
  o.federation = c.federation;
  o.hub_id = c.hub_id;
  o.insecure = c.insecure;
  if (!c.insecure) {
    if (c.tls_cert.empty() || c.tls_key.empty() || c.tls_ca.empty()) {
      return absl::InvalidArgumentError(
          "give --tls-cert, --tls-key and --tls-ca (or --insecure for loopback development)");
    }
    HubServerTls tls;
    absl::StatusOr<std::string> cert = ReadFile(c.tls_cert, "--tls-cert");
    if (!cert.ok()) return cert.status();
    tls.cert_chain_pem = *std::move(cert);
    absl::StatusOr<std::string> key = ReadFile(c.tls_key, "--tls-key");
    if (!key.ok()) return key.status();
    tls.key_pem = core::SecretBytes::CopyOf(AsBytes(*key));
    core::WipeString(*key);
    absl::StatusOr<std::string> ca = ReadFile(c.tls_ca, "--tls-ca");
    if (!ca.ok()) return ca.status();
    tls.ca_pem = *std::move(ca);
    if (!c.tls_crl.empty()) {
      absl::StatusOr<std::string> crl = ReadFile(c.tls_crl, "--tls-crl");
      if (!crl.ok()) return crl.status();
      tls.crl_pem = *std::move(crl);
    }
    o.tls = std::move(tls);
  } else if (!c.tls_cert.empty() || !c.tls_key.empty()) {
    return absl::InvalidArgumentError("--insecure and TLS files exclude each other");
  }
  if (!c.members.empty()) o.members = c.members;
  o.max_envelope_bytes = c.max_envelope_bytes;
  o.queue_ttl_ms = c.queue_ttl_ms;
  o.dedup_window_ms = c.dedup_window_ms;
  o.queue_bounds = QueueBounds{c.queue_max_count, c.queue_max_bytes};
  o.default_max_in_flight = c.default_max_in_flight;
  o.max_in_flight_cap = c.max_in_flight_cap;
  o.rate = RateLimit{c.rate_per_second, c.rate_burst};
  o.data_dir = c.data_dir;
  if (c.queue == "sqlite") {
    o.queue = QueueBackend::kSqlite;
  } else if (c.queue == "memory") {
    o.queue = QueueBackend::kMemory;
  } else {
    return absl::InvalidArgumentError("--queue must be sqlite or memory");
  }
  if (c.sqlite_synchronous == "normal") {
    o.synchronous = SqliteSynchronous::kNormal;
  } else if (c.sqlite_synchronous == "full") {
    o.synchronous = SqliteSynchronous::kFull;
  } else {
    return absl::InvalidArgumentError("--sqlite-synchronous must be normal or full");
  }
  o.expiry_interval_ms = c.expiry_interval_ms;
  o.min_free_bytes = c.min_free_bytes;
  if (!c.inject_faults.empty()) {
    NL_ASSIGN_OR_RETURN(o.faults, ParseFaultSpec(c.inject_faults));
  }
  return o;
}

}  // namespace nodelink::transport

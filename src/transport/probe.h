// Standard gRPC probes of a hub, without generated code: grpc.health.v1.Health/Check and the
// v1alpha reflection service's list_services (IMPLEMENTATION-NOTES 3). Debian ships no
// grpc_health_probe or grpcurl; `nodelink-hub health` and the tests use these.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "transport/hub_client.h"

namespace nodelink::transport {

struct ProbeOptions {
  std::string target;              // "host:port"
  std::optional<TlsMaterial> tls;  // CA required; a client certificate is optional (the hub
                                   // serves health and reflection without one)
  std::string tls_target_name_override;
  std::chrono::milliseconds timeout{5000};
};

enum class ServingStatus { kUnknown = 0, kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// Calls grpc.health.v1.Health/Check for `service` ("" = the whole server). Errors: the RPC's
// status (UNAVAILABLE when unreachable, NOT_FOUND for an unknown service), or DATA_LOSS for an
// unparsable response.
[[nodiscard]] absl::StatusOr<ServingStatus> CheckHealth(const ProbeOptions& options,
                                                        const std::string& service);

// The services the server lists through grpc.reflection.v1alpha.ServerReflection.
[[nodiscard]] absl::StatusOr<std::vector<std::string>> ListServices(const ProbeOptions& options);

}  // namespace nodelink::transport

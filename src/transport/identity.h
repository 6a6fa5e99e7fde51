// A participant's identity from its TLS certificate (PROTOCOL.md sections 3 and 4).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace nodelink::transport {

inline constexpr std::string_view kParticipantUriScheme = "nodelink://";

// The node id of a participant whose certificate carries exactly the URI SANs `peer_uris` (gRPC's
// `peer_uri` auth property, one value per URI SAN). Exactly one of them must start with
// "nodelink://"; it must be exactly "nodelink://<federation>/<node-id>" with `federation` equal to
// the hub's and a node id matching the name pattern, compared as bytes (no normalisation).
// Errors: UNAUTHENTICATED, saying what was wrong (no certificate, several nodelink URIs, another
// federation, bad node id).
[[nodiscard]] absl::StatusOr<std::string> NodeIdFromPeerUris(
    const std::vector<std::string>& peer_uris, std::string_view federation);

// The URI a participant certificate carries: "nodelink://<federation>/<node_id>".
std::string ParticipantUri(std::string_view federation, std::string_view node_id);

// True for a loopback host ("127.x.y.z", "[::1]", "::1", "localhost") in a "host:port" address:
// the only addresses the insecure development mode may use (PROTOCOL 4).
bool IsLoopbackAddress(std::string_view address);

}  // namespace nodelink::transport

// Pin policies of PROTOCOL.md section 3, and the same-issuer check that tells an operator when
// `ca` and `tofu` do not protect against the hub.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"

namespace nodelink::keys {

enum class PinPolicy {
  kCa,      // any certificate valid under the federation CA
  kTofu,    // the first key accepted for a node id is recorded; a different one is KEY_CHANGED
  kPinned,  // only keys whose SPKI fingerprint an operator listed
};
inline constexpr PinPolicy kDefaultPinPolicy = PinPolicy::kTofu;

std::string_view PinPolicyName(PinPolicy policy);  // "ca", "tofu", "pinned"
[[nodiscard]] absl::StatusOr<PinPolicy> ParsePinPolicy(std::string_view name);

// True if the hub's certificate and the participant chain share an issuer: the hub certificate's
// issuer name or authority key id equals that of a certificate of the participant chain. Then
// whoever runs that CA can certify any node id while also running the hub (PROTOCOL.md section
// 3). InvalidArgument if a certificate does not parse. Thread-safe.
[[nodiscard]] absl::StatusOr<bool> SharesIssuer(ByteView hub_cert_der,
                                                const std::vector<Bytes>& participant_chain_der);

// The operator warning of PROTOCOL.md section 3, or nullopt: non-empty only when the policy is
// `ca` or `tofu` and SharesIssuer is true. A certificate that does not parse gives no warning
// (callers report parse errors themselves). For `nodelink-keys show` and the node daemon.
std::optional<std::string> SameIssuerWarning(PinPolicy policy, ByteView hub_cert_der,
                                             const std::vector<Bytes>& participant_chain_der);

}  // namespace nodelink::keys

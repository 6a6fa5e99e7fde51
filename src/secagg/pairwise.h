// PAIRWISE_KEYS (PROTOCOL.md section 8): for each peer P, HKDF-SHA256(IKM = ECDH(own context
// key, P's context key), salt = SHA-256(lp(researcher) || lp(context_id)), info = "nodelink/1
// pairwise" || lp(min(id, P)) || lp(max(id, P)), L = 32).
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "core/ec.h"
#include "core/secret_bytes.h"

namespace nodelink::secagg {

[[nodiscard]] absl::StatusOr<core::SecretBytes> DerivePairwiseKey(
    const core::EcPrivateKey& own_context_key, ByteView peer_public_point,
    std::string_view researcher, std::string_view context_id, std::string_view self,
    std::string_view peer);

}  // namespace nodelink::secagg

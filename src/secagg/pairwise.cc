#include "secagg/pairwise.h"

#include "core/hkdf.h"
#include "core/status.h"
#include "messages/canonical.h"

namespace nodelink::secagg {

absl::StatusOr<core::SecretBytes> DerivePairwiseKey(const core::EcPrivateKey& own_context_key,
                                                    ByteView peer_public_point,
                                                    std::string_view researcher,
                                                    std::string_view context_id,
                                                    std::string_view self, std::string_view peer) {
  NL_ASSIGN_OR_RETURN(core::EcPublicKey peer_key, core::EcPublicKey::FromPoint(peer_public_point));
  NL_ASSIGN_OR_RETURN(core::SecretBytes z, core::EcdhP256(own_context_key, peer_key));
  return core::HkdfSha256(z, messages::PairwiseKeySalt(researcher, context_id),
                          messages::PairwiseKeyInfo(self, peer), 32);
}

}  // namespace nodelink::secagg

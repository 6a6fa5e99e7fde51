#include "secagg/params.h"

#include <algorithm>

#include "core/encoding.h"
#include "core/hmac.h"
#include "messages/canonical.h"
#include "messages/names.h"
#include "secagg/ring.h"

namespace nodelink::secagg {

uint64_t ElementsBytes(const v1::SecaggSetupRequest& request) {
  return static_cast<uint64_t>(request.element_count()) * (request.modulus_bits() / 8);
}

std::optional<Refusal> CheckSetupRequest(const v1::SecaggSetupRequest& r,
                                         std::string_view requester, const PartyPolicy& policy) {
  if (!policy.is_researcher || !policy.is_researcher(requester)) {
    return Refusal{error_code::kNotAuthorized,
                   std::string(requester) + " is not a researcher this node accepts"};
  }
  if (!messages::IsValidName(r.context_id())) {
    return Refusal{error_code::kMalformed, "context_id is not a valid name"};
  }
  if (r.scheme() != v1::PAIRWISE_KEYS && r.scheme() != v1::ADDITIVE_SHARING) {
    return Refusal{error_code::kUnsupported, "unknown scheme " + std::to_string(r.scheme())};
  }
  const auto& parties = r.parties();
  for (int i = 0; i < parties.size(); ++i) {
    if (!messages::IsValidName(parties[i])) {
      return Refusal{error_code::kBadParties, "party \"" + parties[i] + "\" is not a valid id"};
    }
    if (i > 0 && !messages::IdLess(parties[i - 1], parties[i])) {
      return Refusal{error_code::kBadParties, "parties are not in strictly ascending order"};
    }
  }
  if (std::find(parties.begin(), parties.end(), policy.self) == parties.end()) {
    return Refusal{error_code::kBadParties, "parties do not include this node"};
  }
  if (std::find(parties.begin(), parties.end(), requester) != parties.end()) {
    return Refusal{error_code::kBadParties, "parties include the requester"};
  }
  // Never fewer than 2, whatever the configuration says: with one party its reply would be its
  // input.
  uint32_t min_parties = std::max<uint32_t>(2, policy.min_parties);
  if (static_cast<uint32_t>(parties.size()) < min_parties) {
    return Refusal{error_code::kBadParties,
                   "fewer than " + std::to_string(min_parties) + " parties"};
  }
  for (const std::string& party : parties) {
    if (party == policy.self) continue;
    if (!policy.is_approved_co_party || !policy.is_approved_co_party(party)) {
      return Refusal{error_code::kBadParties,
                     party + " is not an approved co-party of this node (nodelink-keys trust "
                             "approve, or pin its key)"};
    }
  }
  if (r.scheme() == v1::ADDITIVE_SHARING) {
    if (!IsValidModulusBits(r.modulus_bits())) {
      return Refusal{error_code::kMalformed, "modulus_bits must be a multiple of 8 in 8..4096"};
    }
    if (r.element_count() < 1) return Refusal{error_code::kMalformed, "element_count is 0"};
    if (policy.max_envelope_bytes < 4096 ||
        ElementsBytes(r) > policy.max_envelope_bytes - 4096) {
      return Refusal{error_code::kMalformed,
                     "the vector (" + std::to_string(ElementsBytes(r)) +
                         " bytes) does not fit in an envelope of " +
                         std::to_string(policy.max_envelope_bytes) + " bytes less 4096"};
    }
  }
  return std::nullopt;
}

Bytes InputDigestOf(const core::SecretBytes& key, const std::vector<std::string>& values) {
  Bytes canonical;
  for (const std::string& v : values) {
    std::string_view digits = v;
    bool negative = !digits.empty() && digits[0] == '-';
    if (negative) digits.remove_prefix(1);
    while (digits.size() > 1 && digits[0] == '0') digits.remove_prefix(1);
    if (digits == "0") negative = false;
    core::AppendLp(canonical, (negative ? "-" : "") + std::string(digits));
  }
  core::Sha256Digest mac = core::HmacSha256(key, canonical);
  core::WipeBytes(canonical);
  return Bytes(mac.begin(), mac.end());
}

Bytes ParamsDigestOf(std::string_view researcher, const v1::SecaggSetupRequest& r) {
  std::vector<std::string> parties(r.parties().begin(), r.parties().end());
  return messages::SecaggParamsDigest({researcher, r.context_id(),
                                       static_cast<uint32_t>(r.scheme()), r.modulus_bits(),
                                       r.element_count(), parties});
}

}  // namespace nodelink::secagg

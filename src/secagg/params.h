// Who may ask what of a party (PROTOCOL.md section 8, "Secure aggregation"), and the parameter
// digest that binds share and key requests to one context.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/bytes.h"
#include "core/secret_bytes.h"
#include "nodelink/v1/inner.pb.h"
#include "router/error_reply.h"

namespace nodelink::secagg {

// ErrorReply codes of PROTOCOL.md section 8.
namespace error_code = router::error_code;

struct Refusal {
  std::string_view code;  // one of error_code
  std::string detail;     // for people
};

// What a party's configuration says (PROTOCOL.md section 8).
struct PartyPolicy {
  std::string self;
  uint32_t min_parties = 3;  // 2 only by explicit configuration
  uint64_t max_envelope_bytes = 16ull << 20;
  std::function<bool(std::string_view)> is_researcher;
  std::function<bool(std::string_view)> is_approved_co_party;
};

// The checks a party applies to a SecaggSetupRequest from `requester`, in order: the requester is
// a configured researcher (NOT_AUTHORIZED); the context id matches the name pattern and the
// scheme is known (MALFORMED, UNSUPPORTED); the parties are strictly ascending valid ids that
// include the receiver, exclude the requester, number at least min_parties and are all approved
// co-parties (BAD_PARTIES); for ADDITIVE_SHARING, k is a multiple of 8 in 8..4096, at least one
// element, and element_count * k / 8 <= max_envelope_bytes - 4096 (MALFORMED). nullopt: accepted.
std::optional<Refusal> CheckSetupRequest(const v1::SecaggSetupRequest& request,
                                         std::string_view requester, const PartyPolicy& policy);

// params_digest = SHA-256("nodelink/1 secagg-params" || lp(researcher) || lp(context_id) ||
// u32be(scheme) || u32be(modulus_bits) || u32be(element_count) || u32be(n) || lp(party_1) ...).
Bytes ParamsDigestOf(std::string_view researcher, const v1::SecaggSetupRequest& request);

// Identifies an input for "one input per context" (PROTOCOL.md section 8): a keyed hash (HMAC
// under a key only this node has) of the values as canonical decimal integers, so the same input
// is recognized at any modulus and cannot be brute-forced from the store file.
Bytes InputDigestOf(const core::SecretBytes& key, const std::vector<std::string>& values);

// The byte length of an ADDITIVE_SHARING vector: element_count * modulus_bits / 8.
uint64_t ElementsBytes(const v1::SecaggSetupRequest& request);

}  // namespace nodelink::secagg

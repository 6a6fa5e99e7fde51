// Fuzzes what a party does with an opened inner message (PROTOCOL.md section 8): check 11's
// parse, the setup-request rules a node applies before doing anything, and the share vectors it
// reads from bytes. The input is the serialized Inner exactly as the open path hands it on.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/bytes.h"
#include "messages/protobuf_log.h"
#include "overlay/sealing.h"
#include "secagg/params.h"
#include "secagg/ring.h"

namespace {

const nodelink::secagg::PartyPolicy& Policy() {
  static const nodelink::secagg::PartyPolicy* policy = [] {
    nodelink::messages::SilenceProtobufLogs();
    auto* p = new nodelink::secagg::PartyPolicy();
    p->self = "b";
    p->is_researcher = [](std::string_view id) { return id == "res"; };
    p->is_approved_co_party = [](std::string_view id) { return id == "a" || id == "c"; };
    return p;
  }();
  return *policy;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nodelink;
  const secagg::PartyPolicy& policy = Policy();
  v1::Inner inner;
  if (!overlay::ParseKnownInner(ByteView(data, size), inner)) return 0;
  if (inner.has_secagg_setup_request()) {
    const v1::SecaggSetupRequest& r = inner.secagg_setup_request();
    auto refusal = secagg::CheckSetupRequest(r, "res", policy);
    // Accepted parameters are sound: a vector of that shape fits in memory we can afford.
    if (!refusal && r.scheme() == v1::ADDITIVE_SHARING) {
      auto zero = secagg::RingVector::FromBytes(r.modulus_bits(), r.element_count(),
                                                Bytes(r.modulus_bits() / 8 * r.element_count()));
      if (!zero.ok()) __builtin_trap();
    }
  }
  if (inner.has_additive_sharing_reply()) {
    for (uint32_t bits : {8u, 64u, 2048u}) {
      const std::string& bytes = inner.additive_sharing_reply().elements();
      (void)secagg::RingVector::FromBytes(bits, bytes.size() / (bits / 8), AsBytes(bytes));
    }
  }
  return 0;
}

// The exact byte strings that nodelink/1 signs, hashes and authenticates (PROTOCOL.md sections 5,
// 6 and 8). Two implementations interoperate only if these match byte for byte, so each builder
// follows its formula term by term; the conformance vectors check them.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "core/bytes.h"

namespace nodelink::messages {

// req_tbs, section 5.
struct SetupRequestTbsFields {
  std::string_view federation;
  std::string_view initiator;  // A
  std::string_view responder;  // B
  ByteView message_id;
  uint64_t sent_at_ms = 0;
  ByteView setup_id;
  ByteView ephemeral_key;  // eA
};
Bytes SetupRequestTbs(const SetupRequestTbsFields& f);

// rep_tbs, section 5: signed by the responder; SHA-256 of it salts the channel secret.
struct SetupReplyTbsFields {
  std::string_view federation;
  std::string_view responder;  // B
  std::string_view initiator;  // A
  ByteView message_id;         // the reply's
  uint64_t sent_at_ms = 0;     // the reply's
  ByteView setup_id;
  ByteView request_tbs_hash;  // SHA-256(req_tbs)
  ByteView ephemeral_key;     // eB
};
Bytes SetupReplyTbs(const SetupReplyTbsFields& f);

// The HKDF info that derives channel_secret: "nodelink/1 channel".
ByteView ChannelSecretInfo();

// aad, section 6.
struct SealedAadFields {
  std::string_view federation;
  std::string_view sender;     // S
  std::string_view recipient;  // R
  ByteView message_id;
  uint64_t sent_at_ms = 0;
  ByteView channel_id;
  uint64_t seq = 0;
  ByteView salt;
  ByteView nonce;
};
Bytes SealedAad(const SealedAadFields& f);

// "nodelink/1 message" || lp(S) || lp(R): the HKDF info of msg_key, section 6.
Bytes MessageKeyInfo(std::string_view sender, std::string_view recipient);

// "nodelink/1 inner" || lp(SHA-256(aad)) || lp(inner): what the sender signs, section 6.
Bytes InnerSignatureInput(ByteView aad, ByteView inner);

// plain = lp(inner) || lp(sig), section 6.
Bytes SealedPlaintext(ByteView inner, ByteView signature);
// Splits plain into inner and sig; false unless it is exactly lp(inner) || lp(sig) (check 9).
// The views point into `plain`.
[[nodiscard]] bool SplitSealedPlaintext(ByteView plain, ByteView& inner, ByteView& signature);

// The ChannelUnknown signature input, section 6.
struct ChannelUnknownTbsFields {
  std::string_view federation;
  std::string_view reporter;  // R, who lost the channel
  std::string_view sender;    // S, who sent on it
  ByteView message_id;        // the ChannelUnknown envelope's
  uint64_t sent_at_ms = 0;    // the ChannelUnknown envelope's
  ByteView channel_id;
  ByteView about_message_id;
  uint64_t about_seq = 0;
};
Bytes ChannelUnknownTbs(const ChannelUnknownTbsFields& f);

// params_digest, section 8. `parties` must already be in ascending order.
struct SecaggParams {
  std::string_view researcher;
  std::string_view context_id;
  uint32_t scheme = 0;
  uint32_t modulus_bits = 0;
  uint32_t element_count = 0;
  std::span<const std::string> parties;
};
Bytes SecaggParamsDigest(const SecaggParams& p);

// salt = SHA-256(lp(researcher) || lp(context_id)) and info = "nodelink/1 pairwise" ||
// lp(min(id, peer)) || lp(max(id, peer)), section 8 PAIRWISE_KEYS.
Bytes PairwiseKeySalt(std::string_view researcher, std::string_view context_id);
Bytes PairwiseKeyInfo(std::string_view self, std::string_view peer);

}  // namespace nodelink::messages

#include "messages/canonical.h"

#include <algorithm>

#include "core/encoding.h"
#include "core/sha256.h"

namespace nodelink::messages {

using core::AppendLp;
using core::AppendString;
using core::AppendU32Be;
using core::AppendU64Be;

Bytes SetupRequestTbs(const SetupRequestTbsFields& f) {
  Bytes out;
  out.reserve(160 + f.federation.size() + f.initiator.size() + f.responder.size());
  AppendString(out, "nodelink/1 setup-request");
  AppendLp(out, f.federation);
  AppendLp(out, f.initiator);
  AppendLp(out, f.responder);
  AppendLp(out, f.message_id);
  AppendU64Be(out, f.sent_at_ms);
  AppendLp(out, f.setup_id);
  AppendLp(out, f.ephemeral_key);
  return out;
}

Bytes SetupReplyTbs(const SetupReplyTbsFields& f) {
  Bytes out;
  out.reserve(200 + f.federation.size() + f.initiator.size() + f.responder.size());
  AppendString(out, "nodelink/1 setup-reply");
  AppendLp(out, f.federation);
  AppendLp(out, f.responder);
  AppendLp(out, f.initiator);
  AppendLp(out, f.message_id);
  AppendU64Be(out, f.sent_at_ms);
  AppendLp(out, f.setup_id);
  AppendLp(out, f.request_tbs_hash);
  AppendLp(out, f.ephemeral_key);
  return out;
}

ByteView ChannelSecretInfo() { return AsBytes("nodelink/1 channel"); }

Bytes SealedAad(const SealedAadFields& f) {
  Bytes out;
  out.reserve(140 + f.federation.size() + f.sender.size() + f.recipient.size());
  AppendString(out, "nodelink/1 sealed");
  AppendLp(out, f.federation);
  AppendLp(out, f.sender);
  AppendLp(out, f.recipient);
  AppendLp(out, f.message_id);
  AppendU64Be(out, f.sent_at_ms);
  AppendLp(out, f.channel_id);
  AppendU64Be(out, f.seq);
  AppendLp(out, f.salt);
  AppendLp(out, f.nonce);
  return out;
}

Bytes MessageKeyInfo(std::string_view sender, std::string_view recipient) {
  Bytes out;
  AppendString(out, "nodelink/1 message");
  AppendLp(out, sender);
  AppendLp(out, recipient);
  return out;
}

Bytes InnerSignatureInput(ByteView aad, ByteView inner) {
  Bytes out;
  out.reserve(16 + 4 + 32 + 4 + inner.size());
  AppendString(out, "nodelink/1 inner");
  AppendLp(out, core::Sha256(aad));
  AppendLp(out, inner);
  return out;
}

Bytes SealedPlaintext(ByteView inner, ByteView signature) {
  Bytes out;
  out.reserve(8 + inner.size() + signature.size());
  AppendLp(out, inner);
  AppendLp(out, signature);
  return out;
}

bool SplitSealedPlaintext(ByteView plain, ByteView& inner, ByteView& signature) {
  core::ByteReader reader(plain);
  return reader.ReadLp(inner) && reader.ReadLp(signature) && reader.AtEnd();
}

Bytes ChannelUnknownTbs(const ChannelUnknownTbsFields& f) {
  Bytes out;
  AppendString(out, "nodelink/1 channel-unknown");
  AppendLp(out, f.federation);
  AppendLp(out, f.reporter);
  AppendLp(out, f.sender);
  AppendLp(out, f.message_id);
  AppendU64Be(out, f.sent_at_ms);
  AppendLp(out, f.channel_id);
  AppendLp(out, f.about_message_id);
  AppendU64Be(out, f.about_seq);
  return out;
}

Bytes SecaggParamsDigest(const SecaggParams& p) {
  Bytes in;
  AppendString(in, "nodelink/1 secagg-params");
  AppendLp(in, p.researcher);
  AppendLp(in, p.context_id);
  AppendU32Be(in, p.scheme);
  AppendU32Be(in, p.modulus_bits);
  AppendU32Be(in, p.element_count);
  AppendU32Be(in, static_cast<uint32_t>(p.parties.size()));
  for (const std::string& party : p.parties) AppendLp(in, party);
  return core::Sha256Bytes(in);
}

Bytes PairwiseKeySalt(std::string_view researcher, std::string_view context_id) {
  Bytes in;
  AppendLp(in, researcher);
  AppendLp(in, context_id);
  return core::Sha256Bytes(in);
}

Bytes PairwiseKeyInfo(std::string_view self, std::string_view peer) {
  Bytes out;
  AppendString(out, "nodelink/1 pairwise");
  AppendLp(out, std::min(self, peer));
  AppendLp(out, std::max(self, peer));
  return out;
}

}  // namespace nodelink::messages

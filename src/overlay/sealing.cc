#include "overlay/sealing.h"

#include "core/aead.h"
#include "core/hkdf.h"
#include "core/status.h"
#include "messages/canonical.h"
#include "nodelink/v1/hub.pb.h"

namespace nodelink::overlay {

namespace {

Bytes AadOf(const SealedHeader& h) {
  return messages::SealedAad({h.federation, h.sender, h.recipient, h.message_id, h.sent_at_ms,
                              h.channel_id, h.seq, h.salt, h.nonce});
}

// msg_key = HKDF-SHA256(IKM = cs, salt = salt, info = "nodelink/1 message" || lp(S) || lp(R)).
absl::StatusOr<core::SecretBytes> MessageKey(const SealedHeader& h,
                                             const core::SecretBytes& channel_secret) {
  return core::HkdfSha256(channel_secret, h.salt, messages::MessageKeyInfo(h.sender, h.recipient),
                          32);
}

}  // namespace

SealedHeader SealedHeaderOf(const v1::Envelope& e) {
  const v1::Sealed& s = e.sealed();
  return SealedHeader{e.federation(),     e.sender(),       e.recipient(),
                      AsBytes(e.message_id()), e.sent_at_ms(), AsBytes(s.channel_id()),
                      s.seq(),            AsBytes(s.salt()), AsBytes(s.nonce())};
}

absl::StatusOr<Bytes> EncryptSealedPlaintext(const SealedHeader& header,
                                             const core::SecretBytes& channel_secret,
                                             ByteView plain) {
  NL_ASSIGN_OR_RETURN(core::SecretBytes key, MessageKey(header, channel_secret));
  return core::ChaCha20Poly1305Seal(key, header.nonce, AadOf(header), plain);
}

absl::StatusOr<Bytes> SealInner(const SealedHeader& header, const core::SecretBytes& channel_secret,
                                const core::EcPrivateKey& sender_identity, ByteView inner) {
  Bytes aad = AadOf(header);
  Bytes signed_input = messages::InnerSignatureInput(aad, inner);  // holds a copy of inner
  absl::StatusOr<Bytes> sig = sender_identity.SignSha256(signed_input);
  core::WipeBytes(signed_input);
  if (!sig.ok()) return sig.status();
  Bytes plain = messages::SealedPlaintext(inner, *sig);
  NL_ASSIGN_OR_RETURN(core::SecretBytes key, MessageKey(header, channel_secret));
  auto ciphertext = core::ChaCha20Poly1305Seal(key, header.nonce, aad, plain);
  core::WipeBytes(plain);  // the inner content may be a secret share
  return ciphertext;
}

bool ParseKnownInner(ByteView bytes, v1::Inner& out) {
  if (!out.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) return false;
  return out.body_case() != v1::Inner::BODY_NOT_SET;
}

OpenedInner OpenSealedCiphertext(const SealedHeader& header, ByteView ciphertext,
                                 const core::SecretBytes& channel_secret,
                                 const core::EcPublicKey& sender_identity) {
  using messages::ReceiveCode;
  OpenedInner result;
  Bytes aad = AadOf(header);
  auto key = MessageKey(header, channel_secret);
  if (!key.ok()) {
    result.code = ReceiveCode::kDecryptFailed;
    return result;
  }
  auto plain = core::ChaCha20Poly1305Open(*key, header.nonce, aad, ciphertext);  // check 8
  if (!plain.ok()) {
    result.code = ReceiveCode::kDecryptFailed;
    return result;
  }
  ByteView inner, sig;
  if (!messages::SplitSealedPlaintext(*plain, inner, sig)) {  // check 9
    core::WipeBytes(*plain);
    result.code = ReceiveCode::kMalformed;
    return result;
  }
  result.inner_bytes.assign(inner.begin(), inner.end());
  result.signature.assign(sig.begin(), sig.end());
  core::WipeBytes(*plain);
  Bytes signed_input = messages::InnerSignatureInput(aad, result.inner_bytes);
  bool signature_ok = sender_identity.VerifySha256(signed_input, result.signature);  // check 10
  core::WipeBytes(signed_input);
  if (!signature_ok) {
    core::WipeBytes(result.inner_bytes);
    result.code = ReceiveCode::kBadSignature;
    return result;
  }
  if (!ParseKnownInner(result.inner_bytes, result.inner)) {  // check 11
    core::WipeBytes(result.inner_bytes);
    result.inner.Clear();
    result.code = ReceiveCode::kUnknownType;
    return result;
  }
  return result;
}

}  // namespace nodelink::overlay

#include "overlay/conformance.h"

#include <functional>
#include <nlohmann/json.hpp>

#include "core/ec.h"
#include "core/encoding.h"
#include "core/random.h"
#include "core/sha256.h"
#include "core/status.h"
#include "messages/canonical.h"
#include "messages/codes.h"
#include "messages/envelope_check.h"
#include "messages/names.h"
#include "overlay/sealing.h"
#include "overlay/setup_crypto.h"

namespace nodelink::overlay {

namespace {

using messages::ReceiveCode;
using messages::ReceiveCodeName;
using nlohmann::json;

constexpr std::string_view kMismatch = "MISMATCH";

// Reads the hex field `name` of a vector; throws a descriptive error that the caller turns into
// InvalidArgument.
Bytes HexField(const json& v, const char* name) {
  if (!v.contains(name) || !v[name].is_string()) {
    throw std::invalid_argument(std::string("missing hex field \"") + name + "\"");
  }
  auto bytes = core::FromHex(v[name].get<std::string>());
  if (!bytes.ok()) throw std::invalid_argument(std::string("field \"") + name + "\" is not hex");
  return *bytes;
}
std::string StringField(const json& v, const char* name) {
  if (!v.contains(name) || !v[name].is_string()) {
    throw std::invalid_argument(std::string("missing string field \"") + name + "\"");
  }
  return v[name].get<std::string>();
}
uint64_t U64Field(const json& v, const char* name) {
  if (!v.contains(name) || !v[name].is_number_unsigned()) {
    throw std::invalid_argument(std::string("missing unsigned field \"") + name + "\"");
  }
  return v[name].get<uint64_t>();
}

struct Outcome {
  std::string got;
  std::string detail;
};
Outcome Code(ReceiveCode code, std::string detail) {
  return {std::string(ReceiveCodeName(code)), std::move(detail)};
}

// kind "sealed": check 1 (sizes only), then checks 8 to 11, then the byte-for-byte comparisons.
Outcome VerifySealed(const json& v) {
  std::string federation = StringField(v, "federation");
  std::string sender = StringField(v, "sender");
  std::string recipient = StringField(v, "recipient");
  Bytes message_id = HexField(v, "message_id");
  Bytes channel_id = HexField(v, "channel_id");
  Bytes salt = HexField(v, "salt");
  Bytes nonce = HexField(v, "nonce");
  Bytes secret = HexField(v, "channel_secret");
  Bytes sender_key = HexField(v, "sender_public_key");
  Bytes inner = HexField(v, "inner");
  Bytes signature = HexField(v, "signature");
  Bytes ciphertext = HexField(v, "ciphertext");
  SealedHeader header{federation, sender,       recipient, message_id, U64Field(v, "sent_at_ms"),
                      channel_id, U64Field(v, "seq"), salt,  nonce};

  if (message_id.size() != messages::kIdBytes) return Code(ReceiveCode::kMalformed, "message_id size");
  if (channel_id.size() != messages::kIdBytes) return Code(ReceiveCode::kMalformed, "channel_id size");
  if (salt.size() != messages::kSaltBytes) return Code(ReceiveCode::kMalformed, "salt size");
  if (nonce.size() != messages::kNonceBytes) return Code(ReceiveCode::kMalformed, "nonce size");
  if (secret.size() != kChannelSecretBytes) {
    return Code(ReceiveCode::kMalformed, "channel_secret size");
  }
  core::SecretBytes cs = core::SecretBytes::CopyOf(secret);

  auto key = core::EcPublicKey::FromPoint(sender_key);
  if (!key.ok()) {
    // Decryption does not need the key: run checks 8 and 9 first so that their codes win.
    auto any_key = core::EcPrivateKey::Generate();
    if (!any_key.ok()) return {std::string(kMismatch), "key generation failed"};
    OpenedInner opened = OpenSealedCiphertext(header, ciphertext, cs, any_key->PublicKey());
    if (opened.code == ReceiveCode::kDecryptFailed || opened.code == ReceiveCode::kMalformed) {
      return Code(opened.code, "before the signature check");
    }
    return Code(ReceiveCode::kBadSignature, "sender_public_key is not a valid P-256 point");
  }
  OpenedInner opened = OpenSealedCiphertext(header, ciphertext, cs, *key);
  if (opened.code != ReceiveCode::kOk) return Code(opened.code, "");
  if (opened.inner_bytes != inner) return {std::string(kMismatch), "decrypted inner differs"};
  if (opened.signature != signature) return {std::string(kMismatch), "decrypted signature differs"};
  auto again = EncryptSealedPlaintext(header, cs, messages::SealedPlaintext(inner, signature));
  if (!again.ok() || *again != ciphertext) {
    return {std::string(kMismatch), "re-encryption does not reproduce the ciphertext"};
  }
  return {"ok", ""};
}

// kind "setup": points valid and matching their scalars, both signatures, both secrets.
Outcome VerifySetup(const json& v) {
  std::string federation = StringField(v, "federation");
  std::string initiator = StringField(v, "initiator");
  std::string responder = StringField(v, "responder");
  Bytes request_id = HexField(v, "request_message_id");
  Bytes reply_id = HexField(v, "reply_message_id");
  Bytes setup_id = HexField(v, "setup_id");
  Bytes a_priv = HexField(v, "initiator_ephemeral_private");
  Bytes b_priv = HexField(v, "responder_ephemeral_private");
  Bytes a_pub = HexField(v, "initiator_ephemeral_public");
  Bytes b_pub = HexField(v, "responder_ephemeral_public");
  Bytes id_a = HexField(v, "initiator_public_key");
  Bytes id_b = HexField(v, "responder_public_key");
  Bytes request_sig = HexField(v, "request_signature");
  Bytes reply_sig = HexField(v, "reply_signature");
  Bytes secret = HexField(v, "channel_secret");
  uint64_t request_sent = U64Field(v, "request_sent_at_ms");
  uint64_t reply_sent = U64Field(v, "reply_sent_at_ms");

  if (request_id.size() != messages::kIdBytes || reply_id.size() != messages::kIdBytes) {
    return Code(ReceiveCode::kMalformed, "message id size");
  }
  if (setup_id.size() != messages::kIdBytes) return Code(ReceiveCode::kMalformed, "setup_id size");
  auto e_a = core::EcPublicKey::FromPoint(a_pub);
  if (!e_a.ok()) return Code(ReceiveCode::kMalformed, "initiator ephemeral key is not a valid point");
  auto e_b = core::EcPublicKey::FromPoint(b_pub);
  if (!e_b.ok()) return Code(ReceiveCode::kMalformed, "responder ephemeral key is not a valid point");
  auto a = core::EcPrivateKey::FromScalar(a_priv);
  if (!a.ok() || !(a->PublicKey() == *e_a)) {
    return Code(ReceiveCode::kMalformed, "initiator ephemeral scalar does not match its point");
  }
  auto b = core::EcPrivateKey::FromScalar(b_priv);
  if (!b.ok() || !(b->PublicKey() == *e_b)) {
    return Code(ReceiveCode::kMalformed, "responder ephemeral scalar does not match its point");
  }

  Bytes req_tbs = messages::SetupRequestTbs(
      {federation, initiator, responder, request_id, request_sent, setup_id, a_pub});
  auto identity_a = core::EcPublicKey::FromPoint(id_a);
  if (!identity_a.ok() || !identity_a->VerifySha256(req_tbs, request_sig)) {
    return Code(ReceiveCode::kBadSignature, "request signature");
  }
  Bytes rep_tbs = messages::SetupReplyTbs({federation, responder, initiator, reply_id, reply_sent,
                                           setup_id, core::Sha256(req_tbs), b_pub});
  auto identity_b = core::EcPublicKey::FromPoint(id_b);
  if (!identity_b.ok() || !identity_b->VerifySha256(rep_tbs, reply_sig)) {
    return Code(ReceiveCode::kBadSignature, "reply signature");
  }
  auto cs_a = DeriveChannelSecret(*a, *e_b, rep_tbs);
  auto cs_b = DeriveChannelSecret(*b, *e_a, rep_tbs);
  if (!cs_a.ok() || !cs_b.ok()) return {std::string(kMismatch), "ECDH failed"};
  if (!core::ConstantTimeEquals(cs_a->ExposeSecret(), secret) ||
      !core::ConstantTimeEquals(cs_b->ExposeSecret(), secret)) {
    return {std::string(kMismatch), "derived channel_secret differs"};
  }
  return {"ok", ""};
}

// ---------------------------------------------------------------- generation

std::string Hex(ByteView b) { return core::ToHex(b); }
std::string SecretHex(const core::SecretBytes& s) { return core::ToHex(s.ExposeSecret()); }

const char* const kNames[] = {"node-a", "node-b", "Lab_3", "researcher", "hospital.7",
                              "site-42", "A", "z9"};
std::string PickName() { return kNames[core::RandomUniform(std::size(kNames))]; }
std::pair<std::string, std::string> PickPair() {
  std::string a = PickName(), b = PickName();
  while (b == a) b = PickName();
  return {a, b};
}
uint64_t PickTime() { return 1'700'000'000'000ULL + core::RandomUniform(100'000'000); }

Bytes RandomInner() {
  v1::Inner inner;
  inner.set_request_id("req-" + Hex(core::RandomBytes(4)));
  switch (core::RandomUniform(4)) {
    case 0: {
      v1::AppMessage* app = inner.mutable_app();
      app->set_type("app.type");
      app->set_tag("t" + std::to_string(core::RandomUniform(100)));
      app->set_payload(ToString(core::RandomBytes(1 + core::RandomUniform(1500))));
      app->set_content_type("application/octet-stream");
      break;
    }
    case 1: {
      v1::KeyRequest* k = inner.mutable_key_request();
      k->set_context_id("ctx-" + std::to_string(core::RandomUniform(1000)));
      k->set_params_digest(ToString(core::RandomBytes(32)));
      k->set_researcher("researcher");
      break;
    }
    case 2: {
      v1::AdditiveSharingReply* r = inner.mutable_additive_sharing_reply();
      r->set_context_id("ctx-1");
      r->set_elements(ToString(core::RandomBytes(8 * (1 + core::RandomUniform(64)))));
      break;
    }
    default: {
      inner.set_deadline_ms(PickTime());
      v1::ErrorReply* e = inner.mutable_error_reply();
      e->set_code("TIMEOUT");
      e->set_detail("no answer");
      break;
    }
  }
  return ToBytes(inner.SerializeAsString());
}

enum class SealedCase {
  kOk, kFlipCiphertext, kFlipTag, kSalt, kNonce, kFederation, kSender, kRecipient, kMessageId,
  kSentAt, kChannelId, kSeq, kWrongSecret, kWrongSignerKey, kSignedByOther, kSignedOtherBytes,
  kTrailingPlain, kMissingSignature, kLongNonce, kShortSalt, kNoBody, kBadUtf8,
};
constexpr SealedCase kSealedCases[] = {
    SealedCase::kOk,           SealedCase::kFlipCiphertext, SealedCase::kFlipTag,
    SealedCase::kSalt,         SealedCase::kNonce,          SealedCase::kFederation,
    SealedCase::kSender,       SealedCase::kRecipient,      SealedCase::kMessageId,
    SealedCase::kSentAt,       SealedCase::kChannelId,      SealedCase::kSeq,
    SealedCase::kWrongSecret,  SealedCase::kWrongSignerKey, SealedCase::kSignedByOther,
    SealedCase::kSignedOtherBytes, SealedCase::kTrailingPlain, SealedCase::kMissingSignature,
    SealedCase::kLongNonce,    SealedCase::kShortSalt,      SealedCase::kNoBody,
    SealedCase::kBadUtf8,      SealedCase::kOk,             SealedCase::kOk};

absl::StatusOr<json> MakeSealed(SealedCase which) {
  auto [sender, recipient] = PickPair();
  std::string federation = core::RandomUniform(2) ? "fed-1" : "federation.example";
  Bytes message_id = core::RandomBytes(16), channel_id = core::RandomBytes(16);
  Bytes salt = core::RandomBytes(32), nonce = core::RandomBytes(12);
  uint64_t sent_at = PickTime();
  uint64_t seq = 1 + core::RandomUniform(1u << 30);
  core::SecretBytes cs = core::RandomSecret(32);
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey identity, core::EcPrivateKey::Generate());
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey other, core::EcPrivateKey::Generate());
  Bytes inner = RandomInner();
  std::string expect = "ok";

  if (which == SealedCase::kNoBody) {
    v1::Inner empty;
    empty.set_request_id("req-nobody");
    inner = ToBytes(empty.SerializeAsString());
    expect = "UNKNOWN_TYPE";
  } else if (which == SealedCase::kBadUtf8) {
    // field 1 (request_id, a string) holding the invalid UTF-8 byte 0xff, then a valid body.
    inner = {0x0a, 0x02, 0x61, 0xff};
    v1::Inner body;
    body.mutable_app()->set_type("x");
    std::string tail = body.SerializeAsString();
    inner.insert(inner.end(), tail.begin(), tail.end());
    expect = "UNKNOWN_TYPE";
  }

  SealedHeader header{federation, sender, recipient, message_id, sent_at,
                      channel_id, seq,    salt,      nonce};
  Bytes aad = messages::SealedAad({federation, sender, recipient, message_id, sent_at, channel_id,
                                   seq, salt, nonce});
  const core::EcPrivateKey& signer = which == SealedCase::kSignedByOther ? other : identity;
  Bytes signed_input = messages::InnerSignatureInput(aad, inner);
  if (which == SealedCase::kSignedOtherBytes) signed_input.back() ^= 0x01;
  NL_ASSIGN_OR_RETURN(Bytes signature, signer.SignSha256(signed_input));
  Bytes plain = messages::SealedPlaintext(inner, signature);
  if (which == SealedCase::kTrailingPlain) plain.push_back(0x00);
  if (which == SealedCase::kMissingSignature) {
    plain.clear();
    core::AppendLp(plain, inner);
  }
  NL_ASSIGN_OR_RETURN(Bytes ciphertext, EncryptSealedPlaintext(header, cs, plain));

  json v = {{"kind", "sealed"}};
  Bytes public_key = identity.PublicKey().Point();
  switch (which) {
    case SealedCase::kOk: case SealedCase::kNoBody: case SealedCase::kBadUtf8: break;
    case SealedCase::kFlipCiphertext: ciphertext[core::RandomUniform(static_cast<uint32_t>(ciphertext.size() - 16))] ^= 0x04; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kFlipTag: ciphertext[ciphertext.size() - 1 - core::RandomUniform(16)] ^= 0x80; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kSalt: salt[core::RandomUniform(32)] ^= 0x01; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kNonce: nonce[core::RandomUniform(12)] ^= 0x01; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kFederation: federation += "x"; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kSender: sender = sender == "mallory" ? "eve" : "mallory"; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kRecipient: recipient += "2"; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kMessageId: message_id[0] ^= 0x01; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kSentAt: sent_at += 1; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kChannelId: channel_id[15] ^= 0x01; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kSeq: seq += 1; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kWrongSecret: cs.MutableSecret()[0] ^= 0x01; expect = "DECRYPT_FAILED"; break;
    case SealedCase::kWrongSignerKey: public_key = other.PublicKey().Point(); expect = "BAD_SIGNATURE"; break;
    case SealedCase::kSignedByOther: case SealedCase::kSignedOtherBytes: expect = "BAD_SIGNATURE"; break;
    case SealedCase::kTrailingPlain: case SealedCase::kMissingSignature: expect = "MALFORMED"; break;
    case SealedCase::kLongNonce: nonce = core::RandomBytes(16); expect = "MALFORMED"; break;
    case SealedCase::kShortSalt: salt.pop_back(); expect = "MALFORMED"; break;
  }
  v["federation"] = federation;
  v["sender"] = sender;
  v["recipient"] = recipient;
  v["message_id"] = Hex(message_id);
  v["sent_at_ms"] = sent_at;
  v["channel_id"] = Hex(channel_id);
  v["seq"] = seq;
  v["channel_secret"] = SecretHex(cs);
  v["salt"] = Hex(salt);
  v["nonce"] = Hex(nonce);
  v["sender_public_key"] = Hex(public_key);
  v["inner"] = Hex(inner);
  v["signature"] = Hex(signature);
  v["ciphertext"] = Hex(ciphertext);
  v["expect"] = expect;
  return v;
}

enum class SetupCase {
  kOk, kOffCurveInitiator, kOffCurveResponder, kScalarMismatch, kBadRequestSignature,
  kBadReplySignature, kTamperedSetupId, kTamperedRequestTime, kTamperedReplyId, kReplySignedByInitiator,
};
constexpr SetupCase kSetupCases[] = {
    SetupCase::kOk, SetupCase::kOffCurveInitiator, SetupCase::kOffCurveResponder,
    SetupCase::kScalarMismatch, SetupCase::kBadRequestSignature, SetupCase::kBadReplySignature,
    SetupCase::kTamperedSetupId, SetupCase::kTamperedRequestTime, SetupCase::kTamperedReplyId,
    SetupCase::kReplySignedByInitiator, SetupCase::kOk};

Bytes OffCurve(Bytes point) {
  point[64] ^= 0x01;  // (x, y+1) is not on the curve
  return point;
}

absl::StatusOr<json> MakeSetup(SetupCase which) {
  auto [initiator, responder] = PickPair();
  std::string federation = "fed-" + std::to_string(core::RandomUniform(10));
  Bytes request_id = core::RandomBytes(16), reply_id = core::RandomBytes(16);
  Bytes setup_id = core::RandomBytes(16);
  uint64_t request_sent = PickTime(), reply_sent = request_sent + core::RandomUniform(5000);
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey id_a, core::EcPrivateKey::Generate());
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey id_b, core::EcPrivateKey::Generate());
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey a, core::EcPrivateKey::Generate());
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey b, core::EcPrivateKey::Generate());
  Bytes e_a = a.PublicKey().Point(), e_b = b.PublicKey().Point();

  Bytes req_tbs = messages::SetupRequestTbs(
      {federation, initiator, responder, request_id, request_sent, setup_id, e_a});
  NL_ASSIGN_OR_RETURN(Bytes request_sig, id_a.SignSha256(req_tbs));
  Bytes rep_tbs = messages::SetupReplyTbs({federation, responder, initiator, reply_id, reply_sent,
                                           setup_id, core::Sha256(req_tbs), e_b});
  const core::EcPrivateKey& reply_signer = which == SetupCase::kReplySignedByInitiator ? id_a : id_b;
  NL_ASSIGN_OR_RETURN(Bytes reply_sig, reply_signer.SignSha256(rep_tbs));
  NL_ASSIGN_OR_RETURN(core::SecretBytes cs, DeriveChannelSecret(a, b.PublicKey(), rep_tbs));
  NL_ASSIGN_OR_RETURN(core::SecretBytes a_scalar, a.ExportScalar());
  NL_ASSIGN_OR_RETURN(core::SecretBytes b_scalar, b.ExportScalar());
  std::string b_scalar_hex = SecretHex(b_scalar);

  std::string expect = "ok";
  switch (which) {
    case SetupCase::kOk: break;
    case SetupCase::kOffCurveInitiator: e_a = OffCurve(e_a); expect = "MALFORMED"; break;
    case SetupCase::kOffCurveResponder: e_b = OffCurve(e_b); expect = "MALFORMED"; break;
    case SetupCase::kScalarMismatch: {
      NL_ASSIGN_OR_RETURN(core::EcPrivateKey c, core::EcPrivateKey::Generate());
      NL_ASSIGN_OR_RETURN(core::SecretBytes c_scalar, c.ExportScalar());
      b_scalar_hex = SecretHex(c_scalar);
      expect = "MALFORMED";
      break;
    }
    case SetupCase::kBadRequestSignature: request_sig[request_sig.size() - 3] ^= 0x01; expect = "BAD_SIGNATURE"; break;
    case SetupCase::kBadReplySignature: reply_sig[reply_sig.size() - 3] ^= 0x01; expect = "BAD_SIGNATURE"; break;
    case SetupCase::kTamperedSetupId: setup_id[0] ^= 0x01; expect = "BAD_SIGNATURE"; break;
    case SetupCase::kTamperedRequestTime: request_sent += 1; expect = "BAD_SIGNATURE"; break;
    case SetupCase::kTamperedReplyId: reply_id[5] ^= 0x01; expect = "BAD_SIGNATURE"; break;
    case SetupCase::kReplySignedByInitiator: expect = "BAD_SIGNATURE"; break;
  }
  return json{{"kind", "setup"},
              {"federation", federation},
              {"initiator", initiator},
              {"responder", responder},
              {"request_message_id", Hex(request_id)},
              {"request_sent_at_ms", request_sent},
              {"reply_message_id", Hex(reply_id)},
              {"reply_sent_at_ms", reply_sent},
              {"setup_id", Hex(setup_id)},
              {"initiator_ephemeral_private", SecretHex(a_scalar)},
              {"responder_ephemeral_private", b_scalar_hex},
              {"initiator_ephemeral_public", Hex(e_a)},
              {"responder_ephemeral_public", Hex(e_b)},
              {"initiator_public_key", Hex(id_a.PublicKey().Point())},
              {"responder_public_key", Hex(id_b.PublicKey().Point())},
              {"request_signature", Hex(request_sig)},
              {"reply_signature", Hex(reply_sig)},
              {"channel_secret", SecretHex(cs)},
              {"expect", expect}};
}

}  // namespace

absl::StatusOr<std::vector<VectorResult>> VerifyConformanceVectors(std::string_view json_text) {
  json doc = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("vector file is not a JSON object");
  }
  if (!doc.contains("suite") || doc["suite"] != "nodelink/1") {
    return absl::InvalidArgumentError("vector file's \"suite\" is not \"nodelink/1\"");
  }
  if (!doc.contains("vectors") || !doc["vectors"].is_array()) {
    return absl::InvalidArgumentError("vector file has no \"vectors\" array");
  }
  std::vector<VectorResult> results;
  const json& vectors = doc["vectors"];
  for (size_t i = 0; i < vectors.size(); ++i) {
    const json& v = vectors[i];
    VectorResult r;
    r.index = i;
    try {
      r.kind = StringField(v, "kind");
      r.expect = StringField(v, "expect");
      Outcome o;
      if (r.kind == "sealed") {
        o = VerifySealed(v);
      } else if (r.kind == "setup") {
        o = VerifySetup(v);
      } else {
        return absl::InvalidArgumentError(
            core::ToAbsl("vector " + std::to_string(i) + " has unknown kind \"" + r.kind + "\""));
      }
      r.got = std::move(o.got);
      r.detail = std::move(o.detail);
    } catch (const std::exception& e) {
      return absl::InvalidArgumentError(
          core::ToAbsl("vector " + std::to_string(i) + ": " + e.what()));
    }
    results.push_back(std::move(r));
  }
  return results;
}

absl::StatusOr<std::string> GenerateConformanceVectors(size_t count) {
  json vectors = json::array();
  for (size_t i = 0; i < count; ++i) {
    // Two sealed vectors for each setup vector, cycling through every case.
    absl::StatusOr<json> v;
    if (i % 3 == 2) {
      v = MakeSetup(kSetupCases[(i / 3) % std::size(kSetupCases)]);
    } else {
      v = MakeSealed(kSealedCases[(i - i / 3) % std::size(kSealedCases)]);
    }
    if (!v.ok()) return v.status();
    vectors.push_back(std::move(*v));
  }
  json doc = {{"suite", "nodelink/1"}, {"vectors", std::move(vectors)}};
  return doc.dump(1) + "\n";
}

}  // namespace nodelink::overlay

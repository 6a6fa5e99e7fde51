// Seal/open (PROTOCOL.md section 6) and checks 8 to 11 of section 7: every open path gets
// tampered, truncated, wrong-key and wrong-AD cases.
#include <doctest/doctest.h>

#include "core/encoding.h"
#include "core/random.h"
#include "messages/canonical.h"
#include "messages/protobuf_log.h"
#include "overlay/sealing.h"

namespace nodelink::overlay {
namespace {

using messages::ReceiveCode;

struct Fixture {
  core::EcPrivateKey sender = core::EcPrivateKey::Generate().value();
  core::SecretBytes cs = core::RandomSecret(32);
  Bytes message_id = core::RandomBytes(16), channel_id = core::RandomBytes(16);
  Bytes salt = core::RandomBytes(32), nonce = core::RandomBytes(12);
  std::string federation = "fed", s = "node-a", r = "node-b";
  Bytes inner;
  SealedHeader header;
  Bytes ciphertext;

  Fixture() {
    v1::Inner msg;
    msg.set_request_id("r1");
    msg.mutable_app()->set_type("greeting");
    msg.mutable_app()->set_payload("hello");
    inner = ToBytes(msg.SerializeAsString());
    header = {federation, s, r, message_id, 1700000000000, channel_id, 5, salt, nonce};
    ciphertext = SealInner(header, cs, sender, inner).value();
  }
  OpenedInner Open(const SealedHeader& h, ByteView ct) {
    return OpenSealedCiphertext(h, ct, cs, sender.PublicKey());
  }
};

TEST_CASE("seal then open returns the exact inner bytes, signature and parsed message") {
  Fixture f;
  OpenedInner o = f.Open(f.header, f.ciphertext);
  REQUIRE(o.code == ReceiveCode::kOk);
  CHECK(o.inner_bytes == f.inner);
  CHECK(o.inner.app().payload() == "hello");
  CHECK(f.sender.PublicKey().VerifySha256(
      messages::InnerSignatureInput(
          messages::SealedAad({f.federation, f.s, f.r, f.message_id, 1700000000000, f.channel_id,
                               5, f.salt, f.nonce}),
          f.inner),
      o.signature));
}

TEST_CASE("every authenticated header field is bound (check 8)") {
  Fixture f;
  std::string other_fed = "fed2", other_s = "node-x", other_r = "node-y";
  Bytes mid = f.message_id, cid = f.channel_id, salt = f.salt, nonce = f.nonce;
  mid[0] ^= 1;
  cid[0] ^= 1;
  salt[0] ^= 1;
  nonce[0] ^= 1;
  std::vector<SealedHeader> variants(9, f.header);
  variants[0].federation = other_fed;
  variants[1].sender = other_s;
  variants[2].recipient = other_r;
  variants[3].message_id = mid;
  variants[4].sent_at_ms += 1;
  variants[5].channel_id = cid;
  variants[6].seq += 1;
  variants[7].salt = salt;
  variants[8].nonce = nonce;
  for (const SealedHeader& h : variants) CHECK(f.Open(h, f.ciphertext).code == ReceiveCode::kDecryptFailed);
}

TEST_CASE("tampered, truncated ciphertext and wrong channel secret fail decryption") {
  Fixture f;
  for (size_t pos : {size_t{0}, f.ciphertext.size() / 2, f.ciphertext.size() - 1}) {
    Bytes bad = f.ciphertext;
    bad[pos] ^= 0x01;
    CHECK(f.Open(f.header, bad).code == ReceiveCode::kDecryptFailed);
  }
  Bytes truncated(f.ciphertext.begin(), f.ciphertext.end() - 1);
  CHECK(f.Open(f.header, truncated).code == ReceiveCode::kDecryptFailed);
  CHECK(f.Open(f.header, Bytes{}).code == ReceiveCode::kDecryptFailed);
  core::SecretBytes other = core::RandomSecret(32);
  CHECK(OpenSealedCiphertext(f.header, f.ciphertext, other, f.sender.PublicKey()).code ==
        ReceiveCode::kDecryptFailed);
}

TEST_CASE("wrong sender key fails the signature (check 10)") {
  Fixture f;
  auto other = core::EcPrivateKey::Generate().value();
  CHECK(OpenSealedCiphertext(f.header, f.ciphertext, f.cs, other.PublicKey()).code ==
        ReceiveCode::kBadSignature);
}

TEST_CASE("plain with trailing bytes or a missing signature is MALFORMED (check 9)") {
  Fixture f;
  Bytes plain = messages::SealedPlaintext(f.inner, Bytes(70, 1));
  plain.push_back(0);
  Bytes ct = EncryptSealedPlaintext(f.header, f.cs, plain).value();
  CHECK(f.Open(f.header, ct).code == ReceiveCode::kMalformed);
  Bytes only_inner;
  core::AppendLp(only_inner, f.inner);
  ct = EncryptSealedPlaintext(f.header, f.cs, only_inner).value();
  CHECK(f.Open(f.header, ct).code == ReceiveCode::kMalformed);
}

TEST_CASE("inner that does not parse or has no known body is UNKNOWN_TYPE (check 11)") {
  messages::SilenceProtobufLogs();
  Fixture f;
  v1::Inner empty;
  empty.set_request_id("x");
  Bytes no_body = ToBytes(empty.SerializeAsString());
  Bytes bad_utf8 = {0x0a, 0x01, 0xff};
  Bytes garbage = {0xff, 0xff, 0xff};
  for (const Bytes& inner : {no_body, bad_utf8, garbage}) {
    Bytes ct = SealInner(f.header, f.cs, f.sender, inner).value();
    CHECK(f.Open(f.header, ct).code == ReceiveCode::kUnknownType);
  }
}

}  // namespace
}  // namespace nodelink::overlay

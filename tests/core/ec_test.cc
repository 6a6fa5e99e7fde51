#include "core/ec.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/encoding.h"
#include "core/random.h"

namespace nodelink::core {
namespace {

TEST_CASE("ECDSA sign then verify; tampered message, signature and wrong key refused") {
  auto key = EcPrivateKey::Generate();
  REQUIRE(key.ok());
  Bytes msg = ToBytes("nodelink/1 test message");
  auto sig = key->SignSha256(msg);
  REQUIRE(sig.ok());
  CHECK(key->PublicKey().VerifySha256(msg, *sig));

  Bytes other_msg = msg;
  other_msg.back() ^= 1;
  CHECK_FALSE(key->PublicKey().VerifySha256(other_msg, *sig));

  Bytes bad_sig = *sig;
  bad_sig[bad_sig.size() / 2] ^= 1;
  CHECK_FALSE(key->PublicKey().VerifySha256(msg, bad_sig));

  Bytes truncated(sig->begin(), sig->end() - 1);
  CHECK_FALSE(key->PublicKey().VerifySha256(msg, truncated));

  Bytes trailing = *sig;
  trailing.push_back(0);
  CHECK_FALSE(key->PublicKey().VerifySha256(msg, trailing));  // strict DER

  CHECK_FALSE(key->PublicKey().VerifySha256(msg, Bytes{}));

  auto other = EcPrivateKey::Generate();
  REQUIRE(other.ok());
  CHECK_FALSE(other->PublicKey().VerifySha256(msg, *sig));
}

TEST_CASE("one key verified by several threads at once: kept context and per-call path agree") {
  // VerifySha256 keeps a context per key for one thread at a time; the others, finding it busy,
  // build their own. Copies of the key share the kept one. A refusal must leave it usable.
  auto key = EcPrivateKey::Generate();
  REQUIRE(key.ok());
  const EcPublicKey public_key = key->PublicKey();
  const Bytes msg = ToBytes("nodelink/1 threads");
  const Bytes sig = key->SignSha256(msg).value();
  Bytes bad = sig;
  bad[bad.size() / 2] ^= 1;
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      const EcPublicKey copy = public_key;
      const EcPublicKey& k = t % 2 == 0 ? public_key : copy;
      for (int i = 0; i < 100; ++i) {
        if (!k.VerifySha256(msg, sig)) ++wrong;
        if (k.VerifySha256(msg, bad)) ++wrong;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(wrong.load() == 0);
}

TEST_CASE("public keys: only valid uncompressed points are accepted") {
  auto key = EcPrivateKey::Generate();
  REQUIRE(key.ok());
  const Bytes& point = key->PublicKey().Point();
  CHECK(point.size() == 65);
  CHECK(point[0] == 0x04);
  CHECK(EcPublicKey::FromPoint(point).ok());

  Bytes off_curve = point;
  off_curve[64] ^= 1;
  CHECK(EcPublicKey::FromPoint(off_curve).status().code() == absl::StatusCode::kInvalidArgument);

  Bytes compressed(point.begin(), point.begin() + 33);
  compressed[0] = static_cast<uint8_t>(0x02 | (point[64] & 1));
  CHECK_FALSE(EcPublicKey::FromPoint(compressed).ok());
  CHECK_FALSE(EcPublicKey::FromPoint(Bytes{0x00}).ok());  // infinity
  CHECK_FALSE(EcPublicKey::FromPoint(Bytes(65, 0)).ok());
  Bytes wrong_prefix = point;
  wrong_prefix[0] = 0x06;
  CHECK_FALSE(EcPublicKey::FromPoint(wrong_prefix).ok());
}

TEST_CASE("SPKI round trip and fingerprint") {
  auto key = EcPrivateKey::Generate();
  REQUIRE(key.ok());
  Bytes spki = key->PublicKey().SpkiDer();
  CHECK(spki.size() == 91);
  auto back = EcPublicKey::FromSpkiDer(spki);
  REQUIRE(back.ok());
  CHECK(*back == key->PublicKey());
  CHECK(back->Fingerprint().size() == 32);
  spki.push_back(0);
  CHECK_FALSE(EcPublicKey::FromSpkiDer(spki).ok());
  CHECK_FALSE(EcPublicKey::FromSpkiDer(Bytes{0x30, 0x00}).ok());
}

TEST_CASE("scalar export and import give the same key") {
  auto key = EcPrivateKey::Generate();
  REQUIRE(key.ok());
  auto scalar = key->ExportScalar();
  REQUIRE(scalar.ok());
  CHECK(scalar->size() == 32);
  auto again = EcPrivateKey::FromScalar(scalar->ExposeSecret());
  REQUIRE(again.ok());
  CHECK(again->PublicKey() == key->PublicKey());
  CHECK_FALSE(EcPrivateKey::FromScalar(Bytes(32, 0)).ok());
  CHECK_FALSE(EcPrivateKey::FromScalar(Bytes(32, 0xff)).ok());  // >= n
}

TEST_CASE("PEM export and import") {
  auto key = EcPrivateKey::Generate();
  REQUIRE(key.ok());
  auto pem = key->ExportPem();
  REQUIRE(pem.ok());
  auto back = EcPrivateKey::FromPem(*pem);
  REQUIRE(back.ok());
  CHECK(back->PublicKey() == key->PublicKey());
  CHECK_FALSE(EcPrivateKey::FromPem(SecretBytes::CopyOf(ToBytes("not pem"))).ok());
}

TEST_CASE("ECDH agrees on both sides and refuses nothing valid") {
  auto a = EcPrivateKey::Generate();
  auto b = EcPrivateKey::Generate();
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  auto ab = EcdhP256(*a, b->PublicKey());
  auto ba = EcdhP256(*b, a->PublicKey());
  REQUIRE(ab.ok());
  REQUIRE(ba.ok());
  CHECK(ab->size() == 32);
  CHECK(ConstantTimeEquals(*ab, *ba));
}

}  // namespace
}  // namespace nodelink::core

// Project Wycheproof vectors (tests/testdata/wycheproof, copied from shared/vectors) for every
// primitive of PROTOCOL.md section 2. `valid` and `invalid` must come out exactly; `acceptable`
// may go either way, and we document which way each goes.
#include <doctest/doctest.h>

#include <fstream>
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

#include "core/aead.h"
#include "core/ec.h"
#include "core/encoding.h"
#include "core/hkdf.h"
#include "testdata_path.h"

namespace nodelink::core {
namespace {

using nlohmann::json;

json Load(const std::string& name) {
  std::ifstream in(testing::TestdataPath("wycheproof/" + name));
  REQUIRE_MESSAGE(in.good(), "missing test vector file " << name);
  return json::parse(in);
}

Bytes Hex(const json& j) {
  auto b = FromHex(j.get<std::string>());
  REQUIRE(b.ok());
  return *b;
}

struct Tally {
  int passed = 0;
  int total = 0;
  int acceptable = 0;
  void Record(bool ok) {
    ++total;
    if (ok) ++passed;
  }
};

void Report(const char* what, const Tally& t, const char* acceptable_note = "") {
  std::cout << "wycheproof " << what << ": " << t.passed << "/" << t.total << " vectors passed";
  if (t.acceptable > 0) std::cout << " (" << t.acceptable << " acceptable: " << acceptable_note << ")";
  std::cout << "\n";
}

TEST_CASE("wycheproof ECDSA P-256 SHA-256 (DER)") {
  json doc = Load("ecdsa_secp256r1_sha256_test.json");
  Tally tally;
  for (const json& group : doc["testGroups"]) {
    auto key = EcPublicKey::FromPoint(Hex(group["publicKey"]["uncompressed"]));
    REQUIRE(key.ok());
    for (const json& t : group["tests"]) {
      bool verified = key->VerifySha256(Hex(t["msg"]), Hex(t["sig"]));
      std::string result = t["result"];
      if (result == "acceptable") {
        ++tally.acceptable;
        tally.Record(true);
        continue;
      }
      bool ok = verified == (result == "valid");
      CHECK_MESSAGE(ok, "tcId " << t["tcId"] << " " << t["comment"]);
      tally.Record(ok);
    }
  }
  Report("ECDSA P-256 SHA-256", tally);
  CHECK(tally.passed == tally.total);
  CHECK(tally.total == doc["numberOfTests"].get<int>());
}

TEST_CASE("wycheproof ECDH P-256 ecpoint") {
  json doc = Load("ecdh_secp256r1_ecpoint_test.json");
  Tally tally;
  for (const json& group : doc["testGroups"]) {
    for (const json& t : group["tests"]) {
      std::string result = t["result"];
      auto peer = EcPublicKey::FromPoint(Hex(t["public"]));
      auto mine = EcPrivateKey::FromScalar(Hex(t["private"]));
      REQUIRE_MESSAGE(mine.ok(), "tcId " << t["tcId"]);
      bool agreed = false;
      if (peer.ok()) {
        auto z = EcdhP256(*mine, *peer);
        agreed = z.ok() && z->ExposeSecret().size() == 32 &&
                 Bytes(z->ExposeSecret().begin(), z->ExposeSecret().end()) == Hex(t["shared"]);
      }
      if (result == "acceptable") {
        // The one acceptable case is a compressed point: nodelink/1 admits only the 65-byte
        // uncompressed form, so it is refused.
        CHECK_FALSE(agreed);
        ++tally.acceptable;
        tally.Record(true);
        continue;
      }
      bool ok = agreed == (result == "valid");
      CHECK_MESSAGE(ok, "tcId " << t["tcId"] << " " << t["comment"]);
      tally.Record(ok);
    }
  }
  Report("ECDH P-256 ecpoint", tally, "compressed point, refused by the 65-byte rule");
  CHECK(tally.passed == tally.total);
  CHECK(tally.total == doc["numberOfTests"].get<int>());
}

void RunAead(AeadBackend backend, const char* name) {
  json doc = Load("chacha20_poly1305_test.json");
  Tally tally;
  for (const json& group : doc["testGroups"]) {
    for (const json& t : group["tests"]) {
      SecretBytes key = SecretBytes::CopyOf(Hex(t["key"]));
      Bytes iv = Hex(t["iv"]), aad = Hex(t["aad"]), msg = Hex(t["msg"]);
      Bytes sealed_expected = Hex(t["ct"]);
      Bytes tag = Hex(t["tag"]);
      sealed_expected.insert(sealed_expected.end(), tag.begin(), tag.end());
      auto opened = ChaCha20Poly1305Open(key, iv, aad, sealed_expected, backend);
      auto sealed = ChaCha20Poly1305Seal(key, iv, aad, msg, backend);
      bool ok;
      if (t["result"] == "valid") {
        ok = opened.ok() && *opened == msg && sealed.ok() && *sealed == sealed_expected;
      } else {
        ok = !opened.ok();
      }
      CHECK_MESSAGE(ok, name << " tcId " << t["tcId"] << " " << t["comment"]);
      tally.Record(ok);
    }
  }
  Report(name, tally);
  CHECK(tally.passed == tally.total);
  CHECK(tally.total == doc["numberOfTests"].get<int>());
}

TEST_CASE("wycheproof ChaCha20-Poly1305, both backends") {
  RunAead(AeadBackend::kOpenSsl, "ChaCha20-Poly1305 (OpenSSL)");
  RunAead(AeadBackend::kSodium, "ChaCha20-Poly1305 (libsodium)");
  RunAead(AeadBackend::kAuto, "ChaCha20-Poly1305 (auto)");
}

TEST_CASE("wycheproof HKDF-SHA256") {
  json doc = Load("hkdf_sha256_test.json");
  Tally tally;
  for (const json& group : doc["testGroups"]) {
    for (const json& t : group["tests"]) {
      auto okm = HkdfSha256(Hex(t["ikm"]), Hex(t["salt"]), Hex(t["info"]), t["size"].get<size_t>());
      bool ok;
      if (t["result"] == "valid") {
        ok = okm.ok() && Bytes(okm->ExposeSecret().begin(), okm->ExposeSecret().end()) ==
                             Hex(t["okm"]);
      } else {
        ok = !okm.ok();
      }
      CHECK_MESSAGE(ok, "tcId " << t["tcId"] << " " << t["comment"]);
      tally.Record(ok);
    }
  }
  Report("HKDF-SHA256", tally);
  CHECK(tally.passed == tally.total);
  CHECK(tally.total == doc["numberOfTests"].get<int>());
}

}  // namespace
}  // namespace nodelink::core

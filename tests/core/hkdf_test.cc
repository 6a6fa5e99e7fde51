#include <doctest/doctest.h>

#include "core/encoding.h"
#include "core/hkdf.h"

namespace nodelink::core {
namespace {

Bytes H(const char* hex) { return *FromHex(hex); }
Bytes Out(const SecretBytes& s) { return Bytes(s.ExposeSecret().begin(), s.ExposeSecret().end()); }

// RFC 5869 appendix A, test cases 1 to 3 (SHA-256).
TEST_CASE("RFC 5869 A.1: basic") {
  auto okm = HkdfSha256(H("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"),
                        H("000102030405060708090a0b0c"), H("f0f1f2f3f4f5f6f7f8f9"), 42);
  REQUIRE(okm.ok());
  CHECK(ToHex(Out(*okm)) ==
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

TEST_CASE("RFC 5869 A.2: longer inputs and outputs") {
  Bytes ikm, salt, info;
  for (int i = 0; i < 80; ++i) {
    ikm.push_back(static_cast<uint8_t>(i));
    salt.push_back(static_cast<uint8_t>(0x60 + i));
    info.push_back(static_cast<uint8_t>(0xb0 + i));
  }
  auto okm = HkdfSha256(ikm, salt, info, 82);
  REQUIRE(okm.ok());
  CHECK(ToHex(Out(*okm)) ==
        "b11e398dc80327a1c8e7f78c596a49344f012eda2d4efad8a050cc4c19afa97c59045a99cac7827271cb41c65e"
        "590e09da3275600c2f09b8367793a9aca3db71cc30c58179ec3e87c14c01d5c1f3434f1d87");
}

TEST_CASE("RFC 5869 A.3: empty salt and info") {
  auto okm = HkdfSha256(H("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"), Bytes{}, Bytes{}, 42);
  REQUIRE(okm.ok());
  CHECK(ToHex(Out(*okm)) ==
        "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

TEST_CASE("HKDF refuses lengths outside 1..8160") {
  CHECK_FALSE(HkdfSha256(H("00"), Bytes{}, Bytes{}, 0).ok());
  CHECK_FALSE(HkdfSha256(H("00"), Bytes{}, Bytes{}, 8161).ok());
  CHECK(HkdfSha256(H("00"), Bytes{}, Bytes{}, 8160).ok());
}

}  // namespace
}  // namespace nodelink::core

#include "core/hmac.h"

namespace nodelink::core {
namespace {

// RFC 4231 test cases 1 and 2 (HMAC-SHA-256).
TEST_CASE("RFC 4231 HMAC-SHA256") {
  SecretBytes key1 = SecretBytes::CopyOf(Bytes(20, 0x0b));
  CHECK(ToHex(HmacSha256(key1, AsBytes("Hi There"))) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  SecretBytes key2 = SecretBytes::CopyOf(AsBytes("Jefe"));
  CHECK(ToHex(HmacSha256(key2, AsBytes("what do ya want for nothing?"))) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace
}  // namespace nodelink::core

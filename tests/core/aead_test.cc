#include <doctest/doctest.h>

#include "core/aead.h"
#include "core/encoding.h"
#include "core/random.h"

namespace nodelink::core {
namespace {

Bytes H(const char* hex) { return *FromHex(hex); }

constexpr AeadBackend kBackends[] = {AeadBackend::kOpenSsl, AeadBackend::kSodium,
                                     AeadBackend::kAuto};

// RFC 8439 section 2.8.2.
TEST_CASE("RFC 8439 2.8.2 AEAD example") {
  SecretBytes key = SecretBytes::CopyOf(
      H("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"));
  Bytes nonce = H("070000004041424344454647");
  Bytes aad = H("50515253c0c1c2c3c4c5c6c7");
  std::string text =
      "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, "
      "sunscreen would be it.";
  const char* expected =
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92"
      "728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b"
      "4831d7bc3ff4def08e4b7a9de576d26586cec64b6116"
      "1ae10b594f09e26a7e902ecbd0600691";
  for (AeadBackend backend : kBackends) {
    auto sealed = ChaCha20Poly1305Seal(key, nonce, aad, AsBytes(text), backend);
    REQUIRE(sealed.ok());
    CHECK(ToHex(*sealed) == expected);
    auto opened = ChaCha20Poly1305Open(key, nonce, aad, *sealed, backend);
    REQUIRE(opened.ok());
    CHECK(ToString(*opened) == text);
  }
}

struct Sample {
  SecretBytes key = RandomSecret(32);
  Bytes nonce = RandomBytes(12);
  Bytes ad = RandomBytes(40);
  Bytes plain;
  Bytes sealed;
  explicit Sample(size_t n) : plain(RandomBytes(n)) {
    sealed = *ChaCha20Poly1305Seal(key, nonce, ad, plain);
  }
};

TEST_CASE("AEAD open refuses tampering, truncation, wrong key and wrong AD") {
  for (size_t n : {size_t{0}, size_t{1}, size_t{64}, size_t{1500}, size_t{70000}}) {
    for (AeadBackend backend : kBackends) {
      CAPTURE(n);
      Sample s(n);
      REQUIRE(ChaCha20Poly1305Open(s.key, s.nonce, s.ad, s.sealed, backend).ok());

      SUBCASE("every flipped bit position class: first, middle, last byte") {
        for (size_t pos : {size_t{0}, s.sealed.size() / 2, s.sealed.size() - 1}) {
          Bytes bad = s.sealed;
          bad[pos] ^= 0x01;
          auto r = ChaCha20Poly1305Open(s.key, s.nonce, s.ad, bad, backend);
          CHECK(r.status().code() == absl::StatusCode::kPermissionDenied);
        }
      }
      SUBCASE("truncated") {
        Bytes bad(s.sealed.begin(), s.sealed.end() - 1);
        CHECK_FALSE(ChaCha20Poly1305Open(s.key, s.nonce, s.ad, bad, backend).ok());
        CHECK_FALSE(ChaCha20Poly1305Open(s.key, s.nonce, s.ad, Bytes(15), backend).ok());
        CHECK_FALSE(ChaCha20Poly1305Open(s.key, s.nonce, s.ad, Bytes{}, backend).ok());
      }
      SUBCASE("extended") {
        Bytes bad = s.sealed;
        bad.push_back(0);
        CHECK_FALSE(ChaCha20Poly1305Open(s.key, s.nonce, s.ad, bad, backend).ok());
      }
      SUBCASE("wrong key") {
        SecretBytes other = RandomSecret(32);
        CHECK_FALSE(ChaCha20Poly1305Open(other, s.nonce, s.ad, s.sealed, backend).ok());
      }
      SUBCASE("wrong AD") {
        Bytes ad = s.ad;
        ad[0] ^= 0x80;
        CHECK_FALSE(ChaCha20Poly1305Open(s.key, s.nonce, ad, s.sealed, backend).ok());
        CHECK_FALSE(ChaCha20Poly1305Open(s.key, s.nonce, Bytes{}, s.sealed, backend).ok());
      }
      SUBCASE("wrong nonce") {
        Bytes nonce = s.nonce;
        nonce[11] ^= 0x01;
        CHECK_FALSE(ChaCha20Poly1305Open(s.key, nonce, s.ad, s.sealed, backend).ok());
      }
    }
  }
}

TEST_CASE("AEAD refuses keys and nonces of the wrong size") {
  SecretBytes key = RandomSecret(32);
  SecretBytes short_key = RandomSecret(16);
  Bytes nonce(12), long_nonce(24), plain(10);
  for (AeadBackend backend : kBackends) {
    CHECK(ChaCha20Poly1305Seal(short_key, nonce, {}, plain, backend).status().code() ==
          absl::StatusCode::kInvalidArgument);
    CHECK(ChaCha20Poly1305Seal(key, long_nonce, {}, plain, backend).status().code() ==
          absl::StatusCode::kInvalidArgument);
    CHECK(ChaCha20Poly1305Open(key, Bytes(8), {}, Bytes(32), backend).status().code() ==
          absl::StatusCode::kInvalidArgument);
  }
}

TEST_CASE("both backends produce identical output at every size") {
  for (size_t n : {size_t{0}, size_t{63}, size_t{1023}, size_t{1024}, size_t{4096}, size_t{1 << 20}}) {
    Sample s(n);
    auto a = ChaCha20Poly1305Seal(s.key, s.nonce, s.ad, s.plain, AeadBackend::kOpenSsl);
    auto b = ChaCha20Poly1305Seal(s.key, s.nonce, s.ad, s.plain, AeadBackend::kSodium);
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    CHECK(*a == *b);
  }
}

}  // namespace
}  // namespace nodelink::core

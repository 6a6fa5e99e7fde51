#include "core/hmac.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>

#include "core/ossl.h"
#include "core/status.h"

namespace nodelink::core {

namespace {

// Over the SHA-256 fetched once (core/ossl.h) rather than EVP_MAC "HMAC" (and OpenSSL's HKDF on
// top of it), which looks its digest up by name on every call: HKDF over this one takes 0.5 µs
// in a loop, OpenSSL's 1.9 µs (bench/RESULTS.md, fifteenth session).
constexpr size_t kBlockBytes = 64;  // SHA-256's block
constexpr uint8_t kInnerPad = 0x36, kOuterPad = 0x5c;

}  // namespace

Sha256Digest HmacSha256(ByteView key, std::initializer_list<ByteView> parts) {
  std::array<uint8_t, kBlockBytes> pad{};
  if (key.size() > kBlockBytes) {
    Sha256Digest hashed = Sha256(key);
    std::copy(hashed.begin(), hashed.end(), pad.begin());
    OPENSSL_cleanse(hashed.data(), hashed.size());
  } else {
    std::copy(key.begin(), key.end(), pad.begin());
  }
  for (uint8_t& b : pad) b ^= kInnerPad;
  MdCtxPtr ctx(EVP_MD_CTX_new());
  Sha256Digest inner{}, out{};
  unsigned int len = 0;
  bool ok = ctx != nullptr && EVP_DigestInit_ex2(ctx.get(), Sha256Md(), nullptr) == 1 &&
            EVP_DigestUpdate(ctx.get(), pad.data(), pad.size()) == 1;
  for (ByteView part : parts) {
    ok = ok && (part.empty() || EVP_DigestUpdate(ctx.get(), part.data(), part.size()) == 1);
  }
  ok = ok && EVP_DigestFinal_ex(ctx.get(), inner.data(), &len) == 1 && len == inner.size();
  for (uint8_t& b : pad) b ^= kInnerPad ^ kOuterPad;
  ok = ok && EVP_DigestInit_ex2(ctx.get(), Sha256Md(), nullptr) == 1 &&
       EVP_DigestUpdate(ctx.get(), pad.data(), pad.size()) == 1 &&
       EVP_DigestUpdate(ctx.get(), inner.data(), inner.size()) == 1 &&
       EVP_DigestFinal_ex(ctx.get(), out.data(), &len) == 1 && len == out.size();
  OPENSSL_cleanse(pad.data(), pad.size());
  OPENSSL_cleanse(inner.data(), inner.size());
  if (!ok) Die("HMAC-SHA256 failed");  // cannot fail on valid memory with a fetched digest
  return out;
}

}  // namespace nodelink::core

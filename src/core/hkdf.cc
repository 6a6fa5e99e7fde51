#include "core/hkdf.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <array>

#include "core/hmac.h"

namespace nodelink::core {

// RFC 5869 over core::HmacSha256 (why not OpenSSL's HKDF: core/hmac.cc).
absl::StatusOr<SecretBytes> HkdfSha256(ByteView ikm, ByteView salt, ByteView info, size_t length) {
  if (length == 0 || length > 255 * kSha256Bytes) {
    return absl::InvalidArgumentError("HKDF-SHA256 output length must be 1..8160 bytes");
  }
  static constexpr std::array<uint8_t, kSha256Bytes> kNoSalt{};  // RFC 5869: HashLen zeros
  Sha256Digest prk = HmacSha256(salt.empty() ? ByteView(kNoSalt) : salt, {ikm});
  SecretBytes out(length);
  Sha256Digest block{};
  size_t written = 0;
  for (uint8_t counter = 1; written < length; ++counter) {
    const std::array<uint8_t, 1> c{counter};
    block = HmacSha256(prk, {counter == 1 ? ByteView() : ByteView(block), info, c});
    const size_t n = std::min(block.size(), length - written);
    std::copy_n(block.begin(), n, out.MutableSecret().begin() + static_cast<ptrdiff_t>(written));
    written += n;
  }
  OPENSSL_cleanse(prk.data(), prk.size());
  OPENSSL_cleanse(block.data(), block.size());
  return out;
}

}  // namespace nodelink::core

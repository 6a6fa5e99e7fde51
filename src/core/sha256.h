#pragma once

#include <array>
#include <cstdint>

#include "core/bytes.h"

namespace nodelink::core {

inline constexpr size_t kSha256Bytes = 32;
using Sha256Digest = std::array<uint8_t, kSha256Bytes>;

// SHA-256 (OpenSSL one-shot EVP_Digest). Thread-safe.
Sha256Digest Sha256(ByteView data);
inline Bytes Sha256Bytes(ByteView data) {
  Sha256Digest d = Sha256(data);
  return Bytes(d.begin(), d.end());
}

}  // namespace nodelink::core

// HMAC-SHA256 (RFC 2104): keyed digests that must not be brute-forced from a store file, and the
// PRF under HKDF (core/hkdf.h).
#pragma once

#include <initializer_list>

#include "core/bytes.h"
#include "core/secret_bytes.h"
#include "core/sha256.h"

namespace nodelink::core {

// The MAC of the concatenation of `parts`. Thread-safe. Aborts only if OpenSSL lacks SHA-256 (a
// broken installation). The padded key and the inner digest are wiped before it returns.
Sha256Digest HmacSha256(ByteView key, std::initializer_list<ByteView> parts);
inline Sha256Digest HmacSha256(const SecretBytes& key, ByteView data) {
  return HmacSha256(key.ExposeSecret(), {data});
}

}  // namespace nodelink::core

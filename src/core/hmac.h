// HMAC-SHA256 (RFC 2104), for keyed digests that must not be brute-forced from a store file.
#pragma once

#include "core/bytes.h"
#include "core/secret_bytes.h"
#include "core/sha256.h"

namespace nodelink::core {

// Thread-safe. Aborts only if OpenSSL lacks HMAC (a broken installation).
Sha256Digest HmacSha256(const SecretBytes& key, ByteView data);

}  // namespace nodelink::core

// ChaCha20-Poly1305, IETF variant (RFC 8439): 32-byte key, 12-byte nonce, 16-byte tag appended.
// PROTOCOL.md section 2. Two implementations of the same function: OpenSSL's EVP (faster on large
// inputs) and libsodium's (faster on small ones); the default picks by size, from the figures in
// bench/RESULTS.md.
#pragma once

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/secret_bytes.h"

namespace nodelink::core {

inline constexpr size_t kAeadKeyBytes = 32;
inline constexpr size_t kAeadNonceBytes = 12;
inline constexpr size_t kAeadTagBytes = 16;

enum class AeadBackend { kAuto, kOpenSsl, kSodium };

// Returns ciphertext || tag. InvalidArgument on a key or nonce of the wrong size.
[[nodiscard]] absl::StatusOr<Bytes> ChaCha20Poly1305Seal(const SecretBytes& key, ByteView nonce,
                                                         ByteView ad, ByteView plaintext,
                                                         AeadBackend backend = AeadBackend::kAuto);

// Opens ciphertext || tag. InvalidArgument on wrong sizes, PermissionDenied("decryption failed")
// when authentication fails; no plaintext byte is returned (or left in memory) then.
[[nodiscard]] absl::StatusOr<Bytes> ChaCha20Poly1305Open(const SecretBytes& key, ByteView nonce,
                                                         ByteView ad, ByteView ciphertext,
                                                         AeadBackend backend = AeadBackend::kAuto);

// Inputs below this size go to libsodium under kAuto (measured: bench/RESULTS.md).
inline constexpr size_t kAeadSodiumBelowBytes = 2048;

}  // namespace nodelink::core

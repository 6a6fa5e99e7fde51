// SHA-256 fingerprints as operators read and type them (PROTOCOL.md section 3: pinned keys are
// listed by the SHA-256 of their DER SubjectPublicKeyInfo). Thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/bytes.h"

namespace nodelink::keys {

inline constexpr size_t kFingerprintBytes = 32;

// "SHA256:3f:a2:...": lowercase hex pairs separated by colons, the form `openssl dgst -sha256 -c`
// prints, so an operator can compare it with
//   openssl x509 -in cert.pem -noout -pubkey | openssl pkey -pubin -outform DER |
//   openssl dgst -sha256 -c
// Any byte string is formatted; pins are 32 bytes.
std::string FingerprintHex(ByteView digest);

// Parses what an operator typed: the FingerprintHex form (prefix "SHA256:" or "SHA2-256:" in any
// case, optional), colon/space-separated pairs, or 64 plain hex digits. InvalidArgument unless it
// is exactly 32 bytes of hex.
[[nodiscard]] absl::StatusOr<Bytes> ParseFingerprint(std::string_view text);

}  // namespace nodelink::keys

// HKDF-SHA256 (RFC 5869), PROTOCOL.md section 2.
#pragma once

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/secret_bytes.h"

namespace nodelink::core {

// Extract-then-expand. `length` is 1..8160 (255 * 32); InvalidArgument otherwise. Empty salt and
// info are allowed (RFC 5869: an empty salt means 32 zero bytes). Thread-safe.
[[nodiscard]] absl::StatusOr<SecretBytes> HkdfSha256(ByteView ikm, ByteView salt, ByteView info,
                                                     size_t length);
[[nodiscard]] inline absl::StatusOr<SecretBytes> HkdfSha256(const SecretBytes& ikm, ByteView salt,
                                                            ByteView info, size_t length) {
  return HkdfSha256(ikm.ExposeSecret(), salt, info, length);
}

}  // namespace nodelink::core

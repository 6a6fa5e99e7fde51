// Reading and writing the files the key tools exchange with operators (PEM, DER, key files), with
// size limits on input and safe modes on output. All functions are thread-safe.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/secret_bytes.h"

namespace nodelink::keys {

// Files the tools read (certificates, CSRs, CRLs, PEM keys) are small; a larger file is refused
// rather than read into memory.
inline constexpr size_t kMaxInputFileBytes = 4 * 1024 * 1024;

// Reads a whole file of at most `max_bytes`. NotFound if it does not exist, InvalidArgument if it
// is larger, Internal on other I/O errors. Thread-safe.
[[nodiscard]] absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                                        size_t max_bytes = kMaxInputFileBytes);
// The same, into SecretBytes (passphrase files, PEM private keys). The intermediate buffer is
// wiped.
[[nodiscard]] absl::StatusOr<core::SecretBytes> ReadSecretFile(const std::string& path,
                                                               size_t max_bytes = 64 * 1024);

// Writes `data` to `path` through a temporary file in the same directory and rename(2), so a
// reader never sees half a file; replaces an existing file. `mode` applies to the new file.
[[nodiscard]] absl::Status WriteFileAtomically(const std::string& path, ByteView data,
                                               mode_t mode = 0644);
inline absl::Status WriteFileAtomically(const std::string& path, std::string_view data,
                                        mode_t mode = 0644) {
  return WriteFileAtomically(path, AsBytes(data), mode);
}

// Creates a new file with mode 0600 (O_EXCL, O_NOFOLLOW) holding a secret; refuses to replace an
// existing file (AlreadyExists), since that could destroy the only copy of a key. Thread-safe.
[[nodiscard]] absl::Status WriteNewSecretFile(const std::string& path, ByteView secret);

// Refuses a secret file that others may read (mode & 077), like ssh does for its keys, so a key
// copied with the wrong mode is noticed. FailedPrecondition with the chmod to run.
[[nodiscard]] absl::Status CheckPrivateFileMode(const std::string& path);

bool FileExists(const std::string& path);

}  // namespace nodelink::keys

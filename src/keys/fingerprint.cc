#include "keys/fingerprint.h"

#include <cctype>

#include "core/encoding.h"

namespace nodelink::keys {

std::string FingerprintHex(ByteView digest) {
  std::string hex = core::ToHex(digest);
  std::string out = "SHA256:";
  for (size_t i = 0; i < hex.size(); i += 2) {
    if (i > 0) out += ':';
    out.append(hex, i, 2);
  }
  return out;
}

absl::StatusOr<Bytes> ParseFingerprint(std::string_view text) {
  auto strip_prefix = [&text](std::string_view prefix) {
    if (text.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(text[i])) != prefix[i]) return false;
    }
    text.remove_prefix(prefix.size());
    return true;
  };
  if (!strip_prefix("sha256:")) strip_prefix("sha2-256:");
  std::string hex;
  for (char c : text) {
    if (c == ':' || c == ' ') continue;
    hex += c;
  }
  if (hex.size() != 2 * kFingerprintBytes) {
    return absl::InvalidArgumentError(
        "a fingerprint is 32 bytes: 64 hex digits, optionally as SHA256:ab:cd:... (as `show` "
        "prints it)");
  }
  auto bytes = core::FromHex(hex);
  if (!bytes.ok()) {
    return absl::InvalidArgumentError("fingerprint has a character that is not a hex digit");
  }
  return *std::move(bytes);
}

}  // namespace nodelink::keys

// The failure codes of a receiver (PROTOCOL.md sections 5 and 7), used for counters, logs and the
// conformance vectors' `expect` field.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string_view>

namespace nodelink::messages {

enum class ReceiveCode {
  kOk = 0,
  kMalformed,
  kMisrouted,
  kWrongFederation,
  kStale,
  kDuplicate,
  kUnmatchedReply,
  kBadCertificate,
  kKeyChanged,
  kBadSignature,
  kUnknownChannel,
  kDecryptFailed,
  kUnknownType,
  kRateLimited,
};
inline constexpr size_t kReceiveCodeCount = 14;

// "OK", "MALFORMED", ... exactly as PROTOCOL.md spells them.
std::string_view ReceiveCodeName(ReceiveCode code);
std::optional<ReceiveCode> ReceiveCodeFromName(std::string_view name);

}  // namespace nodelink::messages

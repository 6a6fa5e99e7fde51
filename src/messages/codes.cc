#include "messages/codes.h"

namespace nodelink::messages {

namespace {
constexpr std::array<std::string_view, kReceiveCodeCount> kNames = {
    "OK",           "MALFORMED",     "MISROUTED",      "WRONG_FEDERATION", "STALE",
    "DUPLICATE",    "UNMATCHED_REPLY", "BAD_CERTIFICATE", "KEY_CHANGED",   "BAD_SIGNATURE",
    "UNKNOWN_CHANNEL", "DECRYPT_FAILED", "UNKNOWN_TYPE", "RATE_LIMITED"};
}  // namespace

std::string_view ReceiveCodeName(ReceiveCode code) {
  return kNames[static_cast<size_t>(code)];
}

std::optional<ReceiveCode> ReceiveCodeFromName(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i) {
    if (kNames[i] == name) return static_cast<ReceiveCode>(i);
  }
  return std::nullopt;
}

}  // namespace nodelink::messages

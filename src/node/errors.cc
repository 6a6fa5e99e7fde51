#include "nodelink/errors.hpp"

#include "absl/strings/cord.h"
#include "core/status.h"

namespace nodelink {

namespace {
constexpr char kPayloadUrl[] = "type.nodelink.dev/peer-error-code";
}

absl::Status PeerError(const std::string& peer, const std::string& code,
                       const std::string& detail) {
  // A peer's TIMEOUT means the request's own deadline passed on the peer's clock first: the
  // caller sees one DeadlineExceeded whichever side noticed first (the two race by design).
  const absl::StatusCode status_code = code == kErrorTimeout
                                           ? absl::StatusCode::kDeadlineExceeded
                                           : absl::StatusCode::kFailedPrecondition;
  absl::Status status(status_code, core::ToAbsl(peer + " answered " + code +
                                                (detail.empty() ? "" : ": " + detail)));
  status.SetPayload(kPayloadUrl, absl::Cord(core::ToAbsl(code)));
  return status;
}

std::optional<std::string> PeerErrorCode(const absl::Status& status) {
  auto payload = status.GetPayload(kPayloadUrl);
  if (!payload) return std::nullopt;
  return std::string(*payload);
}

}  // namespace nodelink

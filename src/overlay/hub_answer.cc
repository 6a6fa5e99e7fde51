#include "overlay/hub_answer.h"

#include <string>

#include "core/status.h"

namespace nodelink::overlay {

absl::Status HubRejectionStatus(const HubAnswer& answer) {
  std::string message = "hub rejected the message: " + v1::Code_Name(answer.code);
  if (!answer.detail.empty()) message += " (" + answer.detail + ")";
  absl::StatusCode code;
  switch (answer.code) {
    case v1::UNKNOWN_DESTINATION: code = absl::StatusCode::kNotFound; break;
    case v1::TOO_LARGE: code = absl::StatusCode::kInvalidArgument; break;
    case v1::QUEUE_FULL: case v1::RATE_LIMITED: code = absl::StatusCode::kResourceExhausted; break;
    case v1::EXPIRED: code = absl::StatusCode::kDeadlineExceeded; break;
    case v1::IMPERSONATION: case v1::WRONG_FEDERATION: code = absl::StatusCode::kPermissionDenied; break;
    default: code = absl::StatusCode::kFailedPrecondition; break;
  }
  return absl::Status(code, core::ToAbsl(message));
}

}  // namespace nodelink::overlay

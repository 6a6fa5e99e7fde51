#include "router/error_reply.h"

#include <array>

#include "absl/strings/cord.h"
#include "core/status.h"

namespace nodelink::router {
namespace {

constexpr std::array<std::string_view, 10> kAllCodes = {
    error_code::kNotAuthorized, error_code::kBadParties,  error_code::kParamsMismatch,
    error_code::kNotAParty,     error_code::kTimeout,     error_code::kExpired,
    error_code::kMalformed,     error_code::kUnknownType, error_code::kHandlerFailed,
    error_code::kUnsupported};

// The payload type under which ErrorReplyStatus keeps the wire code.
constexpr std::string_view kCodePayload = "type.nodelink.dev/router.ErrorReplyCode";

}  // namespace

bool IsErrorReplyCode(std::string_view code) {
  for (std::string_view c : kAllCodes) {
    if (c == code) return true;
  }
  return false;
}

absl::Status ErrorReplyStatus(std::string_view code, std::string_view detail) {
  if (!IsErrorReplyCode(code)) core::Die("ErrorReplyStatus: not an ErrorReply code of PROTOCOL 8");
  absl::StatusCode status_code = absl::StatusCode::kFailedPrecondition;
  if (code == error_code::kNotAuthorized) status_code = absl::StatusCode::kPermissionDenied;
  if (code == error_code::kTimeout || code == error_code::kExpired)
    status_code = absl::StatusCode::kDeadlineExceeded;
  if (code == error_code::kMalformed || code == error_code::kBadParties)
    status_code = absl::StatusCode::kInvalidArgument;
  if (code == error_code::kUnsupported || code == error_code::kUnknownType)
    status_code = absl::StatusCode::kUnimplemented;
  absl::Status status(status_code, core::ToAbsl(detail));
  status.SetPayload(core::ToAbsl(kCodePayload), absl::Cord(core::ToAbsl(code)));
  return status;
}

v1::ErrorReply ErrorReplyFor(const absl::Status& status) {
  v1::ErrorReply reply;
  if (auto code = status.GetPayload(core::ToAbsl(kCodePayload)); code.has_value()) {
    reply.set_code(std::string(*code));
    reply.set_detail(std::string(status.message()));
    return reply;
  }
  if (status.code() == absl::StatusCode::kDeadlineExceeded) {
    reply.set_code(std::string(error_code::kTimeout));
    reply.set_detail("the responder's handler did not finish before its deadline");
  } else {
    reply.set_code(std::string(error_code::kHandlerFailed));
    reply.set_detail("the responder's handler failed; its operator's log has the reason");
  }
  return reply;
}

v1::Inner MakeErrorReply(std::string_view code, std::string_view detail) {
  v1::Inner inner;
  inner.mutable_error_reply()->set_code(std::string(code));
  inner.mutable_error_reply()->set_detail(std::string(detail));
  return inner;
}

std::string_view BodyTypeName(v1::Inner::BodyCase body) {
  switch (body) {
    case v1::Inner::kKeyRequest:
      return "key_request";
    case v1::Inner::kKeyReply:
      return "key_reply";
    case v1::Inner::kAdditiveSharingRequest:
      return "additive_sharing_request";
    case v1::Inner::kAdditiveSharingReply:
      return "additive_sharing_reply";
    case v1::Inner::kSecaggSetupRequest:
      return "secagg_setup_request";
    case v1::Inner::kSecaggSetupReply:
      return "secagg_setup_reply";
    case v1::Inner::kErrorReply:
      return "error_reply";
    case v1::Inner::kApp:
      return "app";
    case v1::Inner::BODY_NOT_SET:
      break;
  }
  return "none";
}

bool IsReplyOnlyBody(v1::Inner::BodyCase body) {
  return body == v1::Inner::kKeyReply || body == v1::Inner::kAdditiveSharingReply ||
         body == v1::Inner::kSecaggSetupReply || body == v1::Inner::kErrorReply;
}

}  // namespace nodelink::router

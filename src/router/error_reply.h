// ErrorReply codes (PROTOCOL.md section 8) and how a handler's failure becomes one.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "nodelink/v1/inner.pb.h"

namespace nodelink::router {

// The `ErrorReply.code` values of PROTOCOL.md section 8, spelled exactly as on the wire.
namespace error_code {
inline constexpr std::string_view kNotAuthorized = "NOT_AUTHORIZED";
inline constexpr std::string_view kBadParties = "BAD_PARTIES";
inline constexpr std::string_view kParamsMismatch = "PARAMS_MISMATCH";
inline constexpr std::string_view kNotAParty = "NOT_A_PARTY";
inline constexpr std::string_view kTimeout = "TIMEOUT";
inline constexpr std::string_view kExpired = "EXPIRED";
inline constexpr std::string_view kMalformed = "MALFORMED";
inline constexpr std::string_view kUnknownType = "UNKNOWN_TYPE";
inline constexpr std::string_view kHandlerFailed = "HANDLER_FAILED";
inline constexpr std::string_view kUnsupported = "UNSUPPORTED";
}  // namespace error_code

// Whether `code` is one of the codes above.
bool IsErrorReplyCode(std::string_view code);

// A failure status for a handler to return when the requester must see a specific code and a
// detail written for it (for example BAD_PARTIES with "parties must be in ascending order").
// `code` must be one of the codes above (aborts otherwise: a programmer error). The detail is sent
// to the peer: never put a secret or a local path in it.
absl::Status ErrorReplyStatus(std::string_view code, std::string_view detail);

// The code and detail a requester is sent for a failed handler. A status made by
// ErrorReplyStatus gives its own code and detail. Any other status is local information: it gives
// HANDLER_FAILED (TIMEOUT for DeadlineExceeded) with a generic detail, and its message is only
// logged, so that internal errors never leak to a peer.
v1::ErrorReply ErrorReplyFor(const absl::Status& status);

// An Inner carrying ErrorReply{code, detail}; request_id and deadline are set by the caller.
v1::Inner MakeErrorReply(std::string_view code, std::string_view detail);

// The name of a body type for logs and counters ("key_request", "app", "none" for BODY_NOT_SET).
std::string_view BodyTypeName(v1::Inner::BodyCase body);

// Reply bodies (PROTOCOL.md section 8): an Inner with one of these and a request_id is a reply,
// never a request, so it is never answered (an ErrorReply to an ErrorReply would loop). AppMessage
// is not in the list: with a request_id it is a reply only if it matches a pending request.
bool IsReplyOnlyBody(v1::Inner::BodyCase body);

}  // namespace nodelink::router

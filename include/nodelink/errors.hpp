// Errors a peer reports (PROTOCOL.md section 8, ErrorReply) as they reach the application.
#pragma once

#include <optional>
#include <string>

#include "absl/status/status.h"

namespace nodelink {

// ErrorReply codes, as PROTOCOL.md section 8 spells them.
inline constexpr char kErrorNotAuthorized[] = "NOT_AUTHORIZED";
inline constexpr char kErrorBadParties[] = "BAD_PARTIES";
inline constexpr char kErrorParamsMismatch[] = "PARAMS_MISMATCH";
inline constexpr char kErrorNotAParty[] = "NOT_A_PARTY";
inline constexpr char kErrorTimeout[] = "TIMEOUT";
inline constexpr char kErrorExpired[] = "EXPIRED";
inline constexpr char kErrorMalformed[] = "MALFORMED";
inline constexpr char kErrorUnknownType[] = "UNKNOWN_TYPE";
inline constexpr char kErrorHandlerFailed[] = "HANDLER_FAILED";
inline constexpr char kErrorUnsupported[] = "UNSUPPORTED";

// The ErrorReply code a peer answered with, when `status` came from one (Node::Request,
// Node::SendAll); nullopt for local errors such as timeouts.
std::optional<std::string> PeerErrorCode(const absl::Status& status);

// A status carrying a peer's ErrorReply (code and detail): FailedPrecondition, except
// DeadlineExceeded for TIMEOUT (the request's deadline passed at the peer before it did here).
absl::Status PeerError(const std::string& peer, const std::string& code, const std::string& detail);

}  // namespace nodelink

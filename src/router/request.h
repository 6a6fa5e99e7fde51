// What a request to a peer, or a fan-out to several, came to (PROTOCOL.md section 8, "Requests
// and replies").
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "nodelink/v1/inner.pb.h"

namespace nodelink::router {

struct RequestOutcome {
  enum class Kind {
    kReply,       // the peer answered; `reply` holds it
    kErrorReply,  // the peer answered ErrorReply; `reply.error_reply()` holds code and detail
    kTimeout,     // no reply from that peer before the deadline
    kSendFailed,  // the overlay could not deliver the request to the hub (`status` says why)
    kCancelled,   // the router stopped first
  };

  Kind kind = Kind::kCancelled;
  std::string peer;
  std::string request_id;
  v1::Inner reply;  // kReply and kErrorReply: the reply as received
  // OK for kReply. Otherwise why, in words for an operator: for kErrorReply the peer's code and
  // detail (FailedPrecondition), DeadlineExceeded, the send error, or Cancelled.
  absl::Status status;

  bool ok() const { return kind == Kind::kReply; }
  // The peer answered (a reply or an ErrorReply), as opposed to no answer at all.
  bool answered() const { return kind == Kind::kReply || kind == Kind::kErrorReply; }
  const v1::ErrorReply& error_reply() const { return reply.error_reply(); }
};

// "REPLY", "ERROR_REPLY", "TIMEOUT", "SEND_FAILED", "CANCELLED".
std::string_view RequestOutcomeKindName(RequestOutcome::Kind kind);

struct FanOutOptions {
  // Make `status` an error, naming the parties that did not answer, if any did not.
  bool fail_if_any_missing = false;
};

struct FanOutResult {
  std::map<std::string, RequestOutcome> outcomes;  // one per party
  // Parties that did not answer (timeout, send failure, cancelled), in ascending order. A party
  // that answered with an ErrorReply did answer.
  std::vector<std::string> missing;
  // OK, unless FanOutOptions::fail_if_any_missing and `missing` is not empty: then
  // DeadlineExceeded naming them.
  absl::Status status;
};

}  // namespace nodelink::router

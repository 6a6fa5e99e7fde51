// The router's counters, as a snapshot readable from the library (the hub's and the node's
// metrics read them). A count is updated after the work it counts (reply sent, inbox row
// completed, dispatch ended), with release/acquire ordering: a reader that sees it sees that work.
#pragma once

#include <array>
#include <cstdint>

#include "messages/codes.h"
#include "nodelink/v1/inner.pb.h"

namespace nodelink::router {

struct BodyTypeCounters {
  uint64_t handled = 0;            // handler and final succeeded
  uint64_t failed = 0;             // handler or final returned an error or threw
  uint64_t timed_out = 0;          // the handler's deadline passed before it finished
  uint64_t cancelled = 0;          // the router stopped while the handler ran or waited
  uint64_t no_handler = 0;         // no handler registered (a request got UNKNOWN_TYPE)
  uint64_t expired = 0;            // past its deadline_ms on arrival (a request got EXPIRED)
  uint64_t answered_from_log = 0;  // a repeated request answered from the answered log
};

// Body types are indexed by their field number minus 9 (key_request = 1 ... app = 8); index 0
// counts messages with no body.
inline constexpr size_t kBodyTypeSlots = 9;
inline size_t BodyTypeSlot(v1::Inner::BodyCase body) {
  const int n = static_cast<int>(body);
  return (n >= 10 && n <= 17) ? static_cast<size_t>(n - 9) : 0;
}

struct RouterCounters {
  std::array<BodyTypeCounters, kBodyTypeSlots> by_body_type{};
  const BodyTypeCounters& of(v1::Inner::BodyCase body) const {
    return by_body_type[BodyTypeSlot(body)];
  }

  // Inbox: envelopes submitted and not yet acknowledged.
  uint64_t submitted = 0;
  uint64_t acknowledged = 0;
  uint64_t inbox_depth = 0;
  uint64_t inbox_depth_max = 0;
  uint64_t inbox_capacity = 0;
  uint64_t inbox_overflow = 0;        // Submit calls that found the inbox above its capacity
  uint64_t submitted_after_stop = 0;  // ignored: the hub pushes them again after a reconnect
  // Open outcomes by ReceiveCode (index = static_cast<size_t>(code)).
  std::array<uint64_t, messages::kReceiveCodeCount> open_outcomes{};

  // Handling.
  uint64_t dispatches_in_progress = 0;  // handlers running, waiting on an exchange, or in final
  uint64_t queued_work = 0;             // opens, dispatches and continuations not started yet
  uint64_t repeats_in_progress = 0;     // a request repeated while its first copy was handled
  uint64_t requests_unanswered = 0;     // a handler and final succeeded without replying
  uint64_t replies_sent = 0;            // replies and ErrorReplies this node sent
  uint64_t reply_send_failures = 0;
  uint64_t answered_log_errors = 0;

  // Replies received.
  uint64_t replies_matched = 0;
  uint64_t replies_wrong_sender = 0;  // request_id of a pending request, from another peer
  uint64_t replies_unmatched = 0;     // reply body matching no pending request (late, duplicate)

  // Requests this node made.
  uint64_t requests_sent = 0;
  uint64_t requests_replied = 0;
  uint64_t requests_error_replied = 0;
  uint64_t requests_timed_out = 0;
  uint64_t requests_send_failed = 0;
  uint64_t requests_cancelled = 0;
};

}  // namespace nodelink::router

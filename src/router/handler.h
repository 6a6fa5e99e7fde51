// What a message handler sees: the opened message, its deadline, a cancellation token, a way to
// reply, and a way to defer on an EventWaitExchange without holding a worker (DESIGN.md, "The
// life of a message", steps 5-6 and the paragraph after them).
#pragma once

#include <algorithm>
#include <any>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "overlay/delivery.h"
#include "router/event_wait_exchange.h"

namespace nodelink::router {

class HandlerContext;
class FinalContext;

// Set by the router when a handler's deadline passes or the router stops. Handlers that run long
// poll it and return early; the router does not wait for them to notice (the requester already
// got its ErrorReply, and their result is ignored). Copyable, cheap, thread-safe.
class CancellationToken {
 public:
  CancellationToken() = default;
  explicit CancellationToken(std::shared_ptr<const std::atomic<bool>> flag)
      : flag_(std::move(flag)) {}
  bool IsCancelled() const { return flag_ && flag_->load(std::memory_order_acquire); }

 private:
  std::shared_ptr<const std::atomic<bool>> flag_;
};

// A handler, for one body type. Runs on a worker, on its sender's strand (so the handlers of one
// sender never run at the same time). Returns:
//   OK, without a deferral:  success; the final step runs next;
//   OK, after ctx.Defer():   not finished; the continuation finishes it later;
//   an error (or throws):    failure; no final; a request gets an ErrorReply (see ErrorReplyFor)
//                            unless the handler already replied.
using Handler = std::function<absl::Status(HandlerContext&)>;

// The step that runs once a deferral's wait ended (all ids arrived, or its deadline passed, or it
// was cancelled: check result.end). Same contract as a Handler, and may defer again.
template <class V>
using Continuation = std::function<absl::Status(HandlerContext&, WaitResult<V>)>;

// The final step: runs only after the handler succeeded, on the same strand, and is never
// cancelled or timed out once started (the deadline sweep leaves it alone). An error or an
// exception counts as a failure; a request not yet answered then gets HANDLER_FAILED.
using Final = std::function<absl::Status(FinalContext&)>;

namespace internal {

// The router's side of one message being handled. Implemented in router.cc; handlers use it only
// through HandlerContext and FinalContext.
class DispatchControl {
 public:
  using Step = std::function<absl::Status(HandlerContext&)>;

  virtual ~DispatchControl() = default;
  virtual const overlay::InboxMessage& message() const = 0;
  virtual bool is_request() const = 0;
  virtual uint64_t deadline_ms() const = 0;
  virtual CancellationToken cancellation() const = 0;
  virtual std::any& state() = 0;
  virtual absl::Status Reply(v1::Inner reply) = 0;
  // Reserves the one deferral of the step now running. Returns a function, callable once from any
  // thread, that queues the continuation on the sender's strand; or an error if this step already
  // deferred, the message is no longer being handled, or the router is stopping.
  virtual absl::StatusOr<std::function<void(Step)>> BeginDeferral() = 0;
  // Hands over how to cancel the wait behind the reserved deferral (called at once if the message
  // ended meanwhile).
  virtual void AttachDeferralCancel(std::function<void()> cancel) = 0;
};

}  // namespace internal

// Valid only during the handler or continuation call it is passed to. Not thread-safe: use it on
// the thread that runs the handler.
class HandlerContext {
 public:
  explicit HandlerContext(internal::DispatchControl& control) : control_(control) {}

  const overlay::InboxMessage& message() const { return control_.message(); }
  const std::string& sender() const { return control_.message().sender; }
  const v1::Inner& inner() const { return control_.message().inner; }
  // A request (it has a request_id and a request body) expects exactly one reply.
  bool is_request() const { return control_.is_request(); }
  // Unix ms on the router's clock: min(arrival + the router's handler deadline, the request's
  // deadline_ms).
  uint64_t deadline_ms() const { return control_.deadline_ms(); }
  CancellationToken cancellation() const { return control_.cancellation(); }
  bool IsCancelled() const { return control_.cancellation().IsCancelled(); }
  // Shared by the handler, its continuations and its final: what they pass to each other.
  std::any& state() { return control_.state(); }

  // Sends `reply` to the sender with this request's request_id (the router sets it and clears
  // deadline_ms), and records it in the answered log. At most once per request. Errors:
  // FailedPrecondition for a one-way message or once the request ended (timed out, failed,
  // cancelled: the requester already has its ErrorReply); AlreadyExists for a second reply.
  // Sending itself is asynchronous: a send failure is logged and counted, not returned.
  absl::Status Reply(v1::Inner reply) { return control_.Reply(std::move(reply)); }

  // Defers the rest of the handler until every id of `ids` is posted on `exchange` (or
  // min(deadline_ms, this handler's deadline) passes, or the wait is cancelled): the worker goes
  // back to the pool, and `continuation` later runs on the sender's strand with the wait's result.
  // Return OK from the handler after a successful Defer. At most one Defer per handler or
  // continuation call. If the handler's own deadline passes first, the router ends it with
  // TIMEOUT and cancels the wait. `exchange` must outlive the wait.
  template <class V>
  absl::Status Defer(EventWaitExchange<V>& exchange, std::vector<std::string> ids,
                     uint64_t deadline_ms, std::type_identity_t<Continuation<V>> continuation,
                     WaitOptions options = {}) {
    absl::StatusOr<std::function<void(internal::DispatchControl::Step)>> resume =
        control_.BeginDeferral();
    if (!resume.ok()) return resume.status();
    const uint64_t deadline = std::min(deadline_ms, control_.deadline_ms());
    auto handle = exchange.WaitAsync(
        std::move(ids), deadline,
        [resume = std::move(*resume),
         continuation = std::move(continuation)](WaitResult<V> result) mutable {
          resume([continuation = std::move(continuation), result = std::move(result)](
                     HandlerContext& ctx) mutable { return continuation(ctx, std::move(result)); });
        },
        std::move(options));
    control_.AttachDeferralCancel([&exchange, handle] { exchange.Cancel(handle); });
    return absl::OkStatus();
  }

 private:
  internal::DispatchControl& control_;
};

// What a final step sees. Valid only during the call. Not thread-safe.
class FinalContext {
 public:
  explicit FinalContext(internal::DispatchControl& control) : control_(control) {}

  const overlay::InboxMessage& message() const { return control_.message(); }
  const std::string& sender() const { return control_.message().sender; }
  const v1::Inner& inner() const { return control_.message().inner; }
  bool is_request() const { return control_.is_request(); }
  std::any& state() { return control_.state(); }
  // As HandlerContext::Reply (a final may send the reply once its effects are recorded).
  absl::Status Reply(v1::Inner reply) { return control_.Reply(std::move(reply)); }

 private:
  internal::DispatchControl& control_;
};

}  // namespace nodelink::router

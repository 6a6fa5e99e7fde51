#include "router/router.h"

#include <spdlog/spdlog.h>

#include <array>
#include <atomic>
#include <exception>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <unordered_map>
#include <utility>

#include "core/encoding.h"
#include "core/random.h"
#include "core/status.h"
#include "overlay/commit_queue.h"
#include "router/error_reply.h"
#include "router/event_wait_exchange.h"
#include "router/periodic_timer.h"
#include "router/strand_executor.h"

namespace nodelink::router {
namespace {

// Counters synchronize (release on increment, acquire on read): whoever reads a count also sees
// what happened before it was counted (tests rely on it; on x86 it costs nothing extra).
using Counter = std::atomic<uint64_t>;
void Inc(Counter& c) { c.fetch_add(1, std::memory_order_acq_rel); }
uint64_t Get(const Counter& c) { return c.load(std::memory_order_acquire); }

struct AtomicBodyCounters {
  Counter handled{0};
  Counter failed{0};
  Counter timed_out{0};
  Counter cancelled{0};
  Counter no_handler{0};
  Counter expired{0};
  Counter answered_from_log{0};
};

struct HandlerEntry {
  Handler handler;
  Final final;
};

// Where one message is in its handling. kHandler covers the handler, its continuations and the
// waits between them; the deadline sweep and Stop() end only that phase. kFinal is never
// interrupted.
enum class Phase { kHandler, kFinal, kDone, kFailed, kTimedOut, kCancelled };

constexpr size_t kRequestIdBytes = 16;

// Each sender has two strands: one opens its envelopes, one runs its handlers. Both keep arrival
// order; keeping them apart means a slow handler never delays opening and acknowledging the
// envelopes behind it. Credits are shared by all senders of a recipient (PROTOCOL.md section 4),
// so envelopes left unacknowledged behind one peer's slow handler would stall every other peer.
std::string OpenStrand(const std::string& sender) { return "o" + sender; }
std::string HandleStrand(const std::string& sender) { return "h" + sender; }

}  // namespace

class Dispatch;

class Router::Impl : public std::enable_shared_from_this<Router::Impl> {
 public:
  Impl(RouterOptions options, overlay::EnvelopeOpener& opener, overlay::InnerSender& sender,
       AnsweredLog& answered, core::Clock& clock, Acknowledge acknowledge)
      : options_(options),
        opener_(opener),
        sender_(sender),
        answered_(answered),
        clock_(clock),
        acknowledge_(std::move(acknowledge)),
        executor_(options.workers),
        replies_(clock,
                 ExchangeOptions{
                     .value_ttl_ms = 0, .keep_after_delivery = false, .sweep_interval_ms = 0}) {}

  void SetHandler(v1::Inner::BodyCase body, Handler handler, Final final);
  void Start();
  StrandExecutor::Task Submit(v1::Envelope envelope, bool may_run_here);
  void Request(const std::string& peer, v1::Inner request, uint64_t deadline_ms,
               std::function<void(RequestOutcome)> done);
  void SendAll(std::map<std::string, v1::Inner> per_party, uint64_t deadline_ms,
               FanOutOptions options, std::function<void(FanOutResult)> done);
  void Sweep();
  void Stop();
  void BeginStop();
  RouterCounters Counters() const;

  // Used by Dispatch.
  bool stopping() const { return stopping_.load(); }
  void PostStep(std::shared_ptr<Dispatch> dispatch, uint64_t generation,
                internal::DispatchControl::Step step);
  void SendReply(const std::string& peer, const std::string& request_id, v1::Inner reply);

 private:
  void OpenEnvelope(v1::Envelope envelope);
  void OnOpened(const Bytes& message_id, const std::string& sender, overlay::OpenOutcome outcome);
  void DispatchMessage(overlay::InboxMessage message);
  void DispatchAlone(overlay::InboxMessage message, std::function<void()> place_record);
  // The task of DispatchAlone: the first step, with the record placed in its CallerScope unless
  // it was placed already (place_record empty).
  struct AloneDispatch {
    Impl* impl;
    overlay::InboxMessage message;
    std::function<void()> place_record;
    void operator()();
  };
  void RunStep(const std::shared_ptr<Dispatch>& dispatch, uint64_t generation,
               const internal::DispatchControl::Step& step);
  void RunFinal(const std::shared_ptr<Dispatch>& dispatch);
  // Ends the handler phase from outside (deadline sweep or Stop).
  void Interrupt(const std::shared_ptr<Dispatch>& dispatch, Phase end);
  void EndDispatch(const std::shared_ptr<Dispatch>& dispatch, Phase end,
                   std::optional<v1::ErrorReply> error);
  void CompleteInbox(uint64_t inbox_id) {
    if (inbox_id != 0) opener_.Complete(inbox_id);
  }
  void CancelActive();
  void ResolveRequest(const std::string& peer, const std::string& request_id,
                      WaitResult<v1::Inner> result,
                      const std::function<void(RequestOutcome)>& done);
  std::shared_ptr<const HandlerEntry> FindHandler(v1::Inner::BodyCase body) const;
  std::optional<std::string> RecentRequestPeer(const std::string& request_id,
                                               uint64_t now_ms) const;
  AtomicBodyCounters& BodyCounters(v1::Inner::BodyCase body) {
    return body_counters_[BodyTypeSlot(body)];
  }

  const RouterOptions options_;
  overlay::EnvelopeOpener& opener_;
  overlay::InnerSender& sender_;
  AnsweredLog& answered_;
  core::Clock& clock_;
  const Acknowledge acknowledge_;

  // Held shared by open callbacks while they acknowledge, exclusively by Stop() while it sets
  // stopping_: once Stop() returns, nothing is acknowledged any more.
  std::shared_mutex lifecycle_mu_;
  std::atomic<bool> stopping_{false};
  std::unique_ptr<PeriodicTimer> timer_;

  mutable std::mutex handlers_mu_;
  std::array<std::shared_ptr<const HandlerEntry>, kBodyTypeSlots> handlers_;

  mutable std::mutex active_mu_;
  std::unordered_map<uint64_t, std::shared_ptr<Dispatch>> active_;
  std::set<std::pair<std::string, std::string>> requests_in_progress_;  // (sender, request_id)
  uint64_t next_dispatch_id_ = 1;

  // Requests this node made that have ended, by request_id: their peer, and until when a message
  // carrying that request_id is known to be a late reply (answered_retention_ms).
  mutable std::mutex ended_requests_mu_;
  std::unordered_map<std::string, std::pair<std::string, uint64_t>> ended_requests_;

  // Counters.
  std::array<AtomicBodyCounters, kBodyTypeSlots> body_counters_;
  std::array<Counter, messages::kReceiveCodeCount> open_outcomes_{};
  Counter submitted_{0}, acknowledged_{0}, inbox_depth_{0}, inbox_depth_max_{0};
  Counter inbox_overflow_{0}, submitted_after_stop_{0};
  std::atomic<bool> overflow_warned_{false};
  // Opens whose outcome has not been handled yet (OnOpened not returned). A message alone is
  // handled early only when none is: an earlier message's dispatch, posted by its OnOpened, must
  // never find itself queued behind the next one's.
  std::atomic<uint64_t> outcomes_pending_{0};
  Counter repeats_in_progress_{0}, requests_unanswered_{0}, replies_sent_{0};
  Counter reply_send_failures_{0}, answered_log_errors_{0};
  Counter replies_matched_{0}, replies_wrong_sender_{0}, replies_unmatched_{0};
  Counter requests_sent_{0}, requests_replied_{0}, requests_error_replied_{0};
  Counter requests_timed_out_{0}, requests_send_failed_{0}, requests_cancelled_{0};

  // Destroyed first (declared last) after Stop(): it owns the threads that use everything above.
  StrandExecutor executor_;
  // Pending requests this node made, keyed by request_id, each waiting only for its peer.
  EventWaitExchange<v1::Inner> replies_;
};

// One message being handled: the router's side of HandlerContext and FinalContext.
class Dispatch final : public internal::DispatchControl,
                       public std::enable_shared_from_this<Dispatch> {
 public:
  Dispatch(std::weak_ptr<Router::Impl> impl, uint64_t id, overlay::InboxMessage message,
           std::shared_ptr<const HandlerEntry> entry, uint64_t deadline_ms, bool is_request)
      : impl_(std::move(impl)),
        id_(id),
        message_(std::move(message)),
        entry_(std::move(entry)),
        deadline_ms_(deadline_ms),
        is_request_(is_request) {}

  const overlay::InboxMessage& message() const override { return message_; }
  bool is_request() const override { return is_request_; }
  uint64_t deadline_ms() const override { return deadline_ms_; }
  CancellationToken cancellation() const override { return CancellationToken(cancelled_); }
  std::any& state() override { return state_; }
  absl::Status Reply(v1::Inner reply) override;
  absl::StatusOr<std::function<void(Step)>> BeginDeferral() override;
  void AttachDeferralCancel(std::function<void()> cancel) override;

  uint64_t id() const { return id_; }
  const HandlerEntry& entry() const { return *entry_; }
  void SetCancelled() { cancelled_->store(true, std::memory_order_release); }

  // Guarded by mu.
  std::mutex mu;
  Phase phase = Phase::kHandler;
  bool replied = false;
  bool in_step = false;           // a handler or continuation call is running
  bool deferred_in_step = false;  // that call reserved a deferral
  uint64_t generation = 0;        // counts deferrals; a continuation runs only for the latest
  std::function<void()> cancel_deferral;

 private:
  const std::weak_ptr<Router::Impl> impl_;
  const uint64_t id_;
  const overlay::InboxMessage message_;
  const std::shared_ptr<const HandlerEntry> entry_;
  const uint64_t deadline_ms_;
  const bool is_request_;
  const std::shared_ptr<std::atomic<bool>> cancelled_ = std::make_shared<std::atomic<bool>>(false);
  std::any state_;
};

absl::Status Dispatch::Reply(v1::Inner reply) {
  if (!is_request_) {
    return absl::FailedPreconditionError(
        "this message is not a request (no request_id, or a reply body): nothing to reply to");
  }
  {
    std::lock_guard lock(mu);
    if (phase != Phase::kHandler && phase != Phase::kFinal) {
      return absl::FailedPreconditionError(
          "the request already ended (timed out, failed or cancelled) and its requester got an "
          "ErrorReply");
    }
    if (replied) return absl::AlreadyExistsError("this request was already answered once");
    replied = true;
  }
  std::shared_ptr<Router::Impl> impl = impl_.lock();
  if (!impl) return absl::CancelledError("the router is gone");
  impl->SendReply(message_.sender, message_.inner.request_id(), std::move(reply));
  return absl::OkStatus();
}

absl::StatusOr<std::function<void(internal::DispatchControl::Step)>> Dispatch::BeginDeferral() {
  std::shared_ptr<Router::Impl> impl = impl_.lock();
  if (!impl || impl->stopping()) return absl::CancelledError("the router is stopping");
  uint64_t gen;
  {
    std::lock_guard lock(mu);
    if (!in_step || phase != Phase::kHandler) {
      return absl::FailedPreconditionError(
          "Defer works only inside a handler or continuation that is still running");
    }
    if (deferred_in_step) {
      return absl::FailedPreconditionError("a handler or continuation call may Defer only once");
    }
    deferred_in_step = true;
    gen = ++generation;
  }
  return [weak = impl_, self = shared_from_this(), gen](Step step) {
    if (std::shared_ptr<Router::Impl> router = weak.lock()) {
      router->PostStep(self, gen, std::move(step));
    }
  };
}

void Dispatch::AttachDeferralCancel(std::function<void()> cancel) {
  {
    std::lock_guard lock(mu);
    if (phase == Phase::kHandler) {
      cancel_deferral = std::move(cancel);
      return;
    }
  }
  cancel();  // the message ended while the wait was being registered
}

// ---------------------------------------------------------------------------------------------
// Inbox: Submit -> open on the sender's strand -> acknowledge -> dispatch on the same strand.

void Router::Impl::Start() {
  // Messages stored before a restart go first, each on its sender's strand (PROTOCOL.md section 6:
  // inbox rows are handled again after a crash).
  for (overlay::InboxMessage& message : opener_.PendingInbox()) {
    const std::string key = HandleStrand(message.sender);
    executor_.Post(key, [this, message = std::move(message)]() mutable {
      DispatchMessage(std::move(message));
    });
  }
  executor_.Start();
  if (options_.sweep_interval_ms > 0) {
    timer_ = std::make_unique<PeriodicTimer>(std::chrono::milliseconds(options_.sweep_interval_ms),
                                             [this] { Sweep(); });
  }
}

StrandExecutor::Task Router::Impl::Submit(v1::Envelope envelope, bool may_run_here) {
  if (stopping_.load()) {
    Inc(submitted_after_stop_);
    return nullptr;
  }
  Inc(submitted_);
  const uint64_t depth = inbox_depth_.fetch_add(1, std::memory_order_relaxed) + 1;
  uint64_t seen_max = inbox_depth_max_.load(std::memory_order_relaxed);
  while (depth > seen_max && !inbox_depth_max_.compare_exchange_weak(seen_max, depth)) {
  }
  if (depth > options_.inbox_capacity) {
    Inc(inbox_overflow_);
    if (!overflow_warned_.exchange(true)) {
      spdlog::warn(
          "router: {} envelopes unacknowledged, above the inbox capacity {}: the hub pushes beyond "
          "the credits announced (still accepted, counted as inbox_overflow)",
          depth, options_.inbox_capacity);
    }
  }
  const std::string key = OpenStrand(envelope.sender());
  StrandExecutor::Task open = [this, envelope = std::move(envelope)]() mutable {
    OpenEnvelope(std::move(envelope));
  };
  // Alone (the only envelope not acknowledged): the reader opens and dispatches it itself. Under
  // load the workers open envelopes side by side while the reader goes on reading.
  if (may_run_here && depth == 1) return executor_.ClaimIfIdle(key, std::move(open));
  executor_.Post(key, std::move(open));
  return nullptr;
}

void Router::Impl::OpenEnvelope(v1::Envelope envelope) {
  // Runs on the sender's strand: the next Open of this sender starts only after this one returned
  // (overlay/delivery.h), so a Sealed never overtakes the SetupReply ahead of it.
  Bytes message_id = ToBytes(envelope.message_id());
  std::string sender = envelope.sender();
  auto done = [weak = weak_from_this(), message_id = std::move(message_id),
               sender = std::move(sender)](overlay::OpenOutcome outcome) {
    if (std::shared_ptr<Impl> impl = weak.lock()) {
      impl->OnOpened(message_id, sender, std::move(outcome));
    }
  };
  // Alone: this is the only envelope not yet acknowledged, so nothing would batch with its commit.
  // Under load the commit thread's batches are cheaper (committing on the worker whenever that
  // thread was idle made 64 B one-way 17 % slower, bench/RESULTS.md, fourth session). A message
  // alone is also handled before its record commits, so that the record and what the handler
  // records meet in one transaction after the reply has left (overlay/delivery.h).
  const bool alone = inbox_depth_.load(std::memory_order_relaxed) <= 1;
  const bool nothing_pending = outcomes_pending_.fetch_add(1, std::memory_order_acq_rel) == 0;
  if (alone && nothing_pending) {
    opener_.OpenAndHandle(
        std::move(envelope),
        [this](overlay::InboxMessage message, std::function<void()> place_record) {
          DispatchAlone(std::move(message), std::move(place_record));
        },
        std::move(done));
  } else if (alone) {
    opener_.OpenAlone(std::move(envelope), std::move(done));
  } else {
    opener_.Open(std::move(envelope), std::move(done));
  }
}

void Router::Impl::OnOpened(const Bytes& message_id, const std::string& sender,
                            overlay::OpenOutcome outcome) {
  struct Handled {  // last, whatever the path: what this posted is queued by then
    std::atomic<uint64_t>& pending;
    ~Handled() { pending.fetch_sub(1, std::memory_order_release); }
  } handled{outcomes_pending_};
  std::shared_lock lifecycle(lifecycle_mu_);
  // After Stop(), not acknowledged: the hub pushes it again after a reconnect and the replay
  // window makes it a DUPLICATE, acknowledged then.
  if (stopping_.load()) return;
  const auto code_index = static_cast<size_t>(outcome.code);
  if (code_index < open_outcomes_.size()) Inc(open_outcomes_[code_index]);
  // PROTOCOL.md section 4: Delivered for every envelope once its outcome is durable, whatever it
  // is; a refused envelope never holds a credit.
  // Out of the inbox before the receipt leaves: the hub may push the next envelope as soon as
  // it reads the receipt, and that push must find the slot free (no spurious overflow).
  const uint64_t depth = inbox_depth_.fetch_sub(1, std::memory_order_relaxed) - 1;
  acknowledge_(message_id);
  Inc(acknowledged_);
  if (depth <= options_.inbox_capacity && overflow_warned_.load(std::memory_order_relaxed)) {
    overflow_warned_.store(false);
  }
  if (outcome.code == messages::ReceiveCode::kOk && outcome.message.has_value()) {
    // Outcomes of one sender complete in open order, so dispatches queue in arrival order. When
    // the open committed on this worker (overlay/commit_queue.h), it goes on to the dispatch.
    // A message that came alone has what its dispatch records (the answered reply, the reply's
    // sent copy, the inbox removal) committed together on this worker once the dispatch returns,
    // the reply already sent, rather than by the commit thread woken for each (CallerScope).
    const bool alone = depth == 0;
    executor_.PostNext(HandleStrand(sender),
                       [this, alone, message = std::move(*outcome.message)]() mutable {
                         std::optional<overlay::CommitQueue::CallerScope> commit_after;
                         if (alone) commit_after.emplace();
                         DispatchMessage(std::move(message));
                       });
  } else if (outcome.message.has_value()) {
    CompleteInbox(outcome.message->inbox_id);  // refused: nothing to handle
  }
}

// From OpenAndHandle, on the sender's open strand. The dispatch runs next on this worker, once the
// open strand is free for the sender's next envelope, and its record commits in one transaction
// with what the handler's first step records, at the end of the step. When the sender's handle
// strand is busy (a handler still running), the record commits now, so that its receipt does not
// wait for that handler, and the dispatch takes its turn.
void Router::Impl::DispatchAlone(overlay::InboxMessage message,
                                 std::function<void()> place_record) {
  const std::string key = HandleStrand(message.sender);
  StrandExecutor::Task task = AloneDispatch{this, std::move(message), std::move(place_record)};
  if (executor_.PostNextIfIdle(key, task)) return;
  std::exchange(task.target<AloneDispatch>()->place_record, nullptr)();
  executor_.PostNext(key, std::move(task));
}

void Router::Impl::AloneDispatch::operator()() {
  overlay::CommitQueue::CallerScope commit_after;
  if (place_record) place_record();
  impl->DispatchMessage(std::move(message));
}

// ---------------------------------------------------------------------------------------------
// Dispatch: reply matching, answered log, deadline, handler.

void Router::Impl::DispatchMessage(overlay::InboxMessage message) {
  if (stopping_.load()) return;  // its inbox row stays for PendingInbox() after a restart
  const v1::Inner& inner = message.inner;
  const v1::Inner::BodyCase body = inner.body_case();
  const std::string& request_id = inner.request_id();
  const uint64_t now = clock_.NowMs();
  AtomicBodyCounters& counters = BodyCounters(body);

  // 1. Replies (PROTOCOL.md section 8): matched on (sender, request_id), from the very peer the
  //    request went to. An AppMessage with a request_id is a reply only if it matches.
  if (!request_id.empty() && (IsReplyOnlyBody(body) || body == v1::Inner::kApp)) {
    const PostResult posted = replies_.Post(
        request_id, inner, PostOptions{.source = message.sender, .only_if_awaited = true});
    if (posted == PostResult::kTaken) {
      CompleteInbox(message.inbox_id);
      Inc(replies_matched_);
      return;
    }
    if (posted == PostResult::kWrongSource) {
      spdlog::warn("router: ignored a {} from {} for a request sent to another peer",
                   BodyTypeName(body), message.sender);
      CompleteInbox(message.inbox_id);
      Inc(replies_wrong_sender_);
      return;
    }
    // A request this node made that already ended: the message is a late or repeated reply,
    // never a request, even as an AppMessage (answering it would start a reply loop between two
    // answered logs).
    const std::optional<std::string> asked = RecentRequestPeer(request_id, now);
    if (asked.has_value() && *asked != message.sender) {
      CompleteInbox(message.inbox_id);
      Inc(replies_wrong_sender_);
      return;
    }
    if (asked.has_value() || (IsReplyOnlyBody(body) && !FindHandler(body))) {
      spdlog::debug("router: {} from {} matches no pending request (late or repeated)",
                    BodyTypeName(body), message.sender);
      CompleteInbox(message.inbox_id);
      Inc(replies_unmatched_);
      return;
    }
  }

  const bool is_request = !request_id.empty() && !IsReplyOnlyBody(body);

  // 2. A repeated request is answered from the record (PROTOCOL.md section 6, last paragraph).
  if (is_request) {
    absl::StatusOr<std::optional<v1::Inner>> found =
        answered_.Find(message.sender, request_id, now);
    if (!found.ok()) {
      Inc(answered_log_errors_);
      spdlog::warn("router: answered log lookup failed ({}); handling the request again",
                   std::string(found.status().message()));
    } else if (found->has_value()) {
      Inc(replies_sent_);
      sender_.Send(message.sender, std::move(**found),
                   [weak = weak_from_this()](absl::Status status) {
                     if (status.ok()) return;
                     if (auto impl = weak.lock()) Inc(impl->reply_send_failures_);
                   });
      CompleteInbox(message.inbox_id);
      Inc(counters.answered_from_log);
      return;
    }
  }

  // 3. Past its deadline on arrival: refused without running the handler (section 8).
  if (inner.deadline_ms() != 0 && inner.deadline_ms() <= now) {
    if (is_request) {
      SendReply(message.sender, request_id,
                MakeErrorReply(error_code::kExpired, "the request arrived after its deadline"));
    }
    CompleteInbox(message.inbox_id);
    Inc(counters.expired);
    return;
  }

  // 4. The handler for the body type.
  std::shared_ptr<const HandlerEntry> entry = FindHandler(body);
  if (!entry) {
    if (is_request) {
      SendReply(message.sender, request_id,
                MakeErrorReply(error_code::kUnknownType,
                               "this participant has no handler for that body type"));
    }
    CompleteInbox(message.inbox_id);
    Inc(counters.no_handler);
    return;
  }

  uint64_t deadline = now + options_.handler_deadline_ms;
  if (inner.deadline_ms() != 0) deadline = std::min(deadline, inner.deadline_ms());
  std::shared_ptr<Dispatch> dispatch;
  {
    std::lock_guard lock(active_mu_);
    if (is_request && !requests_in_progress_.emplace(message.sender, request_id).second) {
      // Same (sender, request_id) still being handled: its reply will answer both copies.
      Inc(repeats_in_progress_);
      CompleteInbox(message.inbox_id);
      return;
    }
    const uint64_t id = next_dispatch_id_++;
    dispatch = std::make_shared<Dispatch>(weak_from_this(), id, std::move(message),
                                          std::move(entry), deadline, is_request);
    active_.emplace(id, dispatch);
  }
  RunStep(dispatch, 0, dispatch->entry().handler);
}

void Router::Impl::PostStep(std::shared_ptr<Dispatch> dispatch, uint64_t generation,
                            internal::DispatchControl::Step step) {
  const std::string key = HandleStrand(dispatch->message().sender);
  // Dropped if stopping: Stop() cancels the dispatch itself.
  executor_.Post(key, [this, dispatch = std::move(dispatch), generation, step = std::move(step)] {
    RunStep(dispatch, generation, step);
  });
}

void Router::Impl::RunStep(const std::shared_ptr<Dispatch>& dispatch, uint64_t generation,
                           const internal::DispatchControl::Step& step) {
  {
    std::lock_guard lock(dispatch->mu);
    // Ended meanwhile (deadline, Stop), or a continuation of a wait that is no longer current.
    if (dispatch->phase != Phase::kHandler || dispatch->generation != generation) return;
    dispatch->in_step = true;
    dispatch->deferred_in_step = false;
    dispatch->cancel_deferral = nullptr;  // the wait that resumed us has ended
  }
  const v1::Inner::BodyCase body = dispatch->message().inner.body_case();
  absl::Status status;
  try {
    HandlerContext ctx(*dispatch);
    status = step(ctx);
  } catch (const std::exception& e) {
    spdlog::error("router: handler for {} from {} threw: {}", BodyTypeName(body),
                  dispatch->message().sender, e.what());
    status = absl::InternalError("the handler threw an exception");
  } catch (...) {
    spdlog::error("router: handler for {} from {} threw a non-standard exception",
                  BodyTypeName(body), dispatch->message().sender);
    status = absl::InternalError("the handler threw an exception");
  }

  enum class Next { kNothing, kFail, kFinal } next = Next::kNothing;
  std::function<void()> cancel;
  bool send_error = false;
  {
    std::lock_guard lock(dispatch->mu);
    dispatch->in_step = false;
    if (dispatch->phase != Phase::kHandler) {
      // Timed out or cancelled while it ran: its result is ignored, its wait (if any) dropped.
      cancel = std::move(dispatch->cancel_deferral);
    } else if (!status.ok()) {
      dispatch->phase = Phase::kFailed;
      cancel = std::move(dispatch->cancel_deferral);
      send_error = dispatch->is_request() && !dispatch->replied;
      dispatch->replied = true;
      next = Next::kFail;
    } else if (!dispatch->deferred_in_step) {
      dispatch->phase = Phase::kFinal;
      next = Next::kFinal;
    }
    // else: deferred; the continuation (or the sweep) takes it from here.
  }
  if (cancel) cancel();
  if (next == Next::kFail) {
    if (status.code() != absl::StatusCode::kInternal || status.message().empty()) {
      spdlog::info("router: handler for {} from {} failed: {}", BodyTypeName(body),
                   dispatch->message().sender, std::string(status.message()));
    }
    std::optional<v1::ErrorReply> error;
    if (send_error) error = ErrorReplyFor(status);
    EndDispatch(dispatch, Phase::kFailed, std::move(error));
  } else if (next == Next::kFinal) {
    RunFinal(dispatch);
  }
}

void Router::Impl::RunFinal(const std::shared_ptr<Dispatch>& dispatch) {
  // Never cancelled or timed out once started: the sweep and Stop() skip Phase::kFinal.
  absl::Status status;
  if (dispatch->entry().final) {
    try {
      FinalContext ctx(*dispatch);
      status = dispatch->entry().final(ctx);
    } catch (const std::exception& e) {
      spdlog::error("router: final step for {} from {} threw: {}",
                    BodyTypeName(dispatch->message().inner.body_case()), dispatch->message().sender,
                    e.what());
      status = absl::InternalError("the final step threw an exception");
    } catch (...) {
      status = absl::InternalError("the final step threw an exception");
    }
  }
  bool send_error = false;
  bool unanswered = false;
  {
    std::lock_guard lock(dispatch->mu);
    dispatch->phase = status.ok() ? Phase::kDone : Phase::kFailed;
    if (dispatch->is_request() && !dispatch->replied) {
      if (status.ok()) {
        unanswered = true;
      } else {
        send_error = true;
        dispatch->replied = true;
      }
    }
  }
  if (unanswered) {
    Inc(requests_unanswered_);
    spdlog::warn("router: handler for {} from {} succeeded without replying to the request",
                 BodyTypeName(dispatch->message().inner.body_case()), dispatch->message().sender);
  }
  std::optional<v1::ErrorReply> error;
  if (send_error) error = ErrorReplyFor(status);
  EndDispatch(dispatch, status.ok() ? Phase::kDone : Phase::kFailed, std::move(error));
}

void Router::Impl::Interrupt(const std::shared_ptr<Dispatch>& dispatch, Phase end) {
  std::function<void()> cancel;
  bool send_error = false;
  {
    std::lock_guard lock(dispatch->mu);
    if (dispatch->phase != Phase::kHandler) return;  // finished, failed, or in its final step
    dispatch->phase = end;
    dispatch->SetCancelled();
    cancel = std::move(dispatch->cancel_deferral);
    send_error = dispatch->is_request() && !dispatch->replied;
    dispatch->replied = true;
  }
  if (cancel) cancel();
  const char* why = end == Phase::kTimedOut ? "passed its deadline" : "was cancelled (stopping)";
  spdlog::info("router: handler for {} from {} {}",
               BodyTypeName(dispatch->message().inner.body_case()), dispatch->message().sender,
               why);
  std::optional<v1::ErrorReply> error;
  if (send_error) {
    v1::ErrorReply reply;
    if (end == Phase::kTimedOut) {
      reply.set_code(std::string(error_code::kTimeout));
      reply.set_detail("the responder's handler did not finish before its deadline");
    } else {
      reply.set_code(std::string(error_code::kHandlerFailed));
      reply.set_detail("cancelled: the responder is stopping");
    }
    error = std::move(reply);
  }
  EndDispatch(dispatch, end, std::move(error));
}

void Router::Impl::EndDispatch(const std::shared_ptr<Dispatch>& dispatch, Phase end,
                               std::optional<v1::ErrorReply> error) {
  const overlay::InboxMessage& message = dispatch->message();
  if (error.has_value()) {
    v1::Inner reply;
    *reply.mutable_error_reply() = std::move(*error);
    SendReply(message.sender, message.inner.request_id(), std::move(reply));
  }
  // Cancelled by Stop(): the inbox row stays, so the message is handled again after a restart (a
  // request already answered is then answered from the answered log).
  if (end != Phase::kCancelled) CompleteInbox(message.inbox_id);
  // Counted last, and with the dispatch's leaving the active set under one lock: a reader who
  // sees the count also sees the reply sent and the inbox completed, and a Counters() snapshot
  // never shows a dispatch gone but not yet counted, nor counted but still in progress.
  AtomicBodyCounters& counters = BodyCounters(message.inner.body_case());
  std::lock_guard lock(active_mu_);
  active_.erase(dispatch->id());
  if (dispatch->is_request()) {
    requests_in_progress_.erase({message.sender, message.inner.request_id()});
  }
  switch (end) {
    case Phase::kDone:
      Inc(counters.handled);
      break;
    case Phase::kFailed:
      Inc(counters.failed);
      break;
    case Phase::kTimedOut:
      Inc(counters.timed_out);
      break;
    case Phase::kCancelled:
      Inc(counters.cancelled);
      break;
    case Phase::kHandler:
    case Phase::kFinal:
      core::Die("router: EndDispatch with an unfinished phase");
  }
}

void Router::Impl::SendReply(const std::string& peer, const std::string& request_id,
                             v1::Inner reply) {
  reply.set_request_id(request_id);
  reply.set_deadline_ms(0);
  absl::Status recorded =
      answered_.Record(peer, request_id, reply, clock_.NowMs() + options_.answered_retention_ms);
  if (!recorded.ok()) {
    Inc(answered_log_errors_);
    spdlog::warn("router: could not record the reply to {} in the answered log: {}", peer,
                 std::string(recorded.message()));
  }
  Inc(replies_sent_);
  sender_.Send(peer, std::move(reply), [weak = weak_from_this(), peer](absl::Status status) {
    if (status.ok()) return;
    spdlog::warn("router: reply to {} not sent: {}", peer, std::string(status.message()));
    if (auto impl = weak.lock()) Inc(impl->reply_send_failures_);
  });
}

std::shared_ptr<const HandlerEntry> Router::Impl::FindHandler(v1::Inner::BodyCase body) const {
  if (body == v1::Inner::BODY_NOT_SET) return nullptr;
  std::lock_guard lock(handlers_mu_);
  return handlers_[BodyTypeSlot(body)];
}

void Router::Impl::SetHandler(v1::Inner::BodyCase body, Handler handler, Final final) {
  if (body == v1::Inner::BODY_NOT_SET || !handler) {
    core::Die("Router::SetHandler needs a body type and a handler");
  }
  auto entry =
      std::make_shared<const HandlerEntry>(HandlerEntry{std::move(handler), std::move(final)});
  std::lock_guard lock(handlers_mu_);
  handlers_[BodyTypeSlot(body)] = std::move(entry);
}

// ---------------------------------------------------------------------------------------------
// Requests and fan-out.

void Router::Impl::Request(const std::string& peer, v1::Inner request, uint64_t deadline_ms,
                           std::function<void(RequestOutcome)> done) {
  std::string request_id = core::ToHex(core::RandomBytes(kRequestIdBytes));
  Inc(requests_sent_);
  if (deadline_ms <= clock_.NowMs()) {
    Inc(requests_timed_out_);
    done(RequestOutcome{RequestOutcome::Kind::kTimeout,
                        peer,
                        request_id,
                        {},
                        absl::DeadlineExceededError("the request's deadline has already passed")});
    return;
  }
  request.set_request_id(request_id);
  request.set_deadline_ms(deadline_ms);
  auto shared_done = std::make_shared<std::function<void(RequestOutcome)>>(std::move(done));
  // Registered before sending, so no reply can arrive unmatched. Only `peer` may answer.
  const auto handle = replies_.WaitAsync(
      {request_id}, deadline_ms,
      [this, peer, request_id, shared_done](WaitResult<v1::Inner> result) {
        ResolveRequest(peer, request_id, std::move(result), *shared_done);
      },
      WaitOptions{.from = peer});
  if (stopping_.load()) {
    // Stop() may have cancelled every wait before ours was registered.
    if (replies_.Cancel(handle)) {
      Inc(requests_cancelled_);
      (*shared_done)(RequestOutcome{RequestOutcome::Kind::kCancelled,
                                    peer,
                                    request_id,
                                    {},
                                    absl::CancelledError("the router is stopping")});
    }
    return;
  }
  sender_.Send(
      peer, std::move(request),
      [weak = weak_from_this(), handle, peer, request_id, shared_done](absl::Status s) {
        if (s.ok()) return;
        std::shared_ptr<Impl> impl = weak.lock();
        // Cancel fails if the request already resolved (a reply, a timeout, Stop()).
        if (!impl || !impl->replies_.Cancel(handle)) return;
        Inc(impl->requests_send_failed_);
        (*shared_done)(RequestOutcome{RequestOutcome::Kind::kSendFailed, peer, request_id, {}, s});
      });
}

std::optional<std::string> Router::Impl::RecentRequestPeer(const std::string& request_id,
                                                           uint64_t now_ms) const {
  std::lock_guard lock(ended_requests_mu_);
  auto it = ended_requests_.find(request_id);
  if (it == ended_requests_.end() || it->second.second <= now_ms) return std::nullopt;
  return it->second.first;
}

void Router::Impl::ResolveRequest(const std::string& peer, const std::string& request_id,
                                  WaitResult<v1::Inner> result,
                                  const std::function<void(RequestOutcome)>& done) {
  {
    std::lock_guard lock(ended_requests_mu_);
    ended_requests_.insert_or_assign(
        request_id, std::make_pair(peer, clock_.NowMs() + options_.answered_retention_ms));
  }
  RequestOutcome outcome;
  outcome.peer = peer;
  outcome.request_id = request_id;
  switch (result.end) {
    case WaitEnd::kAllArrived:
      outcome.reply = std::move(result.values.begin()->second);
      if (outcome.reply.has_error_reply()) {
        Inc(requests_error_replied_);
        outcome.kind = RequestOutcome::Kind::kErrorReply;
        outcome.status =
            absl::FailedPreconditionError(peer + " answered " + outcome.reply.error_reply().code() +
                                          ": " + outcome.reply.error_reply().detail());
      } else {
        Inc(requests_replied_);
        outcome.kind = RequestOutcome::Kind::kReply;
      }
      break;
    case WaitEnd::kExpired:
      Inc(requests_timed_out_);
      outcome.kind = RequestOutcome::Kind::kTimeout;
      outcome.status =
          absl::DeadlineExceededError("no reply from " + peer + " before the deadline");
      break;
    case WaitEnd::kCancelled:
      Inc(requests_cancelled_);
      outcome.kind = RequestOutcome::Kind::kCancelled;
      outcome.status = absl::CancelledError("the router stopped before " + peer + " answered");
      break;
  }
  done(std::move(outcome));
}

void Router::Impl::SendAll(std::map<std::string, v1::Inner> per_party, uint64_t deadline_ms,
                           FanOutOptions options, std::function<void(FanOutResult)> done) {
  struct FanOut {
    std::mutex mu;
    FanOutResult result;
    size_t remaining;
    FanOutOptions options;
    std::function<void(FanOutResult)> done;
  };
  if (per_party.empty()) {
    done(FanOutResult{});
    return;
  }
  auto state = std::make_shared<FanOut>();
  state->remaining = per_party.size();
  state->options = options;
  state->done = std::move(done);
  // Every request is issued before any is waited for: Request never blocks, and the overlay runs
  // the channel setups of new peers in parallel.
  for (auto& entry : per_party) {
    const std::string& party = entry.first;  // clang 14 cannot capture a structured binding
    Request(party, std::move(entry.second), deadline_ms, [state, party](RequestOutcome outcome) {
      {
        std::lock_guard lock(state->mu);
        state->result.outcomes.insert_or_assign(party, std::move(outcome));
        if (--state->remaining != 0) return;
      }
      FanOutResult& result = state->result;
      std::string names;
      for (const auto& [name, o] : result.outcomes) {
        if (o.answered()) continue;
        result.missing.push_back(name);
        names += (names.empty() ? "" : ", ") + name;
      }
      if (state->options.fail_if_any_missing && !result.missing.empty()) {
        result.status = absl::DeadlineExceededError("no answer from " + names);
      }
      std::function<void(FanOutResult)> finish = std::move(state->done);
      finish(std::move(state->result));
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Time and shutdown.

void Router::Impl::Sweep() {
  const uint64_t now = clock_.NowMs();
  std::vector<std::shared_ptr<Dispatch>> due;
  {
    std::lock_guard lock(active_mu_);
    for (const auto& [id, dispatch] : active_) {
      if (dispatch->deadline_ms() <= now) due.push_back(dispatch);
    }
  }
  for (const std::shared_ptr<Dispatch>& dispatch : due) Interrupt(dispatch, Phase::kTimedOut);
  replies_.Sweep();
  answered_.Expire(now);
  {
    std::lock_guard lock(ended_requests_mu_);
    for (auto it = ended_requests_.begin(); it != ended_requests_.end();) {
      it = it->second.second <= now ? ended_requests_.erase(it) : std::next(it);
    }
  }
  executor_.DropIdleStrands();
}

void Router::Impl::CancelActive() {
  std::vector<std::shared_ptr<Dispatch>> all;
  {
    std::lock_guard lock(active_mu_);
    for (const auto& [id, dispatch] : active_) all.push_back(dispatch);
  }
  for (const std::shared_ptr<Dispatch>& dispatch : all) Interrupt(dispatch, Phase::kCancelled);
}

void Router::Impl::BeginStop() {
  {
    std::unique_lock lifecycle(lifecycle_mu_);
    if (stopping_.exchange(true)) return;
  }
  if (timer_) timer_->Stop();
  CancelActive();
  replies_.CancelAll();
}

void Router::Impl::Stop() {
  BeginStop();
  executor_.Stop();  // waits for running handlers and finals (idempotent)
  // Whatever started while the first pass ran.
  CancelActive();
  replies_.CancelAll();
}

RouterCounters Router::Impl::Counters() const {
  RouterCounters c;
  {
    std::lock_guard lock(active_mu_);  // a dispatch's end count and its leaving, seen together
    c.dispatches_in_progress = active_.size();
    for (size_t i = 0; i < kBodyTypeSlots; ++i) {
      const AtomicBodyCounters& a = body_counters_[i];
      c.by_body_type[i] = BodyTypeCounters{
          Get(a.handled),    Get(a.failed),  Get(a.timed_out),        Get(a.cancelled),
          Get(a.no_handler), Get(a.expired), Get(a.answered_from_log)};
    }
  }
  c.submitted = Get(submitted_);
  c.acknowledged = Get(acknowledged_);
  c.inbox_depth = Get(inbox_depth_);
  c.inbox_depth_max = Get(inbox_depth_max_);
  c.inbox_capacity = options_.inbox_capacity;
  c.inbox_overflow = Get(inbox_overflow_);
  c.submitted_after_stop = Get(submitted_after_stop_);
  for (size_t i = 0; i < open_outcomes_.size(); ++i) c.open_outcomes[i] = Get(open_outcomes_[i]);
  c.queued_work = executor_.QueuedTasks();
  c.repeats_in_progress = Get(repeats_in_progress_);
  c.requests_unanswered = Get(requests_unanswered_);
  c.replies_sent = Get(replies_sent_);
  c.reply_send_failures = Get(reply_send_failures_);
  c.answered_log_errors = Get(answered_log_errors_);
  c.replies_matched = Get(replies_matched_);
  c.replies_wrong_sender = Get(replies_wrong_sender_);
  c.replies_unmatched = Get(replies_unmatched_);
  c.requests_sent = Get(requests_sent_);
  c.requests_replied = Get(requests_replied_);
  c.requests_error_replied = Get(requests_error_replied_);
  c.requests_timed_out = Get(requests_timed_out_);
  c.requests_send_failed = Get(requests_send_failed_);
  c.requests_cancelled = Get(requests_cancelled_);
  return c;
}

// ---------------------------------------------------------------------------------------------
// Router: the public face.

absl::StatusOr<std::unique_ptr<Router>> Router::Create(RouterOptions options,
                                                       overlay::EnvelopeOpener& opener,
                                                       overlay::InnerSender& sender,
                                                       AnsweredLog& answered, core::Clock& clock,
                                                       Acknowledge acknowledge) {
  if (options.workers == 0) {
    return absl::InvalidArgumentError("router: workers must be at least 1");
  }
  if (options.inbox_capacity == 0) {
    return absl::InvalidArgumentError(
        "router: inbox_capacity must be at least the max_in_flight announced to the hub");
  }
  if (!acknowledge) return absl::InvalidArgumentError("router: an acknowledge callback is needed");
  auto impl =
      std::make_shared<Impl>(options, opener, sender, answered, clock, std::move(acknowledge));
  return std::unique_ptr<Router>(new Router(std::move(impl)));
}

Router::Router(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Router::~Router() { impl_->Stop(); }

void Router::SetHandler(v1::Inner::BodyCase body, Handler handler, Final final) {
  impl_->SetHandler(body, std::move(handler), std::move(final));
}
void Router::Start() { impl_->Start(); }
void Router::Submit(v1::Envelope envelope) { impl_->Submit(std::move(envelope), false); }
std::function<void()> Router::SubmitFromReader(v1::Envelope envelope, bool may_run_here) {
  return impl_->Submit(std::move(envelope), may_run_here);
}
void Router::Sweep() { impl_->Sweep(); }
void Router::Stop() { impl_->Stop(); }
void Router::BeginStop() { impl_->BeginStop(); }
RouterCounters Router::Counters() const { return impl_->Counters(); }

void Router::Request(const std::string& peer, v1::Inner request, uint64_t deadline_ms,
                     std::function<void(RequestOutcome)> done) {
  impl_->Request(peer, std::move(request), deadline_ms, std::move(done));
}

std::future<RequestOutcome> Router::Request(const std::string& peer, v1::Inner request,
                                            uint64_t deadline_ms) {
  auto promise = std::make_shared<std::promise<RequestOutcome>>();
  std::future<RequestOutcome> future = promise->get_future();
  impl_->Request(peer, std::move(request), deadline_ms,
                 [promise](RequestOutcome outcome) { promise->set_value(std::move(outcome)); });
  return future;
}

void Router::SendAll(std::map<std::string, v1::Inner> per_party, uint64_t deadline_ms,
                     FanOutOptions options, std::function<void(FanOutResult)> done) {
  impl_->SendAll(std::move(per_party), deadline_ms, options, std::move(done));
}

std::future<FanOutResult> Router::SendAll(std::map<std::string, v1::Inner> per_party,
                                          uint64_t deadline_ms, FanOutOptions options) {
  auto promise = std::make_shared<std::promise<FanOutResult>>();
  std::future<FanOutResult> future = promise->get_future();
  impl_->SendAll(std::move(per_party), deadline_ms, options,
                 [promise](FanOutResult result) { promise->set_value(std::move(result)); });
  return future;
}

void Router::SendAll(const std::vector<std::string>& parties, const v1::Inner& request,
                     uint64_t deadline_ms, FanOutOptions options,
                     std::function<void(FanOutResult)> done) {
  std::map<std::string, v1::Inner> per_party;
  for (const std::string& party : parties) per_party.emplace(party, request);
  impl_->SendAll(std::move(per_party), deadline_ms, options, std::move(done));
}

std::future<FanOutResult> Router::SendAll(const std::vector<std::string>& parties,
                                          const v1::Inner& request, uint64_t deadline_ms,
                                          FanOutOptions options) {
  std::map<std::string, v1::Inner> per_party;
  for (const std::string& party : parties) per_party.emplace(party, request);
  return SendAll(std::move(per_party), deadline_ms, options);
}

// ---------------------------------------------------------------------------------------------

std::string_view RequestOutcomeKindName(RequestOutcome::Kind kind) {
  switch (kind) {
    case RequestOutcome::Kind::kReply:
      return "REPLY";
    case RequestOutcome::Kind::kErrorReply:
      return "ERROR_REPLY";
    case RequestOutcome::Kind::kTimeout:
      return "TIMEOUT";
    case RequestOutcome::Kind::kSendFailed:
      return "SEND_FAILED";
    case RequestOutcome::Kind::kCancelled:
      return "CANCELLED";
  }
  return "?";
}

std::string_view WaitEndName(WaitEnd end) {
  switch (end) {
    case WaitEnd::kAllArrived:
      return "ALL_ARRIVED";
    case WaitEnd::kExpired:
      return "EXPIRED";
    case WaitEnd::kCancelled:
      return "CANCELLED";
  }
  return "?";
}

std::string_view PostResultName(PostResult result) {
  switch (result) {
    case PostResult::kStored:
      return "STORED";
    case PostResult::kTaken:
      return "TAKEN";
    case PostResult::kWrongSource:
      return "WRONG_SOURCE";
    case PostResult::kNotAwaited:
      return "NOT_AWAITED";
  }
  return "?";
}

}  // namespace nodelink::router

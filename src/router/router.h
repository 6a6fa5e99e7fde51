// The node's dispatch layer (DESIGN.md, "The life of a message", steps 4-6): envelopes from the
// transport are opened on a strand per sender, acknowledged once their outcome is durable, and
// every opened inner message goes to reply matching, or to the handler for its body type under a
// deadline, then to that handler's final step. Requests and fan-out to peers go through here too,
// so that replies find their requester.
//
// Inbox bound (DESIGN.md step 4, IMPLEMENTATION-NOTES 7.11). The hub pushes at most
// max_in_flight envelopes before their Delivered, so `inbox_capacity` (>= the max_in_flight the
// node announces in Hello) is never exceeded by an honest hub, and credits are the only
// backpressure. Submit() never blocks and never drops: past the capacity it keeps accepting,
// counts `inbox_overflow` and logs a warning once per episode. Pausing the transport instead would
// stop it reading Accepted/Rejected/Welcome too; dropping would either lose the message (if
// acknowledged) or hold a credit until the next reconnect (if not). The memory above the bound is
// what a misbehaving hub pushed; the node may react to the counter by closing the stream.
//
// Threads: a StrandExecutor of `workers` threads. Each sender has an open strand (its Open calls,
// one at a time, in arrival order) and a handle strand (its dispatches, handlers, finals and
// continuations, one at a time, in arrival order); different senders run in parallel. Because
// acknowledging depends only on the open outcome, a slow handler never holds the hub's credits,
// which all senders share; opened messages then wait in memory (counter `queued_work`), durable
// in the store's inbox. A timer thread calls Sweep() every `sweep_interval_ms` (0: none, the owner
// calls Sweep(), as tests do with a ManualClock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "overlay/delivery.h"
#include "router/answered_log.h"
#include "router/counters.h"
#include "router/handler.h"
#include "router/request.h"

namespace nodelink::router {

struct RouterOptions {
  size_t workers = 4;
  // At least the max_in_flight the node announces in Hello (see the inbox bound above).
  size_t inbox_capacity = 256;
  // A handler's deadline from its message's arrival (a request's own deadline_ms may be sooner).
  uint64_t handler_deadline_ms = 30'000;
  // How long replies are kept in the answered log: queue time to live + 2 x max skew
  // (PROTOCOL.md sections 6 and 9: 1 h + 2 x 10 min by default).
  uint64_t answered_retention_ms = 80 * 60 * 1000;
  // Period of the background Sweep(); 0 disables the timer thread (tests sweep by hand).
  uint64_t sweep_interval_ms = 100;
};

// Sends Delivered for one envelope (the node wires it to the transport). Called exactly once per
// opened envelope, whatever its outcome, from a worker or the overlay's commit thread. Must be
// thread-safe and must not block.
using Acknowledge = std::function<void(ByteView message_id)>;

class Router {
 public:
  // Errors: InvalidArgument for options out of range (workers or inbox_capacity 0). The opener,
  // sender, answered log and clock must outlive the router.
  static absl::StatusOr<std::unique_ptr<Router>> Create(RouterOptions options,
                                                        overlay::EnvelopeOpener& opener,
                                                        overlay::InnerSender& sender,
                                                        AnsweredLog& answered, core::Clock& clock,
                                                        Acknowledge acknowledge);
  // Stop()s.
  ~Router();
  Router(const Router&) = delete;
  Router& operator=(const Router&) = delete;

  // Registers the handler (and optional final) for one body type, replacing an earlier one.
  // Thread-safe; messages already dispatched keep the handler they started with.
  void SetHandler(v1::Inner::BodyCase body, Handler handler, Final final = nullptr);

  // Starts the workers and the sweep timer, and queues the opener's PendingInbox() (messages
  // stored before a restart) for dispatch, each on its sender's strand ahead of anything
  // submitted later. Call once, before the transport starts submitting.
  void Start();

  // Takes one envelope pushed by the hub. Called by the transport, in hub order, on its thread.
  // Never blocks on handlers, never drops (see the inbox bound above). Ignored after Stop() (not
  // acknowledged: the hub pushes it again after a reconnect). Thread-safe.
  void Submit(v1::Envelope envelope);
  // Submit, for the transport's reading thread when it can be lent (may_run_here, see
  // transport::HubClient): an envelope alone (the only one not acknowledged) whose sender has
  // nothing queued or running is not queued; the returned work opens and dispatches it (handler
  // included) on the caller's thread, which is to run it once (dropped unrun, it goes to a
  // worker). Otherwise as Submit, and returns null.
  std::function<void()> SubmitFromReader(v1::Envelope envelope, bool may_run_here);

  // Sends `request` to `peer` as a request: sets a fresh random request_id and deadline_ms, and
  // resolves once with the peer's reply, its ErrorReply, a send failure, a timeout (at the first
  // Sweep at or after `deadline_ms`, Unix ms on the router's clock) or a cancellation by Stop().
  // Only a reply from `peer` counts (PROTOCOL.md section 8). `done` runs on a router worker, the
  // sweep thread, the overlay's thread, or before Request returns: keep it short. Thread-safe.
  void Request(const std::string& peer, v1::Inner request, uint64_t deadline_ms,
               std::function<void(RequestOutcome)> done);
  std::future<RequestOutcome> Request(const std::string& peer, v1::Inner request,
                                      uint64_t deadline_ms);

  // Fan-out: sends each party its request, all at once (no send waits for another; channel setups
  // run in parallel inside the overlay), and resolves once every party has an outcome.
  void SendAll(std::map<std::string, v1::Inner> per_party, uint64_t deadline_ms,
               FanOutOptions options, std::function<void(FanOutResult)> done);
  std::future<FanOutResult> SendAll(std::map<std::string, v1::Inner> per_party,
                                    uint64_t deadline_ms, FanOutOptions options = {});
  // The same request for every party (duplicates in `parties` count once).
  void SendAll(const std::vector<std::string>& parties, const v1::Inner& request,
               uint64_t deadline_ms, FanOutOptions options, std::function<void(FanOutResult)> done);
  std::future<FanOutResult> SendAll(const std::vector<std::string>& parties,
                                    const v1::Inner& request, uint64_t deadline_ms,
                                    FanOutOptions options = {});

  // Enforces time: ends handlers past their deadline (TIMEOUT; finals are never touched), times
  // out requests, expires the answered log, forgets idle strands. Thread-safe.
  void Sweep();

  // Stops taking work: handlers running or waiting are cancelled (their token is set; a request
  // gets ErrorReply HANDLER_FAILED; their inbox rows stay for PendingInbox after a restart),
  // pending requests resolve kCancelled, queued work is dropped, running handlers and finals are
  // waited for, threads are joined. Open outcomes that complete afterwards are not acknowledged.
  // Idempotent. Must not be called from a handler.
  void Stop();
  // Stop's first half: stops taking work and cancels what runs or waits, without waiting for
  // anything. For the node, before it stops its hub client, whose reading thread may be running a
  // handler (SubmitFromReader) that the cancellation lets end early. Idempotent; Stop() follows.
  void BeginStop();

  RouterCounters Counters() const;

  class Impl;

 private:
  explicit Router(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace nodelink::router

// The hub's relay logic (PROTOCOL.md section 4): registry of streams, envelope acceptance rules,
// per-recipient FIFO delivery with credits, acknowledgements, rate limits, expiry notices. It
// knows streams only through the small Session interface and the queue only through the
// QueueCommitter, so it runs without gRPC (unit tests drive it with fake sessions; ThreadSanitizer
// can run on it, IMPLEMENTATION-NOTES 4.6).
//
// Threading: every method is thread-safe; one mutex guards the registry. Sessions are called only
// under that mutex (lock order: relay, then session), and a session's owner calls Detach() under
// the same mutex before destroying it, so the relay never holds a dangling Session*
// (IMPLEMENTATION-NOTES 4.3). Completions of the committer run on the thread of its pass (its own,
// or the hub's nl-hub-cq: QueueCommitter::CallerTurn) and take the mutex.
//
// A small envelope for a recipient that waits is pushed once its append's outcome and row id are
// decided, before its row is written and while the transaction goes on to commit; `Accepted`
// still waits for the commit (PROTOCOL 4). If that commit fails, the sender's stream ends without
// an answer and it resends: the recipient, which may already have the envelope, answers the
// second copy as a duplicate. At one message in flight this takes the durable queue's two commits
// per round trip off its path (bench/RESULTS.md).
//
// Delivered{message_id} names no sender, and message ids are unique only per sender, so two
// envelopes for one recipient from different senders may share an id (by chance, or on purpose by
// a hostile sender). The relay never has two envelopes with the same id in flight to one
// recipient: the later one (and everything queued behind it for that recipient) waits until the
// earlier one is acknowledged. Every Delivered therefore names exactly one envelope, and a
// hostile sender can delay, but never cause the deletion of, another sender's envelope.
#pragma once

#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/clock.h"
#include "nodelink/v1/hub.pb.h"
#include "transport/fault_injection.h"
#include "transport/metrics.h"
#include "transport/queue_committer.h"
#include "transport/rate_limiter.h"

namespace nodelink::transport {

struct RelayOptions {
  std::string federation;
  std::string hub_id = "nodelink-hub";
  std::optional<std::set<std::string>> members;  // nullopt: any id with a valid certificate
  uint64_t max_envelope_bytes = 16 << 20;        // Envelope.ByteSizeLong()
  uint64_t queue_ttl_ms = 3'600'000;
  uint64_t dedup_window_ms = 0;          // 0 = queue_ttl_ms; never less than it
  uint32_t default_max_in_flight = 128;  // Hello.max_in_flight == 0
  uint32_t max_in_flight_cap = 4096;     // larger requests are lowered to this
  // Pushed-but-unacknowledged bytes per recipient beyond which the hub waits (at least one
  // envelope is always in flight), so that credits of 16 MiB envelopes cannot fill the hub's RAM.
  uint64_t max_in_flight_bytes = 64 << 20;
  RateLimit rate;
  FaultOptions faults;  // tests only (fault_injection.h); none by default
};

// A participant's stream as the relay sees it.
class Session {
 public:
  enum class FrameKind {
    kWelcome,
    kAnswer,  // Accepted/Rejected answering an envelope read on this session
    kPush,    // an envelope (queue_id names its row)
    kNotice,  // Rejected{EXPIRED} from the queue (queue_id names its row), or a late answer
  };
  // Queues a frame for writing. Must not block nor call back into the relay. For kNotice frames
  // with queue_id != 0, the owner calls Relay::OnNoticeWritten once it is written.
  virtual void Send(v1::HubFrame frame, FrameKind kind, uint64_t queue_id) = 0;
  // Ends the stream with `status` (after the frames already queued).
  virtual void End(absl::Status status) = 0;

 protected:
  ~Session() = default;
};

class Relay {
 public:
  // `committer`, `clock` and `counters` must outlive the relay.
  Relay(RelayOptions options, QueueCommitter& committer, const core::Clock& clock,
        HubCounters& counters);

  // A stream whose identity is established (PROTOCOL 3/4). Refuses a non-member
  // (PERMISSION_DENIED) and a stopped relay (UNAVAILABLE); ends an older stream of the same
  // participant (ABORTED); sends Welcome and starts pushing its queue.
  absl::Status Attach(Session* session, const std::string& node_id, uint32_t max_in_flight);
  // The stream is going away; after this returns the relay no longer uses `session`.
  void Detach(Session* session, const std::string& node_id);

  // An envelope read on `session` of `node_id`. Answers exactly once on that session (kAnswer),
  // at once for a refusal, or after the commit for Accepted/QUEUE_FULL.
  void OnEnvelope(Session* session, const std::string& node_id, const v1::Envelope& envelope);
  // A Delivered read on `session`: deletes the one envelope in flight with that id.
  void OnDelivered(Session* session, const std::string& node_id, const std::string& message_id);
  // A kNotice frame with this queue id was written: the notice is deleted.
  void OnNoticeWritten(uint64_t queue_id);

  // Ends every stream with `status`; Attach refuses from now on.
  void EndAll(const absl::Status& status);

  // Runs one expiry pass (PROTOCOL 4: expired envelopes are deleted and their senders get
  // Rejected{EXPIRED}, queued like envelopes) and waits for it. Returns the number of expired
  // envelopes. Not to be called from a thread that runs the committer's passes (its own, or one
  // with a QueueCommitter::CallerTurn such as nl-hub-cq): it would wait for itself.
  absl::StatusOr<uint64_t> ExpireNow();

  // With fault injection: pushes the held-back envelopes whose time has come (the hub server
  // calls it every few milliseconds). Without: does nothing.
  void ReleaseHeldPushes();

  const RelayOptions& options() const { return options_; }

 private:
  struct InFlight {
    uint64_t id;
    std::string message_id;
    uint64_t bytes;
  };
  struct Held {
    uint64_t due_ms;
    bool after_next_push;  // reorder: goes right after the next push
    v1::HubFrame frame;
    uint64_t queue_id;
  };
  struct Conn {
    Session* session = nullptr;
    uint64_t epoch = 0;
    uint32_t max_in_flight = 0;
    std::deque<InFlight> in_flight;
    uint64_t in_flight_bytes = 0;
    uint64_t cursor = 0;  // highest queue id handled on this stream
    bool more = true;     // the queue may hold rows above the cursor
    bool fetching = false;
    uint64_t commit_gen = 0;  // bumped when a row for this recipient is staged to commit
    std::vector<Held> held;   // fault injection: pushes held back (still in flight)
  };

  // The refusal code and detail for an envelope from `node_id`, or nullopt if it is acceptable.
  std::optional<std::pair<v1::Code, std::string>> CheckEnvelope(const std::string& node_id,
                                                                const v1::Envelope& e);
  void Answer(const std::string& sender, uint64_t epoch, v1::HubFrame frame);
  void Reject(Session* session, const v1::Envelope& e, v1::Code code, std::string detail);
  void MaybeFetch(const std::string& node_id, Conn& c);
  void OnFetched(const std::string& node_id, uint64_t epoch, uint64_t gen,
                 absl::StatusOr<std::vector<QueuedItem>> rows);
  // What OnEnvelope's two committer callbacks share (both run on the thread of the committer's
  // pass).
  struct Staged {
    v1::HubFrame pushable;  // the envelope, when it may be pushed from memory; else empty
    bool pushed = false;    // OnStaged pushed it before its commit
  };
  // The append's outcome and id are decided; its row is written and committed next. Pushes the
  // envelope now if its recipient waits (the rest runs meanwhile), else marks the recipient's
  // queue for a fetch.
  void OnStaged(const std::string& recipient, const std::string& message_id, Staged& staged,
                const AppendResult& result);
  // The commit's outcome: answers the sender.
  void OnAppended(const std::string& sender, uint64_t sender_epoch, const std::string& recipient,
                  const std::string& message_id, bool pushed,
                  const absl::StatusOr<AppendResult>& result);
  // The recipient's stream if it is connected and waits: no row above its cursor may be queued
  // (not `more`) and no fetch is running. Null otherwise.
  Conn* Waiting(const std::string& recipient);
  // Pushes an envelope whose append is about to commit at once if its recipient waits and has
  // room; false if it must go through a fetch instead.
  bool PushNow(const std::string& recipient, uint64_t queue_id, const std::string& message_id,
               v1::HubFrame& frame);
  // Whether `c` can take one more envelope of `bytes` with `message_id` now.
  bool HasRoom(const Conn& c, const std::string& message_id, uint64_t bytes) const;
  // Puts a row in flight (or applies an injected fault to it) and pushes it; advances the cursor.
  void PushRow(const std::string& node_id, Conn& c, v1::HubFrame frame, uint64_t queue_id,
               const std::string& message_id, uint64_t bytes);
  void AnswerQueueFull(const std::string& sender, uint64_t sender_epoch,
                       const std::string& message_id, std::string detail);
  void NotifyQueued(const std::string& recipient);
  void Push(Conn& c, v1::HubFrame frame, uint64_t queue_id, Fault fault);
  void SendHeld(Conn& c, bool after_push, uint64_t now_ms);
  uint64_t EpochOf(const std::string& node_id);

  const RelayOptions options_;
  QueueCommitter& committer_;
  const core::Clock& clock_;
  HubCounters& counters_;
  SenderRateLimiter rate_;
  std::optional<FaultInjector> faults_;

  std::mutex mu_;
  bool stopped_ = false;
  uint64_t next_epoch_ = 1;
  std::unordered_map<std::string, Conn> conns_;
  std::unordered_map<std::string, uint64_t> pushed_high_;  // highest id ever pushed, per node
};

}  // namespace nodelink::transport

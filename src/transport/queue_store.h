// The hub's queue, behind one narrow interface (DESIGN.md, last paragraph): append, fetch for a
// recipient, acknowledge (delete), expire, dedup lookup. SQLite is the embedded default
// (sqlite_queue_store.h), an in-memory one exists for measurements and development
// (memory_queue_store.h), and a message-system backend can be added beside them without touching
// the relay. No gRPC or protobuf type appears here: bodies are opaque bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace nodelink::transport {

enum class QueuedKind : uint8_t {
  kEnvelope = 0,       // body: a serialized v1::Envelope, pushed against a credit
  kExpiredNotice = 1,  // body: a serialized v1::Rejected{EXPIRED} for the original sender
};

// One row of a recipient's queue.
struct QueuedItem {
  uint64_t id = 0;  // assigned by the store; strictly increasing and never reused (FIFO order)
  QueuedKind kind = QueuedKind::kEnvelope;
  std::string recipient;
  std::string sender;
  std::string message_id;
  uint64_t enqueued_at_ms = 0;
  uint64_t expires_at_ms = 0;
  std::string body;
};

struct AppendRequest {
  std::string sender;
  std::string recipient;
  std::string message_id;
  uint64_t now_ms = 0;
  uint64_t expires_at_ms = 0;
  std::string body;  // serialized v1::Envelope; its size counts against the recipient's bounds
};

enum class AppendOutcome {
  kQueued,     // durably stored under a new id
  kDuplicate,  // (sender, message_id) is in the dedup record: nothing written (PROTOCOL 4)
  kQueueFull,  // the recipient's queue is at its bound (count or bytes)
  kDiskFull,   // the hub's disk is full, or less than its headroom would stay free
};

struct AppendResult {
  AppendOutcome outcome = AppendOutcome::kQueued;
  uint64_t id = 0;  // for kQueued
};

// Per-recipient bounds on queued envelopes (notices are not counted). 0 = unbounded.
struct QueueBounds {
  uint64_t max_count = 0;
  uint64_t max_bytes = 0;

  // Whether a recipient's queue of `count` envelopes and `bytes` body bytes is over the bounds.
  bool Exceeded(uint64_t count, uint64_t bytes) const {
    return (max_count != 0 && count > max_count) || (max_bytes != 0 && bytes > max_bytes);
  }
};

struct QueueTotals {
  uint64_t items = 0;  // envelopes and notices
  uint64_t bytes = 0;  // body bytes
};

// What one expiry pass did.
struct ExpireResult {
  std::vector<QueuedItem> notices;  // queued for the senders of expired envelopes, in id order
  uint64_t expired_envelopes = 0;
  uint64_t dropped_notices = 0;  // notices that themselves outlived their time to live
  uint64_t forgotten_dedup = 0;  // dedup records older than the window
};

// Builds the body of the notice for an expired envelope (a serialized v1::Rejected). Injected so
// that the store stays free of protobuf.
using NoticeBodyBuilder = std::function<std::string(const QueuedItem& expired)>;

// Called on the store's thread with an open transaction: must not call the store.
using BeforeCommit = std::function<void(std::span<const AppendResult>)>;

// Not thread-safe: one thread (the QueueCommitter's) calls a store. All methods return a status
// for storage failures (disk full, I/O error, corrupt file); the caller answers nothing it could
// not commit.
class QueueStore {
 public:
  virtual ~QueueStore() = default;

  // Applies `appends` in order and deletes `deletes` (unknown ids are ignored), as one
  // transaction; what the deletes free counts for the appends' bounds. When it returns OK, every
  // kQueued append and every delete is durable (see the implementation for what "durable" means).
  // Each append is kDuplicate if (sender, message_id) is in the dedup record — including an
  // earlier append of the same call — else kQueueFull if the recipient's queue would pass
  // `bounds`, else queued and recorded for dedup.
  // `before_commit`, if set, is called once with the results (one per append, in order) as soon
  // as every outcome and id is decided; writes that change none of them (the rows, their dedup
  // records, deletes the bounds did not need) may come after it, and the commit does. The relay
  // pushes small envelopes then, while the rest is written (relay.h). The commit may still fail
  // (Commit returns an error and nothing is applied); an id `before_commit` was shown is not
  // handed out again while the store is open (after a restart, ids go on from the largest
  // committed one: queue ids never leave the hub, and the pushes they named ended with it).
  [[nodiscard]] virtual absl::StatusOr<std::vector<AppendResult>> Commit(
      std::span<const AppendRequest> appends, std::span<const uint64_t> deletes,
      const QueueBounds& bounds, const BeforeCommit& before_commit = {}) = 0;

  // Up to `max_items` rows for `recipient` with id > `after_id`, in id order; stops before the
  // row that would pass `max_bytes` of bodies, but returns at least one row if any exists.
  [[nodiscard]] virtual absl::StatusOr<std::vector<QueuedItem>> Fetch(std::string_view recipient,
                                                                      uint64_t after_id,
                                                                      size_t max_items,
                                                                      uint64_t max_bytes) = 0;

  // In one transaction: deletes envelopes with expires_at_ms <= now_ms and queues, for each, a
  // notice to its sender (body from `notice_body`, living `notice_ttl_ms`); deletes notices that
  // expired (silently); forgets dedup records older than now_ms - dedup_window_ms.
  [[nodiscard]] virtual absl::StatusOr<ExpireResult> Expire(
      uint64_t now_ms, uint64_t dedup_window_ms, uint64_t notice_ttl_ms,
      const NoticeBodyBuilder& notice_body) = 0;

  // Whether (sender, message_id) is in the dedup record.
  [[nodiscard]] virtual absl::StatusOr<bool> IsDuplicate(std::string_view sender,
                                                         std::string_view message_id) = 0;

  // Rows and body bytes queued now (cheap: kept in memory).
  virtual QueueTotals Totals() const = 0;

  // Housekeeping the committer's thread calls after each of its passes and at its tick (at least
  // once a second); the store decides how often to act (WAL checkpoint for SQLite). Optional.
  virtual void Maintain() {}
};

}  // namespace nodelink::transport

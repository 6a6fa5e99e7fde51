// The one thread that talks to the QueueStore. Appends and deletes are group-committed: each pass
// takes every operation queued since the previous pass and commits up to `max_batch` appends (plus
// all deletes) per transaction, so throughput pays one commit per batch, not per envelope, and a
// lone envelope waits for no timer (IMPLEMENTATION-NOTES 6.3). Reads (fetch, expire) run after the
// pass's writes. Completions run on this thread, in order, after the commit they report: the
// relay sends `Accepted` only from an append completion (and may push the envelope from the
// `staged` call before it, while the commit runs). No gRPC type appears here.
//
// Deletes alone neither wake the thread nor start a transaction: they are held until the next
// append, fetch or expiry, `max_batch` of them, Stop(), or the thread's tick every
// `maintain_interval_ms`, whichever comes first. At one message in flight the hub's transactions
// fall from ~3.6 to 2 per round trip, and its thread's runs by about one (bench/RESULTS.md). A hub
// that stops uncleanly while deletes are held delivers those envelopes again, which receivers
// answer as duplicates (PROTOCOL 7); nothing is lost, and nothing `Accepted` waits for the hold.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "transport/queue_store.h"

namespace nodelink::transport {

struct CommitterOptions {
  size_t max_batch = 256;  // appends per transaction
  QueueBounds bounds;      // per-recipient bounds checked at commit
  // The thread's tick: housekeeping (QueueStore::Maintain), and the longest a delete is held.
  uint64_t maintain_interval_ms = 1000;
};

// Group-commit figures, for the metrics endpoint and the benchmark.
struct CommitterStats {
  uint64_t commits = 0;  // transactions with at least one append or delete
  uint64_t appends = 0;  // append requests committed (any outcome)
  uint64_t deletes = 0;
  uint64_t max_batch = 0;  // largest number of appends in one transaction
  // Transactions by appends: 0 (deletes only), 1, 2-7, 8-31, 32-127, 128+.
  std::array<uint64_t, 6> batch_histogram{};
  uint64_t storage_errors = 0;
};

class QueueCommitter {
 public:
  using AppendDone = std::function<void(const absl::StatusOr<AppendResult>&)>;
  // The append's outcome once its transaction's statements ran, before the commit: kQueued there
  // may still fail to commit (done then gets an error or kDiskFull). On this thread, in order.
  using AppendStaged = std::function<void(const AppendResult&)>;
  using FetchDone = std::function<void(absl::StatusOr<std::vector<QueuedItem>>)>;
  using ExpireDone = std::function<void(absl::StatusOr<ExpireResult>)>;

  // Starts the thread. The committer owns the store.
  QueueCommitter(std::unique_ptr<QueueStore> store, CommitterOptions options);
  // Stop().
  ~QueueCommitter();

  // All of these are thread-safe, never block on the store, and never run a completion inline.
  // They return false once Stop() began: the operation is dropped and its completion never runs.
  bool Append(AppendRequest request, AppendDone done, AppendStaged staged = nullptr);
  bool Delete(uint64_t id);
  bool Fetch(std::string recipient, uint64_t after_id, size_t max_items, uint64_t max_bytes,
             FetchDone done);
  bool Expire(uint64_t now_ms, uint64_t dedup_window_ms, uint64_t notice_ttl_ms,
              NoticeBodyBuilder notice_body, ExpireDone done);

  // Runs everything queued so far (completions included), ends the thread and closes the store.
  // Idempotent. stats() and totals() keep their last values.
  void Stop();

  CommitterStats stats() const;
  QueueTotals totals() const;

 private:
  struct AppendOp {
    AppendRequest request;
    AppendDone done;
    AppendStaged staged;
  };
  struct DeleteOp {
    uint64_t id;
  };
  struct FetchOp {
    std::string recipient;
    uint64_t after_id;
    size_t max_items;
    uint64_t max_bytes;
    FetchDone done;
  };
  struct ExpireOp {
    uint64_t now_ms, dedup_window_ms, notice_ttl_ms;
    NoticeBodyBuilder notice_body;
    ExpireDone done;
  };
  using Op = std::variant<AppendOp, DeleteOp, FetchOp, ExpireOp>;

  bool Post(Op op);
  void Run();
  // commit_held: commit held deletes even if nothing else comes (Stop or the tick).
  void RunPass(std::deque<Op>& ops, bool commit_held);
  void CommitWrites(std::vector<AppendOp>& appends, std::vector<uint64_t>& deletes);

  std::unique_ptr<QueueStore> store_;
  const CommitterOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> ops_;
  size_t posted_deletes_ = 0;  // deletes in ops_ posted without waking the thread
  bool stopping_ = false;
  bool stopped_ = false;
  CommitterStats stats_;
  QueueTotals totals_;
  std::vector<uint64_t> held_deletes_;  // waiting for a transaction (the committer's thread only)

  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace nodelink::transport

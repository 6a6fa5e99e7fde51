// The one place that talks to the QueueStore, one pass at a time, on its own thread or on a
// CallerTurn's (below). Appends and deletes are group-committed: each pass takes every operation
// queued since the previous pass and commits up to `max_batch` appends (plus all deletes) per
// transaction, so throughput pays one commit per batch, not per envelope, and a lone envelope
// waits for no timer (IMPLEMENTATION-NOTES 6.3). Reads (fetch, expire) run after the pass's
// writes. Completions run on the thread of the pass, in order, after the commit they report: the
// relay sends `Accepted` only from an append completion (and may push the envelope from the
// `staged` call before it, while the commit runs). No gRPC type appears here.
//
// Deletes alone neither wake the thread nor start a transaction: they are held until the next
// append, fetch or expiry, `max_batch` of them, Stop(), or the thread's tick every
// `maintain_interval_ms`, whichever comes first. At one message in flight the hub's transactions
// fall from ~3.6 to 2 per round trip, and its thread's runs by about one (bench/RESULTS.md). A hub
// that stops uncleanly while deletes are held delivers those envelopes again, which receivers
// answer as duplicates (PROTOCOL 7); nothing is lost, and nothing `Accepted` waits for the hold.
//
// The hub's completion-queue thread can take a pass itself (CallerTurn): what it posts wakes no
// thread, and once it has no completion waiting it runs the pass there, or, under load (more
// than one envelope posted, or more than two completions served while one waits), hands the pass
// to this class's thread, which batches. At one envelope in flight the hub's two thread
// hand-offs per envelope (read, then commit and push) become none (bench/RESULTS.md, seventeenth
// and eighteenth sessions). While such a pass runs (a commit, now and then a WAL
// checkpoint's second pass) that thread serves no stream: worth it only while passes are short,
// so a caller's pass takes small appends and deletes only (fetches, expiry and large bodies go to
// the thread), and `caller_passes` is off when each commit syncs the disk (synchronous=FULL).
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
  // CallerTurn::RunHere may run passes (else it hands them to the thread).
  bool caller_passes = true;
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
  // Passes run by the committer's thread (ticks included) and by CallerTurns (nl-hub-cq), and
  // operations whose posting woke the thread (a thread wake-up is a context switch).
  uint64_t thread_passes = 0;
  uint64_t caller_passes = 0;
  uint64_t posts_waking_thread = 0;
};

class QueueCommitter {
 public:
  using AppendDone = std::function<void(const absl::StatusOr<AppendResult>&)>;
  // The append's outcome once it is decided, before its row is written and committed: kQueued
  // there may still fail to commit (done then gets an error or kDiskFull). On the pass's thread,
  // in order.
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
  // Idempotent. stats() and totals() keep their last values. A CallerTurn's pass that is running
  // finishes first; none starts after.
  void Stop();

  // While one lives on a thread, what that thread posts does not wake the committer's thread;
  // the owner then calls RunHere() or HandToThread() before it waits for anything else. One per
  // thread; the committer must outlive it. The destructor hands on what is pending.
  class CallerTurn {
   public:
    explicit CallerTurn(QueueCommitter& committer);
    ~CallerTurn();
    CallerTurn(const CallerTurn&) = delete;
    CallerTurn& operator=(const CallerTurn&) = delete;

    // Something was posted on this thread since the last RunHere or HandToThread (deletes, which
    // wait for a pass to join, do not count), and how many operations.
    bool pending() const { return posted_ > 0; }
    size_t posted() const { return posted_; }
    // Runs a pass of everything posted (by any thread) here, completions included, unless the
    // committer's thread is in a pass (it then takes it after its own), caller passes are off, or
    // a fetch, an expiry or a large body is among it (then the thread takes it: HandToThread).
    void RunHere();
    // Wakes the committer's thread for what is pending.
    void HandToThread();

   private:
    friend class QueueCommitter;
    QueueCommitter& committer_;
    size_t posted_ = 0;
  };

  CommitterStats stats() const;
  QueueTotals totals() const;
  // The thread waits for work (no pass, nothing posted that woke it). Lets a test know the thread
  // is not about to take, unwoken, what a CallerTurn posts.
  bool ThreadWaiting() const;

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
  // A CallerTurn's pass (CallerTurn::RunHere).
  void RunCallersPass();
  // ops_ holds only what a caller's pass takes (queue_committer.cc).
  bool LightLocked() const;
  void CommitWrites(std::vector<AppendOp>& appends, std::vector<uint64_t>& deletes);

  std::unique_ptr<QueueStore> store_;
  const CommitterOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> ops_;
  size_t posted_deletes_ = 0;       // deletes in ops_ posted without waking the thread
  bool in_pass_ = false;            // a pass runs, on the thread or a CallerTurn's
  bool thread_waits_turn_ = false;  // the thread waits for a CallerTurn's pass to end
  bool thread_waiting_ = false;     // the thread waits for work
  bool stopping_ = false;
  bool stopped_ = false;
  CommitterStats stats_;
  QueueTotals totals_;
  std::vector<uint64_t> held_deletes_;  // waiting for a transaction (used by the running pass)

  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace nodelink::transport

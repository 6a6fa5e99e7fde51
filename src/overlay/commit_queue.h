// Group commit for channel state (PROTOCOL.md section 6: "mark seq and store the inner message in
// one store transaction", issue: "persisting must not cost one synchronous write per message").
// Changes queue up while the previous transaction commits; each transaction takes everything
// queued, so throughput does not pay one fsync per message and latency adds no timer.
//
// At light load a hand-off to the commit thread costs two thread wake-ups (that thread's, and
// one back for what follows the commit), each a context switch on busy cores. So a caller on the
// latency path (the receive path: open, commit, then acknowledge and dispatch) can commit on its
// own thread when nothing else is queued or committing, with CommitBy::kCaller and
// CommitHereIfIdle(); under load the commit thread batches.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "overlay/ports.h"

namespace nodelink::overlay {

class CommitQueue {
 public:
  struct Stats {
    uint64_t transactions = 0;
    uint64_t items = 0;
    uint64_t largest_batch = 0;
  };

  // Who commits an enqueued item: the commit thread (woken by Enqueue), or the caller's choice,
  // made soon after with CommitHereIfIdle() or CommitOnThread() (no lock held that a `then` takes),
  // or, for an item nobody waits for that need not be durable at once (a sent copy, kept for
  // resends after a ChannelUnknown), whoever commits next: kHeld wakes no thread and does not
  // count against CommitHereIfIdle's `own`; it commits with the next transaction, or on the
  // thread once it has waited `hold` (or at Flush, Shutdown). At one request in flight the
  // request's copy then commits with its reply's record, on the thread that opened the reply:
  // one transaction and one thread wake-up fewer per round trip (bench/RESULTS.md, seventeenth
  // session). With a `then`, kHeld is kThread; in a CallerScope, it is the scope's.
  enum class CommitBy { kThread, kCaller, kHeld };

  static constexpr std::chrono::milliseconds kDefaultHold{10};

  // `on_failure` runs once, on the committing thread, if a commit fails; the queue then stops
  // (fail-stop: acknowledging what was not recorded would lose messages) and drops later work.
  CommitQueue(ChannelJournal& journal, std::function<void(absl::Status)> on_failure,
              std::chrono::milliseconds hold = kDefaultHold);
  ~CommitQueue();  // Shutdown()

  // Commits what is queued (running its `then`), then stops the thread; later Enqueue calls are
  // dropped. Idempotent. Not from a `then`.
  void Shutdown();

  // Queues `changes`; `then` (optional) runs on the committing thread (the commit thread, or one
  // in CommitHereIfIdle) once they are durable. Items commit, and their `then` run, in the order
  // they were enqueued, one transaction at a time. Thread-safe.
  void Enqueue(JournalBatch changes, std::function<void()> then = nullptr,
               CommitBy by = CommitBy::kThread);

  // At light load (no more than `own` items queued, the caller's, and no commit running) commits
  // them, and runs their `then`, on the calling thread; otherwise the commit thread takes the
  // queue (nothing waits for this call). Thread-safe; not from a `then`.
  void CommitHereIfIdle(size_t own = 1);
  // Wakes the commit thread for items queued with CommitBy::kCaller.
  void CommitOnThread();
  // Places one item queued earlier with CommitBy::kCaller, on any thread: inside a CallerScope it
  // commits at the scope's end with the scope's items, else as CommitHereIfIdle().
  void PlaceHere();

  // Blocks until everything enqueued before the call is committed (or the queue failed).
  void Flush();

  Stats stats() const;
  // The thread sleeps without a deadline (as it does while a caller commits). Lets a test end a
  // caller's commit only after the thread has looked at the queue during it.
  bool ThreadSleepsWithoutDeadline() const;

  // While one lives on a thread, the items that thread enqueues with CommitBy::kThread and no
  // `then` (nothing waits for them: sent copies, answered replies, inbox removals) do not wake the
  // commit thread, nor do those it places (PlaceHere); the scope's end commits them together on
  // this thread (CommitHereIfIdle), or wakes the commit thread if others queued meanwhile. For a
  // short stretch of work on the latency path, with no waiting inside: the dispatch of a message
  // that came alone, whose record and reply's records then commit in one transaction after the
  // reply has left, without a thread wake-up. Scopes nest (an inner one does nothing). Every
  // queue an item went to must outlive the scope.
  class CallerScope {
   public:
    CallerScope();
    ~CallerScope();
    CallerScope(const CallerScope&) = delete;
    CallerScope& operator=(const CallerScope&) = delete;

   private:
    friend class CommitQueue;
    static CallerScope* Current();
    void Add(CommitQueue* queue);

    bool outermost_;
    std::vector<std::pair<CommitQueue*, size_t>> deferred_;  // items per queue
  };

 private:
  struct Item {
    JournalBatch changes;
    std::function<void()> then;
  };
  using Clock = std::chrono::steady_clock;
  void Run();
  // Whether the thread has something to do now (called with the lock held).
  bool ThreadDue(Clock::time_point now) const;
  // One transaction of everything queued, its `then`s, and the accounting. Called with `lock`
  // held, committing_ false and the queue not empty; returns with it held. False if it failed.
  bool CommitBatch(std::unique_lock<std::mutex>& lock);

  ChannelJournal& journal_;
  std::function<void(absl::Status)> on_failure_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::deque<Item> queue_;
  uint64_t enqueued_ = 0;
  uint64_t finished_ = 0;
  bool committing_ = false;  // a batch is being committed (by the thread or a caller)
  const std::chrono::milliseconds hold_;
  size_t held_ = 0;                 // kHeld items in queue_
  Clock::time_point held_since_;    // when the oldest of them was queued
  Clock::time_point linger_until_;  // the thread keeps a deadline until then (Run)
  bool thread_timed_ = false;       // the thread sleeps with a deadline: a held item needs no wake
  bool thread_untimed_ = false;     // the thread sleeps without one (tests)
  bool thread_asked_ = false;       // the thread is to commit what is queued, held or not
  uint64_t flush_upto_ = 0;         // Flush() waits for the items enqueued before this count
  bool stopping_ = false;
  bool exited_ = false;  // the thread returned: Enqueue drops, Flush returns
  bool failed_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace nodelink::overlay

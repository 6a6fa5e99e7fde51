// Group commit for channel state (PROTOCOL.md section 6: "mark seq and store the inner message in
// one store transaction", issue: "persisting must not cost one synchronous write per message").
// Changes queue up while the previous transaction commits; each transaction takes everything
// queued, so throughput does not pay one fsync per message and latency adds no timer.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

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

  // `on_failure` runs once, on the commit thread, if a commit fails; the queue then stops
  // (fail-stop: acknowledging what was not recorded would lose messages) and drops later work.
  CommitQueue(ChannelJournal& journal, std::function<void(absl::Status)> on_failure);
  ~CommitQueue();  // Shutdown()

  // Commits what is queued (running its `then`), then stops the thread; later Enqueue calls are
  // dropped. Idempotent. Not from a `then`.
  void Shutdown();

  // Queues `changes`; `then` (optional) runs on the commit thread once they are durable. Items
  // commit, and their `then` run, in the order they were enqueued. Thread-safe.
  void Enqueue(JournalBatch changes, std::function<void()> then = nullptr);

  // Blocks until everything enqueued before the call is committed (or the queue failed).
  void Flush();

  Stats stats() const;

 private:
  struct Item {
    JournalBatch changes;
    std::function<void()> then;
  };
  void Run();

  ChannelJournal& journal_;
  std::function<void(absl::Status)> on_failure_;
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::deque<Item> queue_;
  uint64_t enqueued_ = 0;
  uint64_t finished_ = 0;
  bool stopping_ = false;
  bool exited_ = false;  // the thread returned: Enqueue drops, Flush returns
  bool failed_ = false;
  Stats stats_;
  std::thread thread_;
};

}  // namespace nodelink::overlay

#include "overlay/commit_queue.h"

#include <algorithm>
#include <utility>

#include "core/thread_name.h"

namespace nodelink::overlay {

namespace {
thread_local CommitQueue::CallerScope* t_scope = nullptr;
}  // namespace

CommitQueue::CallerScope::CallerScope() : outermost_(t_scope == nullptr) {
  if (outermost_) t_scope = this;
}

CommitQueue::CallerScope::~CallerScope() {
  if (!outermost_) return;
  t_scope = nullptr;
  for (auto [queue, items] : deferred_) queue->CommitHereIfIdle(items);
}

CommitQueue::CallerScope* CommitQueue::CallerScope::Current() { return t_scope; }

void CommitQueue::CallerScope::Add(CommitQueue* queue) {
  for (auto& [q, items] : deferred_) {
    if (q == queue) {
      ++items;
      return;
    }
  }
  deferred_.emplace_back(queue, 1);
}

CommitQueue::CommitQueue(ChannelJournal& journal, std::function<void(absl::Status)> on_failure,
                         std::chrono::milliseconds hold)
    : journal_(journal), on_failure_(std::move(on_failure)), hold_(hold), thread_([this] {
        core::NameThisThread("nl-store-commit");
        Run();
      }) {}

CommitQueue::~CommitQueue() { Shutdown(); }

void CommitQueue::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CommitQueue::Enqueue(JournalBatch changes, std::function<void()> then, CommitBy by) {
  if (by == CommitBy::kHeld && then) by = CommitBy::kThread;  // someone waits for it
  CallerScope* scope = by != CommitBy::kCaller && !then ? CallerScope::Current() : nullptr;
  bool wake = by == CommitBy::kThread && scope == nullptr;
  {
    std::lock_guard lock(mu_);
    if (failed_ || exited_) return;
    queue_.push_back(Item{std::move(changes), std::move(then)});
    ++enqueued_;
    if (wake) thread_asked_ = true;
    if (by == CommitBy::kHeld && scope == nullptr) {
      const Clock::time_point now = Clock::now();
      if (held_++ == 0) held_since_ = now;
      linger_until_ = now + 10 * hold_;
      // A thread asleep without a deadline must set one; one with a deadline commits this in time.
      wake = !thread_timed_;
    }
  }
  if (scope != nullptr) {
    scope->Add(this);
  } else if (wake) {
    wake_.notify_one();
  }
}

void CommitQueue::CommitOnThread() {
  {
    std::lock_guard lock(mu_);
    thread_asked_ = true;
  }
  wake_.notify_one();
}

void CommitQueue::PlaceHere() {
  if (CallerScope* scope = CallerScope::Current()) {
    scope->Add(this);
  } else {
    CommitHereIfIdle();
  }
}

void CommitQueue::CommitHereIfIdle(size_t own) {
  std::unique_lock lock(mu_);
  if (committing_) return;  // whoever commits now takes the queue after (Run, or below)
  if (queue_.size() - held_ > own) {
    // Others are queuing too: one transaction of the thread's for all of them is cheaper than
    // this caller's own.
    thread_asked_ = true;
    wake_.notify_one();
    return;
  }
  if (queue_.empty() || !CommitBatch(lock)) return;
  // What came meanwhile, if the thread must see it now: items for the thread, a Flush, or held
  // items while the thread sleeps without a deadline (as it does while a caller commits).
  if (thread_asked_ || finished_ < flush_upto_ || (held_ > 0 && !thread_timed_)) {
    wake_.notify_one();
  }
}

void CommitQueue::Flush() {
  std::unique_lock lock(mu_);
  uint64_t target = enqueued_;
  flush_upto_ = std::max(flush_upto_, target);  // held items too, and those a caller was to place
  wake_.notify_one();
  done_.wait(lock, [&] { return finished_ >= target || failed_ || exited_; });
}

bool CommitQueue::ThreadSleepsWithoutDeadline() const {
  std::lock_guard lock(mu_);
  return thread_untimed_;
}

CommitQueue::Stats CommitQueue::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool CommitQueue::ThreadDue(Clock::time_point now) const {
  if (committing_) return false;  // the committing caller takes the queue, or wakes the thread
  if (stopping_) return true;
  if (queue_.empty()) return false;
  return thread_asked_ || finished_ < flush_upto_ || (held_ > 0 && now >= held_since_ + hold_);
}

void CommitQueue::Run() {
  // While kHeld items come, the thread sleeps with a deadline (so that they wake no thread), and
  // it keeps one for a while after the last, so that a steady trickle of them does not wake it
  // each time to set it. Every wait ends in a fresh look; a timer's or a spurious wake-up commits
  // only held items that are due, not items a caller is about to place.
  std::unique_lock lock(mu_);
  while (true) {
    const Clock::time_point now = Clock::now();
    if (!ThreadDue(now)) {
      // A committing caller wakes the thread at its end if it must (CommitHereIfIdle).
      thread_timed_ = !committing_ && (held_ > 0 || now < linger_until_);
      if (thread_timed_) {
        wake_.wait_until(lock,
                         held_ > 0 ? held_since_ + hold_ : std::min(now + hold_, linger_until_));
      } else {
        thread_untimed_ = true;
        wake_.wait(lock);
        thread_untimed_ = false;
      }
      continue;
    }
    if (queue_.empty()) {  // stopping, and everything queued is committed
      exited_ = true;
      done_.notify_all();
      return;
    }
    if (!CommitBatch(lock)) return;
  }
}

bool CommitQueue::CommitBatch(std::unique_lock<std::mutex>& lock) {
  committing_ = true;
  std::deque<Item> items;
  items.swap(queue_);
  held_ = 0;
  thread_asked_ = false;  // this batch takes everything queued
  lock.unlock();

  JournalBatch batch;
  for (Item& item : items) batch.Absorb(std::move(item.changes));
  absl::Status status = batch.empty() ? absl::OkStatus() : journal_.Commit(std::move(batch));
  if (!status.ok()) {
    lock.lock();
    failed_ = true;
    committing_ = false;
    queue_.clear();
    held_ = 0;
    done_.notify_all();
    if (stopping_) wake_.notify_one();  // as below: a caller's failed batch must not block exit
    lock.unlock();
    if (on_failure_) on_failure_(status);
    lock.lock();
    return false;
  }
  for (Item& item : items) {
    if (item.then) item.then();
  }

  lock.lock();
  committing_ = false;
  // Items placed meanwhile found this batch running and left them to whoever commits next.
  if (queue_.size() > held_) thread_asked_ = true;
  finished_ += items.size();
  stats_.transactions += 1;
  stats_.items += items.size();
  stats_.largest_batch = std::max<uint64_t>(stats_.largest_batch, items.size());
  done_.notify_all();
  if (stopping_) wake_.notify_one();  // the thread may wait for this batch to end to exit
  return true;
}

}  // namespace nodelink::overlay

#include "overlay/commit_queue.h"

#include <utility>

namespace nodelink::overlay {

CommitQueue::CommitQueue(ChannelJournal& journal, std::function<void(absl::Status)> on_failure)
    : journal_(journal), on_failure_(std::move(on_failure)), thread_([this] { Run(); }) {}

CommitQueue::~CommitQueue() { Shutdown(); }

void CommitQueue::Shutdown() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void CommitQueue::Enqueue(JournalBatch changes, std::function<void()> then) {
  {
    std::lock_guard lock(mu_);
    if (failed_ || exited_) return;
    queue_.push_back(Item{std::move(changes), std::move(then)});
    ++enqueued_;
  }
  wake_.notify_one();
}

void CommitQueue::Flush() {
  std::unique_lock lock(mu_);
  uint64_t target = enqueued_;
  done_.wait(lock, [&] { return finished_ >= target || failed_ || exited_; });
}

CommitQueue::Stats CommitQueue::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void CommitQueue::Run() {
  std::unique_lock lock(mu_);
  while (true) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) {
      if (stopping_) {
        exited_ = true;
        done_.notify_all();
        return;
      }
      continue;
    }
    std::deque<Item> items;
    items.swap(queue_);
    lock.unlock();

    JournalBatch batch;
    for (Item& item : items) batch.Absorb(std::move(item.changes));
    absl::Status status = batch.empty() ? absl::OkStatus() : journal_.Commit(std::move(batch));
    if (!status.ok()) {
      lock.lock();
      failed_ = true;
      queue_.clear();
      lock.unlock();
      done_.notify_all();
      if (on_failure_) on_failure_(status);
      return;
    }
    for (Item& item : items) {
      if (item.then) item.then();
    }

    lock.lock();
    finished_ += items.size();
    stats_.transactions += 1;
    stats_.items += items.size();
    stats_.largest_batch = std::max<uint64_t>(stats_.largest_batch, items.size());
    done_.notify_all();
  }
}

}  // namespace nodelink::overlay

#include "transport/queue_committer.h"

#include <chrono>
#include <utility>
#include <variant>

#include "core/thread_name.h"
#include "spdlog/spdlog.h"

namespace nodelink::transport {

namespace {

// The CallerTurn living on this thread, if any.
thread_local QueueCommitter::CallerTurn* t_turn = nullptr;

// A caller's pass takes small appends and deletes only. A fetch (a reconnect's backlog: up to the
// recipient's in-flight bytes read and pushed), an expiry pass and a large body (written to a
// spool file) stay on the committer's thread: on nl-hub-cq they would hold every stream meanwhile.
// The hub pushes at once the envelopes up to this size (relay.cc).
constexpr size_t kCallerPassMaxBody = 64 << 10;

size_t HistogramBucket(size_t appends) {
  if (appends == 0) return 0;
  if (appends == 1) return 1;
  if (appends < 8) return 2;
  if (appends < 32) return 3;
  if (appends < 128) return 4;
  return 5;
}

}  // namespace

QueueCommitter::QueueCommitter(std::unique_ptr<QueueStore> store, CommitterOptions options)
    : store_(std::move(store)), options_(options), totals_(store_->Totals()) {
  thread_ = std::thread([this] {
    core::NameThisThread("nl-queue-commit");
    Run();
  });
}

QueueCommitter::~QueueCommitter() { Stop(); }

bool QueueCommitter::Post(Op op) {
  CallerTurn* turn = t_turn != nullptr && &t_turn->committer_ == this ? t_turn : nullptr;
  bool wake = turn == nullptr;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    if (std::holds_alternative<DeleteOp>(op)) {
      // A delete alone does not wake the thread (see the header), unless a batch of them waits.
      wake = ++posted_deletes_ >= options_.max_batch;
      if (wake) posted_deletes_ = 0;
    } else if (turn != nullptr) {
      ++turn->posted_;
    }
    ops_.push_back(std::move(op));
    if (wake) ++stats_.posts_waking_thread;
  }
  if (wake) cv_.notify_one();
  return true;
}

QueueCommitter::CallerTurn::CallerTurn(QueueCommitter& committer) : committer_(committer) {
  if (t_turn != nullptr) std::abort();  // one per thread
  t_turn = this;
}

QueueCommitter::CallerTurn::~CallerTurn() {
  t_turn = nullptr;
  if (pending()) HandToThread();
}

void QueueCommitter::CallerTurn::HandToThread() {
  posted_ = 0;
  committer_.cv_.notify_one();
}

void QueueCommitter::CallerTurn::RunHere() {
  posted_ = 0;
  committer_.RunCallersPass();
}

bool QueueCommitter::LightLocked() const {
  for (const Op& op : ops_) {
    if (const auto* a = std::get_if<AppendOp>(&op)) {
      if (a->request.body.size() > kCallerPassMaxBody) return false;
    } else if (!std::holds_alternative<DeleteOp>(op)) {
      return false;
    }
  }
  return true;
}

void QueueCommitter::RunCallersPass() {
  std::deque<Op> ops;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;  // the thread's last pass takes everything
    if (in_pass_) return;   // the thread's pass; it looks for more after it, unwoken
    if (!options_.caller_passes || !LightLocked()) {
      cv_.notify_one();  // the thread takes it (CallerTurn::HandToThread)
      return;
    }
    in_pass_ = true;
    ++stats_.caller_passes;
    ops.swap(ops_);
    posted_deletes_ = 0;
  }
  RunPass(ops, false);
  std::lock_guard lock(mu_);
  in_pass_ = false;
  // The thread may wait for this pass to end. Ops posted meanwhile by other threads woke it; those
  // the completions posted here (a fetch after an append) are the turn's to run next.
  if (thread_waits_turn_) cv_.notify_one();
}

bool QueueCommitter::Append(AppendRequest request, AppendDone done, AppendStaged staged) {
  return Post(AppendOp{std::move(request), std::move(done), std::move(staged)});
}
bool QueueCommitter::Delete(uint64_t id) { return Post(DeleteOp{id}); }
bool QueueCommitter::Fetch(std::string recipient, uint64_t after_id, size_t max_items,
                           uint64_t max_bytes, FetchDone done) {
  return Post(FetchOp{std::move(recipient), after_id, max_items, max_bytes, std::move(done)});
}
bool QueueCommitter::Expire(uint64_t now_ms, uint64_t dedup_window_ms, uint64_t notice_ttl_ms,
                            NoticeBodyBuilder notice_body, ExpireDone done) {
  return Post(
      ExpireOp{now_ms, dedup_window_ms, notice_ttl_ms, std::move(notice_body), std::move(done)});
}

void QueueCommitter::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopping_ = true;
    stopped_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  store_.reset();  // closes the database
}

CommitterStats QueueCommitter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool QueueCommitter::ThreadWaiting() const {
  std::lock_guard lock(mu_);
  return thread_waiting_;
}

QueueTotals QueueCommitter::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

void QueueCommitter::Run() {
  const auto interval = std::chrono::milliseconds(options_.maintain_interval_ms);
  auto next_tick = std::chrono::steady_clock::now() + interval;
  for (;;) {
    std::deque<Op> ops;
    bool stopping = false;
    bool tick = false;
    {
      std::unique_lock lock(mu_);
      // Deletes in ops_ do not end the wait: they were posted without a wake-up.
      thread_waiting_ = true;
      cv_.wait_until(lock, next_tick, [&] { return ops_.size() > posted_deletes_ || stopping_; });
      thread_waiting_ = false;
      thread_waits_turn_ = true;  // a CallerTurn's pass must end before this one starts
      cv_.wait(lock, [&] { return !in_pass_; });
      thread_waits_turn_ = false;
      if (const auto now = std::chrono::steady_clock::now(); now >= next_tick) {
        tick = true;
        next_tick = now + interval;
      }
      in_pass_ = true;
      ++stats_.thread_passes;
      ops.swap(ops_);
      posted_deletes_ = 0;
      stopping = stopping_;
    }
    RunPass(ops, stopping || tick);
    store_->Maintain();  // rate-limited inside the store; also under constant load
    std::lock_guard lock(mu_);
    in_pass_ = false;
    // Ops posted before Stop() were taken above; Post() drops everything after.
    if (stopping && ops_.empty()) break;
  }
}

void QueueCommitter::RunPass(std::deque<Op>& ops, bool commit_held) {
  std::vector<AppendOp> appends;
  std::vector<uint64_t> deletes;
  std::vector<FetchOp> fetches;
  std::vector<ExpireOp> expires;
  for (Op& op : ops) {
    if (auto* a = std::get_if<AppendOp>(&op)) {
      appends.push_back(std::move(*a));
    } else if (auto* d = std::get_if<DeleteOp>(&op)) {
      deletes.push_back(d->id);
    } else if (auto* f = std::get_if<FetchOp>(&op)) {
      fetches.push_back(std::move(*f));
    } else {
      expires.push_back(std::move(std::get<ExpireOp>(op)));
    }
  }
  // Deletes alone wait for a transaction to join (see the header); anything else takes them along.
  if (!deletes.empty() || !held_deletes_.empty()) {
    held_deletes_.insert(held_deletes_.end(), deletes.begin(), deletes.end());
    const bool hold = appends.empty() && fetches.empty() && expires.empty() && !commit_held &&
                      held_deletes_.size() < options_.max_batch;
    if (hold) return;
    deletes = std::exchange(held_deletes_, {});
  }
  // Writes first, so that a fetch sees every append and delete posted before it.
  CommitWrites(appends, deletes);
  for (FetchOp& f : fetches) {
    f.done(store_->Fetch(f.recipient, f.after_id, f.max_items, f.max_bytes));
  }
  for (ExpireOp& e : expires) {
    absl::StatusOr<ExpireResult> r =
        store_->Expire(e.now_ms, e.dedup_window_ms, e.notice_ttl_ms, e.notice_body);
    {
      std::lock_guard lock(mu_);
      totals_ = store_->Totals();
      if (!r.ok()) ++stats_.storage_errors;
    }
    e.done(std::move(r));
  }
}

void QueueCommitter::CommitWrites(std::vector<AppendOp>& appends, std::vector<uint64_t>& deletes) {
  size_t next = 0;
  bool deletes_done = deletes.empty();
  while (next < appends.size() || !deletes_done) {
    const size_t n = std::min(options_.max_batch, appends.size() - next);
    std::vector<AppendRequest> batch;
    batch.reserve(n);
    for (size_t i = 0; i < n; ++i) batch.push_back(std::move(appends[next + i].request));
    auto staged = [&appends, next](std::span<const AppendResult> results) {
      for (size_t i = 0; i < results.size(); ++i) {
        if (appends[next + i].staged) appends[next + i].staged(results[i]);
      }
    };
    std::span<const uint64_t> dels;
    if (!deletes_done) dels = deletes;
    absl::StatusOr<std::vector<AppendResult>> results =
        store_->Commit(batch, dels, options_.bounds, staged);
    {
      std::lock_guard lock(mu_);
      totals_ = store_->Totals();
      if (results.ok()) {
        ++stats_.commits;
        stats_.appends += n;
        stats_.deletes += dels.size();
        stats_.max_batch = std::max<uint64_t>(stats_.max_batch, n);
        ++stats_.batch_histogram[HistogramBucket(n)];
      } else {
        ++stats_.storage_errors;
      }
    }
    if (!results.ok()) {
      spdlog::error("hub queue: commit of {} envelopes and {} deletes failed: {}", n, dels.size(),
                    results.status().ToString());
      // Deletes alone free space (the disk may be full): they must not fail with the appends.
      if (n > 0 && !dels.empty() && store_->Commit({}, dels, options_.bounds).ok()) {
        std::lock_guard lock(mu_);
        totals_ = store_->Totals();
        stats_.deletes += dels.size();
      }
    }
    deletes_done = true;
    // A full disk refuses the batch like the headroom check refuses an append: kDiskFull, which
    // the sender can retry. Other failures stay errors (the relay ends the stream).
    const bool disk_full = absl::IsResourceExhausted(results.status());
    for (size_t i = 0; i < n; ++i) {
      AppendOp& op = appends[next + i];
      if (results.ok()) {
        op.done((*results)[i]);
      } else if (disk_full) {
        op.done(AppendResult{AppendOutcome::kDiskFull, 0});
      } else {
        op.done(results.status());
      }
    }
    next += n;
  }
}

}  // namespace nodelink::transport

#include "router/strand_executor.h"

#include <utility>

#include "core/status.h"
#include "core/thread_name.h"

namespace nodelink::router {
namespace {

// Tasks a worker runs from one strand before it lets other strands have a turn. Small enough for
// fairness between peers, large enough to save a wake-up per message on a busy strand.
constexpr int kTasksPerTurn = 8;

// The executor whose worker this thread is, and the wake-ups its running task put off (PostNext).
thread_local const StrandExecutor* tl_worker_of = nullptr;
thread_local size_t tl_wakes_owed = 0;

}  // namespace

StrandExecutor::StrandExecutor(size_t workers) : worker_count_(workers) {
  if (workers == 0) core::Die("StrandExecutor: needs at least one worker");
}

StrandExecutor::~StrandExecutor() { Stop(); }

void StrandExecutor::Start() {
  std::lock_guard lock(mu_);
  if (started_) core::Die("StrandExecutor::Start called twice");
  started_ = true;
  if (stopping_) return;
  threads_.reserve(worker_count_);
  for (size_t i = 0; i < worker_count_; ++i)
    threads_.emplace_back([this] {
      core::NameThisThread("nl-worker");
      RunWorker();
    });
}

bool StrandExecutor::Post(const std::string& key, Task task) {
  return PostImpl(key, task, Wake::kNow);
}

bool StrandExecutor::PostNext(const std::string& key, Task task) {
  return PostImpl(key, task, tl_worker_of == this ? Wake::kAfterCurrentTask : Wake::kNow);
}

bool StrandExecutor::PostNextIfIdle(const std::string& key, Task& task) {
  return PostImpl(key, task, tl_worker_of == this ? Wake::kAfterCurrentTask : Wake::kNow,
                  /*only_if_idle=*/true);
}

bool StrandExecutor::PostImpl(const std::string& key, Task& task, Wake wake, bool only_if_idle) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    std::unique_ptr<Strand>& strand = strands_[key];
    if (!strand) strand = std::make_unique<Strand>();
    if (only_if_idle && strand->scheduled) return false;
    strand->tasks.push_back(std::move(task));
    ++queued_;
    if (strand->scheduled) return true;
    strand->scheduled = true;
    ready_.push_back(strand.get());
  }
  if (wake == Wake::kAfterCurrentTask) {
    ++tl_wakes_owed;  // RunWorker settles it when the task returns
    return true;
  }
  ready_cv_.notify_one();
  return true;
}

void StrandExecutor::Stop() {
  if (tl_worker_of == this) core::Die("StrandExecutor::Stop called from a task");
  std::vector<std::thread> threads;
  std::vector<Task> dropped;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    threads.swap(threads_);
    for (auto& [key, strand] : strands_) {
      for (Task& task : strand->tasks) dropped.push_back(std::move(task));
      strand->tasks.clear();
    }
    queued_ = 0;
  }
  ready_cv_.notify_all();
  {
    std::unique_lock lock(mu_);
    claimed_done_cv_.wait(lock, [this] { return claimed_running_ == 0; });
  }
  for (std::thread& t : threads) t.join();
  dropped.clear();  // destroyed here, without the lock: a task's captures may run code
}

size_t StrandExecutor::QueuedTasks() const {
  std::lock_guard lock(mu_);
  return queued_;
}

size_t StrandExecutor::StrandCount() const {
  std::lock_guard lock(mu_);
  return strands_.size();
}

size_t StrandExecutor::IdleWorkers() const {
  std::lock_guard lock(mu_);
  return idle_workers_;
}

void StrandExecutor::DropIdleStrands() {
  std::lock_guard lock(mu_);
  for (auto it = strands_.begin(); it != strands_.end();) {
    const Strand& strand = *it->second;
    it = (!strand.scheduled && strand.tasks.empty()) ? strands_.erase(it) : std::next(it);
  }
}

void StrandExecutor::RunWorker() {
  tl_worker_of = this;
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_workers_;
    ready_cv_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
    --idle_workers_;
    if (stopping_) return;
    Strand* strand = ready_.front();
    ready_.pop_front();
    RunTurn(strand, lock);  // a strand it owes itself is the next in ready_, taken above
  }
}

bool StrandExecutor::RunTurn(Strand* strand, std::unique_lock<std::mutex>& lock) {
  // `strand` stays valid while scheduled: DropIdleStrands keeps scheduled strands.
  bool owes_itself = false;
  for (int turn = 0; turn < kTasksPerTurn && !strand->tasks.empty() && !stopping_; ++turn) {
    Task task = std::move(strand->tasks.front());
    strand->tasks.pop_front();
    --queued_;
    lock.unlock();
    task();
    task = nullptr;  // release captures before taking the lock again
    lock.lock();
    if (tl_wakes_owed > 0) {
      // Strands the task posted with PostNext: this thread takes one of them next if its turn
      // ends here; workers are woken for the rest.
      const bool turn_goes_on = turn + 1 < kTasksPerTurn && !strand->tasks.empty() && !stopping_;
      for (size_t i = turn_goes_on ? 0 : 1; i < tl_wakes_owed; ++i) ready_cv_.notify_one();
      owes_itself = !turn_goes_on;
      tl_wakes_owed = 0;
    }
  }
  RequeueOrIdleLocked(strand);
  return owes_itself && !stopping_;
}

void StrandExecutor::RequeueOrIdleLocked(Strand* strand) {
  if (!strand->tasks.empty() && !stopping_) {
    ready_.push_back(strand);
    ready_cv_.notify_one();
  } else {
    strand->scheduled = false;
  }
}

void StrandExecutor::EndClaimLocked() {
  if (--claimed_running_ == 0) claimed_done_cv_.notify_all();
}

StrandExecutor::Task StrandExecutor::ClaimIfIdle(const std::string& key, Task task) {
  Strand* claimed = nullptr;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return nullptr;  // dropped, as Post drops it
    std::unique_ptr<Strand>& strand = strands_[key];
    if (!strand) strand = std::make_unique<Strand>();
    if (started_ && tl_worker_of == nullptr && !strand->scheduled && queued_ == 0) {
      strand->tasks.push_back(std::move(task));
      ++queued_;
      strand->scheduled = true;
      ++claimed_running_;
      claimed = strand.get();
    }
  }
  if (claimed == nullptr) {
    PostImpl(key, task, Wake::kNow);
    return nullptr;
  }
  // Work dropped without running hands the strand to the workers (~Claim), so that neither the
  // sender's later tasks nor Stop() wait for it forever.
  struct Claim {
    Claim(StrandExecutor* e, Strand* s) : executor(e), strand(s) {}
    Claim(const Claim&) = delete;  // one owner: its destructor releases the claim
    Claim& operator=(const Claim&) = delete;
    ~Claim() {
      if (!ran) executor->ReleaseClaim(strand);
    }
    StrandExecutor* const executor;
    Strand* const strand;
    bool ran = false;
  };
  auto claim = std::make_shared<Claim>(this, claimed);
  return [claim] {
    if (std::exchange(claim->ran, true)) return;
    claim->executor->RunClaimed(claim->strand);
  };
}

void StrandExecutor::ReleaseClaim(Strand* strand) {
  std::lock_guard lock(mu_);
  RequeueOrIdleLocked(strand);  // its task goes to a worker
  EndClaimLocked();
}

void StrandExecutor::RunClaimed(Strand* strand) {
  // PostNext from its tasks defers the wake-up to the turn's end, as on a worker.
  tl_worker_of = this;
  std::unique_lock lock(mu_);
  // The claimed strand's turn, then at most one strand it owed itself (the message's dispatch):
  // the caller is a network reader, lent, so it does not go on to other work.
  if (RunTurn(strand, lock) && !ready_.empty()) {
    Strand* next = ready_.front();
    ready_.pop_front();
    if (RunTurn(next, lock)) ready_cv_.notify_one();  // the one after is a worker's
  }
  tl_worker_of = nullptr;
  EndClaimLocked();
}

}  // namespace nodelink::router

// A worker pool with one strand per key (the router keys by sender): the tasks of one strand run
// one at a time, in the order they were posted; different strands run in parallel on the workers
// (DESIGN.md step 5; IMPLEMENTATION-NOTES 7.1: a plain pool would let a peer's Sealed overtake the
// SetupReply ahead of it).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace nodelink::router {

class StrandExecutor {
 public:
  using Task = std::function<void()>;

  // `workers` threads (at least 1; aborts on 0). Threads start with Start().
  explicit StrandExecutor(size_t workers);
  // Stops and joins.
  ~StrandExecutor();

  StrandExecutor(const StrandExecutor&) = delete;
  StrandExecutor& operator=(const StrandExecutor&) = delete;

  // Starts the workers. Tasks posted before are kept and run once started. Call once.
  void Start();

  // Queues `task` on the strand of `key`. Never blocks on running tasks. Returns false (and drops
  // the task) once Stop() began. Thread-safe; may be called from inside a task.
  bool Post(const std::string& key, Task task);

  // Post for the end of a task: called from one of this executor's workers, it wakes no other
  // worker; the calling worker runs the strand itself once its current task returns, unless it
  // has more of its own strand's tasks to run (then it wakes another). So what is left of the
  // current task must be short. From any other thread, the same as Post. Saves a thread
  // hand-off (a wake-up and a context switch) when one step of a message leads to the next.
  bool PostNext(const std::string& key, Task task);

  // PostNext, only if `key`'s strand has nothing queued or running (the task then runs next,
  // behind nothing of its strand); otherwise returns false and leaves `task` as it was.
  bool PostNextIfIdle(const std::string& key, Task& task);

  // For a thread that is not a worker (the one that read the task's message from the network):
  // when `key`'s strand is idle and no task is queued anywhere, claims the strand and returns
  // work that runs `task` on the caller's thread as a worker would, and then what the task posted
  // with PostNext for its turn to continue (a message's dispatch after its open). Otherwise posts
  // `task` as Post does and returns null. The caller is to run the returned work once (again: a
  // no-op); destroyed without running, it hands the strand to the workers instead.
  // Saves a hand-off to a worker: a wake-up on the message's path.
  Task ClaimIfIdle(const std::string& key, Task task);

  // Stops taking tasks, drops the queued ones (outside the lock), waits for running tasks
  // (claimed ones too) to return and joins the workers. Idempotent. Must not be called from a
  // task (aborts).
  void Stop();

  // Tasks queued and not started, over all strands. Thread-safe.
  size_t QueuedTasks() const;
  // Strands currently known (idle strands are dropped by DropIdleStrands()). Thread-safe.
  size_t StrandCount() const;
  // Workers asleep waiting for a task. Thread-safe. Lets a test know no worker is about to take
  // a strand on its own, which PostNext's hand-over depends on.
  size_t IdleWorkers() const;
  // Forgets strands that have no queued task and are not running, so that a federation of many
  // peers that each sent once does not keep one record per peer forever. Thread-safe.
  void DropIdleStrands();

 private:
  struct Strand {
    std::deque<Task> tasks;
    bool scheduled = false;  // in ready_ or being run by a worker
  };

  enum class Wake { kNow, kAfterCurrentTask };
  // Moves from `task` only when it is queued.
  bool PostImpl(const std::string& key, Task& task, Wake wake, bool only_if_idle = false);
  void RunWorker();
  // Runs up to kTasksPerTurn of `strand`'s tasks, then requeues or idles it. Returns true when
  // this thread owes itself the next ready strand (a task posted it with PostNext).
  bool RunTurn(Strand* strand, std::unique_lock<std::mutex>& lock);
  // After a turn: back in ready_ (a worker woken) if tasks are left, else idle.
  void RequeueOrIdleLocked(Strand* strand);
  void RunClaimed(Strand* strand);
  void ReleaseClaim(Strand* strand);  // claimed work destroyed without running
  void EndClaimLocked();              // a claim is over: Stop may go on

  const size_t worker_count_;
  mutable std::mutex mu_;
  std::condition_variable ready_cv_;
  std::unordered_map<std::string, std::unique_ptr<Strand>> strands_;
  std::deque<Strand*> ready_;
  size_t queued_ = 0;
  size_t idle_workers_ = 0;
  size_t claimed_running_ = 0;  // ClaimIfIdle work in progress
  std::condition_variable claimed_done_cv_;
  bool started_ = false;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace nodelink::router

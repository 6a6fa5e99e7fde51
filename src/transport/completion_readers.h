// Two threads that take turns reading one grpc::CompletionQueue, so that the thread which read a
// push can run its handling itself instead of waking another thread for it.
//
// One thread polls the queue; the other stands by, asleep. From inside `handle`, the polling
// thread may lend itself to work (Lend). If that work is still running `takeover_after` later, a
// kernel timer wakes the standby thread, which takes over polling; the lent thread stands by once
// its work returns. So a short piece of work costs no thread hand-off at all, and a long or
// blocking one stalls the queue for takeover_after and the standby's wake-up. Arming and
// disarming the timer are one system call each; an idle process never wakes.
//
// Why: each hand-off to a worker thread was a wake-up on the message's path, and a write from the
// worker then woke the polling thread for its completion as well (bench/RESULTS.md, twenty-second
// session).
#pragma once

#include <grpcpp/completion_queue.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"

namespace nodelink::transport {

class CompletionReaders {
 public:
  using Handler = std::function<void(void* tag, bool ok)>;

  // `handle` runs for every completion, on whichever thread polls at the time (never two at once
  // from the polling side; lent work may run beside it).
  CompletionReaders(grpc::CompletionQueue& cq, Handler handle,
                    std::chrono::microseconds takeover_after);
  // Shuts the queue down (a no-op if its owner did; gRPC's Shutdown may be repeated), then Join().
  ~CompletionReaders();

  CompletionReaders(const CompletionReaders&) = delete;
  CompletionReaders& operator=(const CompletionReaders&) = delete;

  // Starts both threads, named `thread_name`. Errors: the timer or the wake-up descriptor could
  // not be created (out of file descriptors).
  absl::Status Start(const std::string& thread_name);

  // From `handle`: whether the other thread stands by, ready to take over if this one is lent.
  // False while the other thread is still running work it was lent before a takeover: two lent
  // threads would leave nobody to poll.
  bool CanLend() const;

  // Runs `work` on the calling thread. Called from `handle` on the polling thread, the standby
  // thread takes over polling if `work` lasts longer than takeover_after. From any other thread,
  // or while the other thread is lent, just runs it.
  void Lend(const std::function<void()>& work);

  // Returns once both threads have ended: call after the queue's Shutdown(). Dies when called
  // from one of the two threads (it would wait for itself).
  void Join();

  // Times the standby thread took over from a lent one.
  uint64_t takeovers() const;

 private:
  void Run();
  // Blocks until this thread is the poller (true) or the queue has ended (false).
  bool AwaitTurn(std::thread::id me);
  void ArmTimer(std::chrono::microseconds after);

  grpc::CompletionQueue& cq_;
  const Handler handle_;
  const std::chrono::microseconds takeover_after_;
  int timer_fd_ = -1;
  int wake_fd_ = -1;
  std::thread threads_[2];

  mutable std::mutex mu_;
  std::optional<std::thread::id> poller_;  // the thread that polls (or is lent)
  bool lent_ = false;                      // the poller is running lent work
  int standing_by_ = 0;                    // threads in AwaitTurn (0 or 1)
  std::chrono::steady_clock::time_point lent_since_;
  bool ended_ = false;  // the queue returned its last completion
  uint64_t takeovers_ = 0;
};

}  // namespace nodelink::transport

// A background thread that calls a function at a fixed interval until stopped. Production code
// uses it to drive the Sweep() methods of the router and of EventWaitExchange; tests leave it off
// and call Sweep() themselves after advancing a core::ManualClock (no sleeping for timeouts).
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace nodelink::router {

class PeriodicTimer {
 public:
  // Starts a thread that calls `tick` every `interval` (measured on the steady clock, after the
  // previous tick returned). `interval` must be positive (aborts otherwise).
  PeriodicTimer(std::chrono::milliseconds interval, std::function<void()> tick);
  // Stops and joins.
  ~PeriodicTimer();

  PeriodicTimer(const PeriodicTimer&) = delete;
  PeriodicTimer& operator=(const PeriodicTimer&) = delete;

  // Waits for a tick in progress to return, then ends the thread. Idempotent. Must not be called
  // from inside `tick` (it would join itself: aborts). Thread-safe.
  void Stop();

 private:
  void Run();

  const std::chrono::milliseconds interval_;
  const std::function<void()> tick_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace nodelink::router

#include "router/periodic_timer.h"

#include <utility>

#include "core/status.h"
#include "core/thread_name.h"

namespace nodelink::router {

PeriodicTimer::PeriodicTimer(std::chrono::milliseconds interval, std::function<void()> tick)
    : interval_(interval), tick_(std::move(tick)) {
  if (interval_.count() <= 0) core::Die("PeriodicTimer: the interval must be positive");
  thread_ = std::thread([this] {
    core::NameThisThread("nl-timer");
    Run();
  });
}

PeriodicTimer::~PeriodicTimer() { Stop(); }

void PeriodicTimer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id()) {
      core::Die("PeriodicTimer::Stop called from its own tick");
    }
    thread_.join();
  }
}

void PeriodicTimer::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // A real-time wait: this is the production timer, never used by tests to wait for timeouts.
    if (wake_.wait_for(lock, interval_, [this] { return stopping_; })) break;
    lock.unlock();
    tick_();
    lock.lock();
  }
}

}  // namespace nodelink::router

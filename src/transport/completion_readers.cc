#include "transport/completion_readers.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/status.h"
#include "core/thread_name.h"

namespace nodelink::transport {

CompletionReaders::CompletionReaders(grpc::CompletionQueue& cq, Handler handle,
                                     std::chrono::microseconds takeover_after)
    : cq_(cq), handle_(std::move(handle)), takeover_after_(takeover_after) {}

CompletionReaders::~CompletionReaders() {
  cq_.Shutdown();  // a no-op after the owner's; else (its start failed half-way) ends the threads
  Join();
  if (timer_fd_ >= 0) close(timer_fd_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status CompletionReaders::Start(const std::string& thread_name) {
  timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (timer_fd_ < 0 || wake_fd_ < 0) {
    return absl::ResourceExhaustedError(
        std::string("cannot create the hub client's timer or wake-up descriptor: ") +
        std::strerror(errno) + "; raise the open-file limit");
  }
  for (std::thread& t : threads_) {
    t = std::thread([this, thread_name] {
      core::NameThisThread(thread_name.c_str());
      Run();
    });
  }
  return absl::OkStatus();
}

void CompletionReaders::Join() {
  for (std::thread& t : threads_) {
    if (t.get_id() == std::this_thread::get_id()) {
      core::Die("CompletionReaders::Join called from one of its threads (a Stop from a handler?)");
    }
    if (t.joinable()) t.join();
  }
}

uint64_t CompletionReaders::takeovers() const {
  std::lock_guard lock(mu_);
  return takeovers_;
}

void CompletionReaders::Run() {
  const std::thread::id me = std::this_thread::get_id();
  while (AwaitTurn(me)) {
    for (;;) {
      void* tag = nullptr;
      bool ok = false;
      if (!cq_.Next(&tag, &ok)) {
        {
          std::lock_guard lock(mu_);
          ended_ = true;
        }
        const uint64_t one = 1;
        [[maybe_unused]] const ssize_t n = write(wake_fd_, &one, sizeof one);
        return;
      }
      handle_(tag, ok);
      std::lock_guard lock(mu_);
      if (poller_ != me) break;  // taken over while lent: stand by
    }
  }
}

bool CompletionReaders::AwaitTurn(std::thread::id me) {
  std::unique_lock lock(mu_);
  ++standing_by_;
  for (;;) {
    if (ended_) break;
    if (!poller_.has_value()) {
      poller_ = me;  // the first thread to start
      break;
    }
    int timeout_ms = -1;
    if (lent_) {
      const auto lent_for = std::chrono::steady_clock::now() - lent_since_;
      if (lent_for >= takeover_after_) {
        poller_ = me;
        lent_ = false;
        ++takeovers_;
        break;
      }
      // The lend's timer wakes this thread; the timeout only guards against a missed expiry.
      timeout_ms = static_cast<int>(
          std::chrono::ceil<std::chrono::milliseconds>(takeover_after_ - lent_for).count());
    }
    lock.unlock();
    // Woken by the timer a lent thread armed, or by the queue's end. A timer that fired for a lend
    // which has since returned only makes this loop check again.
    pollfd fds[2] = {{timer_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    poll(fds, 2, timeout_ms);
    uint64_t expirations = 0;  // the queue's end stays readable, for the other thread too
    [[maybe_unused]] const ssize_t n = read(timer_fd_, &expirations, sizeof expirations);
    lock.lock();
  }
  --standing_by_;
  return !ended_;
}

bool CompletionReaders::CanLend() const {
  std::lock_guard lock(mu_);
  return poller_ == std::this_thread::get_id() && !lent_ && standing_by_ > 0;
}

void CompletionReaders::ArmTimer(std::chrono::microseconds after) {
  itimerspec spec{};
  spec.it_value.tv_sec = static_cast<time_t>(after.count() / 1'000'000);
  spec.it_value.tv_nsec = static_cast<long>(after.count() % 1'000'000) * 1000;
  timerfd_settime(timer_fd_, 0, &spec, nullptr);  // all zero: disarmed
}

void CompletionReaders::Lend(const std::function<void()>& work) {
  const std::thread::id me = std::this_thread::get_id();
  bool lent = false;
  {
    std::lock_guard lock(mu_);
    if (poller_ == me && !lent_ && standing_by_ > 0) {
      lent_ = true;
      lent_since_ = std::chrono::steady_clock::now();
      lent = true;
    }
  }
  if (!lent) return work();
  ArmTimer(takeover_after_);
  work();
  ArmTimer(std::chrono::microseconds(0));
  std::lock_guard lock(mu_);
  if (poller_ == me) lent_ = false;  // else the other thread took over and cleared it
}

}  // namespace nodelink::transport

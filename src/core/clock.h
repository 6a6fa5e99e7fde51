// Injectable wall clock. Every component that reads the time takes a Clock&, so tests drive
// timeouts, replay windows and expiry with a ManualClock instead of sleeping.
#pragma once

#include <atomic>
#include <cstdint>

namespace nodelink::core {

class Clock {
 public:
  virtual ~Clock() = default;
  // Unix time in milliseconds. Thread-safe.
  virtual uint64_t NowMs() const = 0;
};

class SystemClock final : public Clock {
 public:
  uint64_t NowMs() const override;
  // A process-wide instance (stateless).
  static SystemClock& Get();
};

// A clock that moves only when told. Thread-safe.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(uint64_t start_ms = 1'700'000'000'000) : now_ms_(start_ms) {}
  uint64_t NowMs() const override { return now_ms_.load(); }
  void Set(uint64_t now_ms) { now_ms_.store(now_ms); }
  void Advance(uint64_t ms) { now_ms_.fetch_add(ms); }

 private:
  std::atomic<uint64_t> now_ms_;
};

}  // namespace nodelink::core

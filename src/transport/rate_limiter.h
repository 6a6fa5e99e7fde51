// Per-sender token buckets for PROTOCOL 4's rate limit (`Rejected{RATE_LIMITED}`). Reads an
// injected clock, so tests drive it without sleeping. No gRPC type appears here.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/clock.h"

namespace nodelink::transport {

struct RateLimit {
  double envelopes_per_second = 0;  // 0 = unlimited
  double burst = 0;                 // bucket size; 0 = one second's worth (at least 1)
};

class SenderRateLimiter {
 public:
  SenderRateLimiter(RateLimit limit, const core::Clock& clock);

  // Takes one token from `sender`'s bucket; false when it is empty. Thread-safe.
  [[nodiscard]] bool Allow(std::string_view sender);

 private:
  struct Bucket {
    double tokens = 0;
    uint64_t last_ms = 0;
  };
  const RateLimit limit_;
  const double capacity_;
  const core::Clock& clock_;
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace nodelink::transport

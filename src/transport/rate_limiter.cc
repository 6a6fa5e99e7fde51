#include "transport/rate_limiter.h"

#include <algorithm>

namespace nodelink::transport {

SenderRateLimiter::SenderRateLimiter(RateLimit limit, const core::Clock& clock)
    : limit_(limit),
      capacity_(limit.burst > 0 ? limit.burst : std::max(1.0, limit.envelopes_per_second)),
      clock_(clock) {}

bool SenderRateLimiter::Allow(std::string_view sender) {
  if (limit_.envelopes_per_second <= 0) return true;
  const uint64_t now = clock_.NowMs();
  std::lock_guard lock(mu_);
  auto [it, inserted] = buckets_.try_emplace(std::string(sender));
  Bucket& b = it->second;
  if (inserted) {
    b.tokens = capacity_;
  } else if (now > b.last_ms) {
    b.tokens = std::min(capacity_, b.tokens + static_cast<double>(now - b.last_ms) / 1000.0 *
                                                  limit_.envelopes_per_second);
  }
  b.last_ms = std::max(b.last_ms, now);
  if (b.tokens < 1.0) return false;
  b.tokens -= 1.0;
  return true;
}

}  // namespace nodelink::transport

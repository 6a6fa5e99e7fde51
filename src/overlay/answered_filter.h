// Which (peer, request_id) pairs may have a row in the answered log (PROTOCOL.md section 6, last
// paragraph), so that the lookup the router makes before each request's handler skips the store
// for a request this node never answered, which is nearly every request: that lookup was 4.7 % of
// a responder's CPU at one request in flight (bench/RESULTS.md, twenty-third session).
//
// A Bloom filter in two generations, over a keyed SipHash of the pair (the key is random per
// process, so a peer cannot pick request ids that collide). "No" is exact: every key added stays
// until kKeepAfterExpiryMs after its `expires_ms`, because a generation is dropped only that long
// after the last expiry added to it (the margin covers a lookup whose `now` was read just before
// a rotation, and a clock that steps back). "Maybe" costs the store lookup it would have cost
// anyway. Memory is fixed (2 x kBytesPerGeneration); with ~1 M answers in each generation (one
// retention, 80 minutes by default) about 5 % of lookups are false "maybe"s by the Bloom
// formula (1 - e^(-kn/m))^k per generation, more as the rate
// grows, never wrong. Thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string_view>
#include <vector>

namespace nodelink::overlay {

class AnsweredFilter {
 public:
  static constexpr size_t kBytesPerGeneration = 1 << 20;
  static constexpr uint64_t kKeepAfterExpiryMs = 10 * 60 * 1000;

  AnsweredFilter();

  void Add(std::string_view peer, std::string_view request_id, uint64_t expires_ms);
  // False only if (peer, request_id) was never added, or expired kKeepAfterExpiryMs before a
  // Rotate.
  bool MayContain(std::string_view peer, std::string_view request_id) const;
  // Drops the older generation once everything added to it has expired (with the margin), and
  // starts a new one. Periodic (ChannelManager::Maintain).
  void Rotate(uint64_t now_ms);

 private:
  struct Generation {
    std::vector<uint64_t> bits;
    uint64_t last_expiry_ms = 0;
  };
  uint64_t Hash(std::string_view peer, std::string_view request_id) const;

  std::array<uint8_t, 16> key_;
  mutable std::mutex mu_;
  Generation current_, previous_;
};

}  // namespace nodelink::overlay

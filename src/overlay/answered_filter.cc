#include "overlay/answered_filter.h"

#include <sodium.h>

#include <algorithm>
#include <string>
#include <utility>

#include "core/random.h"

namespace nodelink::overlay {

namespace {

constexpr uint64_t kBits = AnsweredFilter::kBytesPerGeneration * 8;  // a power of two
constexpr int kProbes = 4;  // near the best for the ~1 M keys per generation sized for

static_assert(crypto_shorthash_KEYBYTES == 16 && crypto_shorthash_BYTES == 8);

// Bit `i` of probe `k` for hash `h` (double hashing: h1 + k * h2, h2 odd).
uint64_t Probe(uint64_t h, int k) {
  const uint64_t h1 = h & 0xffffffffu;
  const uint64_t h2 = (h >> 32) | 1;
  return (h1 + static_cast<uint64_t>(k) * h2) & (kBits - 1);
}

bool Test(const std::vector<uint64_t>& bits, uint64_t h) {
  if (bits.empty()) return false;
  for (int k = 0; k < kProbes; ++k) {
    const uint64_t i = Probe(h, k);
    if ((bits[i / 64] >> (i % 64) & 1) == 0) return false;
  }
  return true;
}

}  // namespace

AnsweredFilter::AnsweredFilter() { core::RandomFill(key_); }

uint64_t AnsweredFilter::Hash(std::string_view peer, std::string_view request_id) const {
  // The peer's length first: ("ab", "c") and ("a", "bc") are different keys.
  std::string input(8, '\0');
  const uint64_t n = peer.size();
  for (int i = 0; i < 8; ++i) input[i] = static_cast<char>(n >> (8 * i));
  input.append(peer);
  input.append(request_id);
  uint8_t out[crypto_shorthash_BYTES];
  crypto_shorthash(out, reinterpret_cast<const unsigned char*>(input.data()), input.size(),
                   key_.data());
  uint64_t h = 0;
  for (int i = 0; i < 8; ++i) h |= static_cast<uint64_t>(out[i]) << (8 * i);
  return h;
}

void AnsweredFilter::Add(std::string_view peer, std::string_view request_id, uint64_t expires_ms) {
  const uint64_t h = Hash(peer, request_id);
  std::lock_guard lock(mu_);
  if (current_.bits.empty()) current_.bits.assign(kBits / 64, 0);
  for (int k = 0; k < kProbes; ++k) {
    const uint64_t i = Probe(h, k);
    current_.bits[i / 64] |= uint64_t{1} << (i % 64);
  }
  current_.last_expiry_ms = std::max(current_.last_expiry_ms, expires_ms);
}

bool AnsweredFilter::MayContain(std::string_view peer, std::string_view request_id) const {
  const uint64_t h = Hash(peer, request_id);
  std::lock_guard lock(mu_);
  return Test(current_.bits, h) || Test(previous_.bits, h);
}

void AnsweredFilter::Rotate(uint64_t now_ms) {
  std::lock_guard lock(mu_);
  // Some of it may still be asked for.
  if (!previous_.bits.empty() && previous_.last_expiry_ms + kKeepAfterExpiryMs >= now_ms) return;
  previous_ = std::exchange(current_, Generation{});
}

}  // namespace nodelink::overlay

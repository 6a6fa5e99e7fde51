// Fault injection for reliability tests (issue 9): with `nodelink-hub --inject-faults SPEC` the
// relay misbehaves on purpose, as a hostile or broken hub could, so that end-to-end tests show
// what survives. Never on by default; the hub logs a warning at start and counts every fault it
// injects (nodelink_hub_faults_injected_total{kind}).
//
// Faults apply to sealed messages only, as they are pushed to their recipient. Channel setups and
// ChannelUnknown pass untouched, so that a test measures what happens to messages on a channel
// (forged or altered setups are covered row by row by the channel manager's tests).
//   drop       deleted from the queue without being pushed (accepted, then lost)
//   duplicate  pushed twice
//   reorder    held back until the next push to that recipient (or delay_ms, whichever first)
//   delay      held back for delay_ms
//   corrupt    one bit of the ciphertext flipped
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "nodelink/v1/hub.pb.h"

namespace nodelink::transport {

enum class Fault : uint8_t { kNone, kDrop, kDuplicate, kReorder, kDelay, kCorrupt };
inline constexpr size_t kFaultKinds = 6;
const char* FaultName(Fault fault);

// Probabilities per pushed sealed message; their sum is at most 1.
struct FaultOptions {
  double drop = 0, duplicate = 0, reorder = 0, delay = 0, corrupt = 0;
  uint64_t delay_ms = 100;
  uint64_t seed = 1;  // the same seed and the same pushes give the same faults
  bool any() const { return drop + duplicate + reorder + delay + corrupt > 0; }
};

// "drop=0.01,duplicate=0.02,reorder=0.05,delay=0.01,delay-ms=50,corrupt=0.01,seed=7"; every key
// optional. Errors name the bad item.
absl::StatusOr<FaultOptions> ParseFaultSpec(std::string_view spec);
std::string DescribeFaults(const FaultOptions& options);

// Not thread-safe: the relay calls it under its mutex.
class FaultInjector {
 public:
  explicit FaultInjector(FaultOptions options);
  // What happens to this envelope on its way to its recipient.
  Fault Choose(const v1::Envelope& envelope);
  // Flips one bit of the sealed ciphertext.
  void Corrupt(v1::Envelope& envelope);
  const FaultOptions& options() const { return options_; }

 private:
  FaultOptions options_;
  std::mt19937_64 rng_;
};

}  // namespace nodelink::transport

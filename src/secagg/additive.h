// One party's side of ADDITIVE_SHARING (PROTOCOL.md section 8): n-1 shares drawn once from the
// CSPRNG, a kept share so that all shares of the secret sum to it mod 2^k, the shares received
// from the others, and the sum it reports only once it holds them all.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "secagg/ring.h"

namespace nodelink::secagg {

class AdditiveParty {
 public:
  // `parties` ascending, including `self`. InvalidArgument if `self` is missing.
  static absl::StatusOr<AdditiveParty> Create(const RingVector& secret,
                                              const std::vector<std::string>& parties,
                                              std::string_view self);

  // The share drawn for `party` (the same on every request); NotFound for a non-party or self.
  absl::StatusOr<RingVector> ShareFor(std::string_view party) const;
  // Records the share `from` drew for this party. A second, different share from the same party
  // is refused (FailedPrecondition): the first one counts.
  absl::Status Receive(std::string_view from, const RingVector& share);

  bool Complete() const { return received_.size() + 1 == parties_.size(); }
  std::vector<std::string> Missing() const;
  // kept + every received share: FailedPrecondition naming the missing parties until Complete()
  // (never a partial sum).
  absl::StatusOr<RingVector> HeldSum() const;

 private:
  AdditiveParty(std::vector<std::string> parties, std::string self, RingVector kept)
      : parties_(std::move(parties)), self_(std::move(self)), kept_(std::move(kept)) {}

  std::vector<std::string> parties_;
  std::string self_;
  RingVector kept_;
  std::map<std::string, RingVector, std::less<>> drawn_;     // for each other party
  std::map<std::string, RingVector, std::less<>> received_;  // from each other party
};

}  // namespace nodelink::secagg

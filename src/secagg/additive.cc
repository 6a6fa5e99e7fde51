#include "secagg/additive.h"

#include <algorithm>

#include "core/status.h"

namespace nodelink::secagg {

absl::StatusOr<AdditiveParty> AdditiveParty::Create(const RingVector& secret,
                                                    const std::vector<std::string>& parties,
                                                    std::string_view self) {
  if (std::find(parties.begin(), parties.end(), self) == parties.end()) {
    return absl::InvalidArgumentError("this node is not among the parties");
  }
  AdditiveParty p(parties, std::string(self), secret);
  for (const std::string& party : parties) {
    if (party == self) continue;
    RingVector share = RingVector::Random(secret.modulus_bits(), secret.size());
    p.kept_.SubtractInPlace(share);  // kept = secret - sum of drawn shares
    p.drawn_.emplace(party, std::move(share));
  }
  return p;
}

absl::StatusOr<RingVector> AdditiveParty::ShareFor(std::string_view party) const {
  auto it = drawn_.find(party);
  if (it == drawn_.end()) return absl::NotFoundError(std::string(party) + " is not a co-party");
  return it->second;
}

absl::Status AdditiveParty::Receive(std::string_view from, const RingVector& share) {
  if (from == self_ || std::find(parties_.begin(), parties_.end(), from) == parties_.end()) {
    return absl::NotFoundError(std::string(from) + " is not a co-party");
  }
  if (share.modulus_bits() != kept_.modulus_bits() || share.size() != kept_.size()) {
    return absl::InvalidArgumentError("share from " + std::string(from) + " has the wrong shape");
  }
  auto it = received_.find(from);
  if (it != received_.end()) {
    if (it->second == share) return absl::OkStatus();
    return absl::FailedPreconditionError("a different share from " + std::string(from) +
                                         " was already received");
  }
  received_.emplace(std::string(from), share);
  return absl::OkStatus();
}

std::vector<std::string> AdditiveParty::Missing() const {
  std::vector<std::string> missing;
  for (const std::string& party : parties_) {
    if (party != self_ && received_.count(party) == 0) missing.push_back(party);
  }
  return missing;
}

absl::StatusOr<RingVector> AdditiveParty::HeldSum() const {
  if (!Complete()) {
    std::string names;
    for (const std::string& m : Missing()) names += (names.empty() ? "" : ", ") + m;
    return absl::FailedPreconditionError("shares missing from " + names);
  }
  RingVector sum = kept_;
  for (const auto& [party, share] : received_) sum.AddInPlace(share);
  return sum;
}

}  // namespace nodelink::secagg

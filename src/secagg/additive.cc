#include "secagg/additive.h"

#include <algorithm>

#include "core/encoding.h"
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

// lp(self) u32be(k) u32be(n_elements) u32be(n_parties) lp(party)... lp(kept)
// then per other party: lp(name) lp(drawn) u32be(has_received) [lp(received)]
Bytes AdditiveParty::Serialize() const {
  Bytes out;
  core::AppendLp(out, self_);
  core::AppendU32Be(out, kept_.modulus_bits());
  core::AppendU32Be(out, static_cast<uint32_t>(kept_.size()));
  core::AppendU32Be(out, static_cast<uint32_t>(parties_.size()));
  for (const std::string& p : parties_) core::AppendLp(out, p);
  core::AppendLp(out, kept_.bytes());
  for (const auto& [party, share] : drawn_) {
    core::AppendLp(out, party);
    core::AppendLp(out, share.bytes());
    auto it = received_.find(party);
    core::AppendU32Be(out, it != received_.end() ? 1 : 0);
    if (it != received_.end()) core::AppendLp(out, it->second.bytes());
  }
  return out;
}

absl::StatusOr<AdditiveParty> AdditiveParty::Deserialize(ByteView bytes) {
  auto bad = [] { return absl::DataLossError("stored additive-sharing state is unreadable"); };
  core::ByteReader r(bytes);
  ByteView self, kept;
  uint32_t bits = 0, count = 0, n = 0;
  if (!r.ReadLp(self) || !r.ReadU32Be(bits) || !r.ReadU32Be(count) || !r.ReadU32Be(n)) {
    return bad();
  }
  if (!IsValidModulusBits(bits) || n > 100000) return bad();
  std::vector<std::string> parties;
  for (uint32_t i = 0; i < n; ++i) {
    ByteView p;
    if (!r.ReadLp(p)) return bad();
    parties.push_back(ToString(p));
  }
  if (!r.ReadLp(kept)) return bad();
  auto kept_vector = RingVector::FromBytes(bits, count, kept);
  if (!kept_vector.ok()) return bad();
  AdditiveParty party(std::move(parties), ToString(self), std::move(*kept_vector));
  while (!r.AtEnd()) {
    ByteView name, drawn, received;
    uint32_t has_received = 0;
    if (!r.ReadLp(name) || !r.ReadLp(drawn) || !r.ReadU32Be(has_received)) return bad();
    auto drawn_vector = RingVector::FromBytes(bits, count, drawn);
    if (!drawn_vector.ok()) return bad();
    party.drawn_.emplace(ToString(name), std::move(*drawn_vector));
    if (has_received != 0) {
      if (!r.ReadLp(received)) return bad();
      auto received_vector = RingVector::FromBytes(bits, count, received);
      if (!received_vector.ok()) return bad();
      party.received_.emplace(ToString(name), std::move(*received_vector));
    }
  }
  return party;
}

}  // namespace nodelink::secagg

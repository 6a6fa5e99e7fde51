#include <doctest/doctest.h>

#include <map>
#include <random>

#include "secagg/additive.h"

namespace nodelink::secagg {
namespace {

// Runs the pull model among `n` in-memory parties and returns the researcher's total.
RingVector SimulateSum(uint32_t bits, const std::vector<RingVector>& secrets,
                       std::vector<std::string> parties) {
  std::map<std::string, AdditiveParty> state;
  for (size_t i = 0; i < parties.size(); ++i) {
    state.emplace(parties[i], AdditiveParty::Create(secrets[i], parties, parties[i]).value());
  }
  for (const auto& me : parties) {
    for (const auto& other : parties) {
      if (me == other) continue;
      REQUIRE(state.at(me).Receive(other, state.at(other).ShareFor(me).value()).ok());
    }
  }
  RingVector total(bits, secrets[0].size());
  for (const auto& p : parties) {
    RingVector held = state.at(p).HeldSum().value();
    // No reply equals the party's secret (shares are uniform; a collision would be 2^-k).
    CHECK_FALSE(held == secrets[&p - &parties[0]]);
    total.AddInPlace(held);
  }
  return total;
}

TEST_CASE("shares of k=64 vectors of 1,000 elements sum to the sum of the secrets") {
  std::vector<std::string> parties = {"a", "b", "c", "d", "e"};
  std::mt19937_64 rng(7);
  std::vector<RingVector> secrets;
  RingVector expected(64, 1000);
  for (size_t p = 0; p < parties.size(); ++p) {
    std::vector<std::string> values;
    for (int i = 0; i < 1000; ++i) values.push_back(std::to_string(rng() % 1000000));
    secrets.push_back(RingVector::FromDecimal(64, values).value());
    expected.AddInPlace(secrets.back());
  }
  CHECK(SimulateSum(64, secrets, parties) == expected);
}

TEST_CASE("k=2048 keys-sized elements sum correctly") {
  std::vector<std::string> parties = {"p1", "p2", "p3"};
  std::vector<RingVector> secrets;
  RingVector expected(2048, 2);
  for (int p = 0; p < 3; ++p) {
    secrets.push_back(RingVector::Random(2048, 2));
    expected.AddInPlace(secrets.back());
  }
  CHECK(SimulateSum(2048, secrets, parties) == expected);
}

TEST_CASE("no partial sums; the same share on every request; conflicting shares refused") {
  auto secret = RingVector::FromDecimal(16, {"42"}).value();
  std::vector<std::string> parties = {"a", "b", "c"};
  auto a = AdditiveParty::Create(secret, parties, "a").value();
  CHECK(a.ShareFor("b").value() == a.ShareFor("b").value());
  CHECK_FALSE(a.ShareFor("a").ok());
  CHECK_FALSE(a.ShareFor("z").ok());
  CHECK_FALSE(a.HeldSum().ok());
  auto share = RingVector::FromDecimal(16, {"5"}).value();
  REQUIRE(a.Receive("b", share).ok());
  CHECK(a.Receive("b", share).ok());  // the same again is fine
  CHECK_FALSE(a.Receive("b", RingVector::FromDecimal(16, {"6"}).value()).ok());
  CHECK(a.Missing() == std::vector<std::string>{"c"});
  auto partial = a.HeldSum();
  CHECK_FALSE(partial.ok());
  CHECK(std::string(partial.status().message()).find("c") != std::string::npos);
  CHECK_FALSE(a.Receive("z", share).ok());
  CHECK_FALSE(a.Receive("c", RingVector::FromDecimal(8, {"1"}).value()).ok());  // wrong shape
}

}  // namespace
}  // namespace nodelink::secagg

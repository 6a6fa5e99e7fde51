// Secure aggregation end to end (PROTOCOL.md section 8): in-process Nodes with real key stores,
// through a real nodelink-hub over mutual TLS on loopback.
#include <doctest/doctest.h>

#include <random>

#include "core/encoding.h"
#include "keys/context_store.h"
#include "node/node_testing.h"
#include "nodelink/errors.hpp"
#include "secagg/params.h"
#include "secagg/ring.h"
#include "test_federation.h"

namespace nodelink::testing {
namespace {

using secagg::RingVector;

// Inputs handed to each party, by node id.
struct Inputs {
  std::mutex mu;
  std::map<std::string, std::vector<std::string>> values;
  SecaggInputProvider For(const std::string& id) {
    return [this, id](const SecaggContext&) -> absl::StatusOr<std::vector<std::string>> {
      std::lock_guard lock(mu);
      return values.at(id);
    };
  }
};

std::vector<std::string> RandomValues(size_t n, uint64_t bound, std::mt19937_64& rng) {
  std::vector<std::string> v;
  for (size_t i = 0; i < n; ++i) v.push_back(std::to_string(rng() % bound));
  return v;
}

std::string ReasonOf(const AggregationResult& r, const std::string& party) {
  auto it = r.failed.find(party);
  return it == r.failed.end() ? "" : it->second;
}

TEST_CASE("secure sum: k = 64, 1,000 elements; k = 2048; no reply equals a party's input") {
  TestFederation fed({"lab-1", "lab-2", "lab-3"});
  fed.StartHub();
  Inputs inputs;
  std::mt19937_64 rng(11);
  for (const char* id : {"lab-1", "lab-2", "lab-3"}) {
    fed.StartNode(id, [&](NodeOptions& o) { o.secagg_input = inputs.For(id); });
  }
  Node& researcher = fed.StartNode(kResearcher);

  SUBCASE("k = 64, vectors of 1,000 elements") {
    RingVector expected(64, 1000);
    for (const char* id : {"lab-1", "lab-2", "lab-3"}) {
      inputs.values[id] = RandomValues(1000, 1ull << 62, rng);
      expected.AddInPlace(RingVector::FromDecimal(64, inputs.values[id]).value());
    }
    SecureSumRequest request;
    request.parties = {"lab-3", "lab-1", "lab-2"};  // any order
    request.element_count = 1000;
    request.timeout = std::chrono::seconds(60);
    auto result = researcher.SecureSum(request);
    REQUIRE(result.ok());
    REQUIRE_MESSAGE(result->ok(), "failed: " << result->failed.size());
    REQUIRE(result->sum.size() == 1000);
    for (size_t i = 0; i < 1000; ++i) CHECK(result->sum[i] == expected.ElementDecimal(i));
    // What each party sent is its masked sum, never its own input.
    for (const char* id : {"lab-1", "lab-2", "lab-3"}) {
      Bytes own = RingVector::FromDecimal(64, inputs.values[id]).value().bytes();
      REQUIRE(result->replies.count(id) == 1);
      CHECK(result->replies.at(id) != core::ToHex(own));
    }
  }
  SUBCASE("k = 2048 (key-sized elements)") {
    RingVector expected(2048, 2);
    for (const char* id : {"lab-1", "lab-2", "lab-3"}) {
      RingVector v = RingVector::Random(2048, 2);
      inputs.values[id] = {v.ElementDecimal(0), v.ElementDecimal(1)};
      expected.AddInPlace(v);
    }
    SecureSumRequest request;
    request.parties = {"lab-1", "lab-2", "lab-3"};
    request.modulus_bits = 2048;
    request.element_count = 2;
    auto result = researcher.SecureSum(request);
    REQUIRE(result.ok());
    REQUIRE(result->ok());
    CHECK(result->sum[0] == expected.ElementDecimal(0));
    CHECK(result->sum[1] == expected.ElementDecimal(1));
    for (const char* id : {"lab-1", "lab-2", "lab-3"}) {
      Bytes own = RingVector::FromDecimal(2048, inputs.values[id]).value().bytes();
      REQUIRE(result->replies.count(id) == 1);
      CHECK(result->replies.at(id) != core::ToHex(own));
    }
  }
}

TEST_CASE("nodelink-node daemons, one fsyncing every commit; --store-synchronous is checked") {
  TestFederation fed({"lab-1", "lab-2", "lab-3"});
  fed.StartHub();
  fed.StartNodeProcess("lab-1", {7, 1}, {"--store-synchronous", "full"});
  fed.StartNodeProcess("lab-2", {20, 2}, {"--store-synchronous", "normal"});
  fed.StartNodeProcess("lab-3", {300, 3});
  SecureSumRequest request;
  request.parties = {"lab-1", "lab-2", "lab-3"};
  request.element_count = 2;
  request.timeout = std::chrono::seconds(60);
  auto result = fed.StartNode(kResearcher).SecureSum(request);
  REQUIRE(result.ok());
  REQUIRE(result->ok());
  CHECK(result->sum == std::vector<std::string>{"327", "6"});

  // Anything else is bad usage (exit 2), from the command line or from --config.
  auto bad_usage = [&](std::vector<std::string> args, const std::string& said) {
    args.insert(args.begin(), {BinPath("nodelink-node"), "--store", fed.StorePath("lab-1"),
                               "--passphrase-file", fed.Passphrase(), "--hub", fed.HubAddress()});
    auto child = process::Subprocess::Start(args, {}, /*capture_stderr=*/true);
    REQUIRE(child != nullptr);
    CHECK(child->Wait(std::chrono::seconds(30)) == 2);
    CHECK(child->WaitForStderrLine(said, std::chrono::seconds(5)).has_value());
  };
  bad_usage({"--store-synchronous", "sometimes"}, "--store-synchronous: sometimes not in");
  const std::string config = fed.File("node.json");
  std::ofstream(config) << R"({"store_synchronous": "always"})";
  bad_usage({"--config", config}, "store_synchronous must be \"normal\" or \"full\"");
  std::ofstream(config) << R"({"store_synchronous": "full", "store_sync": "full"})";
  bad_usage({"--config", config}, "unknown key \"store_sync\"");
}

TEST_CASE("pairwise keys agree on both sides for every pair") {
  std::vector<std::string> parties = {"lab-1", "lab-2", "lab-3", "lab-4"};
  TestFederation fed(parties);
  fed.StartHub();
  for (const std::string& id : parties) fed.StartNode(id);
  Node& researcher = fed.StartNode(kResearcher);
  auto result = researcher.PairwiseKeys(parties, std::chrono::seconds(30));
  REQUIRE(result.ok());
  REQUIRE(result->ok());
  for (const std::string& id : parties) fed.StopNode(id);  // closes their stores

  std::map<std::string, std::unique_ptr<keys::KeyStore>> stores;
  for (const std::string& id : parties) {
    stores[id] = keys::KeyStore::Open(fed.StorePath(id),
                                      keys::StoreKeySource::Passphrase(core::SecretBytes::CopyOf(
                                          AsBytes("integration-pass"))))
                     .value();
  }
  size_t pairs = 0;
  for (const std::string& a : parties) {
    keys::ContextStore ca(*stores[a]);
    for (const std::string& b : parties) {
      if (a >= b) continue;
      keys::ContextStore cb(*stores[b]);
      auto ka = ca.GetPairwiseKey(kResearcher, result->context_id, b).value();
      auto kb = cb.GetPairwiseKey(kResearcher, result->context_id, a).value();
      REQUIRE(ka.has_value());
      REQUIRE(kb.has_value());
      CHECK(ka->size() == 32);
      CHECK(core::ConstantTimeEquals(*ka, *kb));
      ++pairs;
    }
  }
  CHECK(pairs == 6);
}

TEST_CASE("each refusal of PROTOCOL section 8") {
  // lab-4 is a member whom nobody approves as a co-party.
  TestFederation fed({"lab-1", "lab-2", "lab-3", "lab-4"},
                     std::set<std::string>{"lab-1", "lab-2", "lab-3"});
  fed.StartHub();
  Inputs inputs;
  for (const char* id : {"lab-1", "lab-2", "lab-3", "lab-4"}) {
    inputs.values[id] = {"1"};
    fed.StartNode(id, [&](NodeOptions& o) { o.secagg_input = inputs.For(id); });
  }
  Node& researcher = fed.StartNode(kResearcher);
  auto sum = [&](Node& who, std::vector<std::string> parties, uint32_t bits = 64,
                 uint32_t count = 1, std::string context = "") {
    SecureSumRequest r;
    r.parties = std::move(parties);
    r.modulus_bits = bits;
    r.element_count = count;
    r.context_id = std::move(context);
    r.timeout = std::chrono::seconds(20);
    auto result = who.SecureSum(r);
    REQUIRE(result.ok());
    return *result;
  };

  SUBCASE("a non-researcher asking: NOT_AUTHORIZED") {
    AggregationResult r = sum(fed.node("lab-4"), {"lab-1", "lab-2", "lab-3"});
    for (const char* id : {"lab-1", "lab-2", "lab-3"}) {
      CHECK(ReasonOf(r, id).rfind("NOT_AUTHORIZED", 0) == 0);
    }
  }
  SUBCASE("too short, includes the requester, unapproved node: BAD_PARTIES") {
    AggregationResult two = sum(researcher, {"lab-1", "lab-2"});
    CHECK(ReasonOf(two, "lab-1").rfind("BAD_PARTIES", 0) == 0);
    AggregationResult self = sum(researcher, {"lab-1", "lab-2", "researcher"});
    CHECK(ReasonOf(self, "lab-1").rfind("BAD_PARTIES", 0) == 0);
    // Its own rule, not the co-party rule that would also refuse "researcher".
    CHECK(ReasonOf(self, "lab-1").find("include the requester") != std::string::npos);
    AggregationResult unapproved = sum(researcher, {"lab-1", "lab-2", "lab-4"});
    CHECK(ReasonOf(unapproved, "lab-1").rfind("BAD_PARTIES", 0) == 0);
    CHECK(unapproved.sum.empty());
  }
  SUBCASE("a reused context: NOT_AUTHORIZED") {
    AggregationResult first = sum(researcher, {"lab-1", "lab-2", "lab-3"}, 64, 1, "ctx-once");
    CHECK(first.ok());
    inputs.values["lab-1"] = inputs.values["lab-2"] = inputs.values["lab-3"] = {"2"};
    AggregationResult again = sum(researcher, {"lab-1", "lab-2", "lab-3"}, 64, 1, "ctx-once");
    CHECK(ReasonOf(again, "lab-1").rfind("NOT_AUTHORIZED", 0) == 0);
  }
  SUBCASE("the same input for a second context, at any modulus: NOT_AUTHORIZED") {
    CHECK(sum(researcher, {"lab-1", "lab-2", "lab-3"}).ok());
    AggregationResult again = sum(researcher, {"lab-1", "lab-2", "lab-3"});
    CHECK(ReasonOf(again, "lab-1").rfind("NOT_AUTHORIZED", 0) == 0);
    AggregationResult wider = sum(researcher, {"lab-1", "lab-2", "lab-3"}, 72);
    CHECK(ReasonOf(wider, "lab-1").rfind("NOT_AUTHORIZED", 0) == 0);
    CHECK(wider.sum.empty());
  }
  SUBCASE("an input that does not fit is refused without revealing it") {
    inputs.values["lab-1"] = {"987654321"};
    AggregationResult narrow = sum(researcher, {"lab-1", "lab-2", "lab-3"}, 8);
    CHECK(ReasonOf(narrow, "lab-1").rfind("PARAMS_MISMATCH", 0) == 0);
    CHECK(ReasonOf(narrow, "lab-1").find("987654321") == std::string::npos);
  }
  SUBCASE("an oversize vector: MALFORMED") {
    AggregationResult big = sum(researcher, {"lab-1", "lab-2", "lab-3"}, 4096, 40000);
    CHECK(ReasonOf(big, "lab-2").rfind("MALFORMED", 0) == 0);
  }
  SUBCASE("unsorted parties, share requests with another digest or from a non-party") {
    uint64_t deadline = core::SystemClock::Get().NowMs() + 10'000;
    v1::Inner setup;
    v1::SecaggSetupRequest* s = setup.mutable_secagg_setup_request();
    s->set_context_id("ctx-raw");
    s->set_scheme(v1::ADDITIVE_SHARING);
    for (const char* p : {"lab-2", "lab-1", "lab-3"}) s->add_parties(p);
    s->set_modulus_bits(64);
    s->set_element_count(1);
    auto unsorted = node::RouterForTesting(researcher).Request("lab-1", setup, deadline).get();
    REQUIRE(unsorted.kind == router::RequestOutcome::Kind::kErrorReply);
    CHECK(unsorted.error_reply().code() == "BAD_PARTIES");

    // A context that ran, then share requests for it that do not match it.
    CHECK(sum(researcher, {"lab-1", "lab-2", "lab-3"}, 64, 1, "ctx-digest").ok());
    v1::SecaggSetupRequest params;
    params.set_context_id("ctx-digest");
    params.set_scheme(v1::ADDITIVE_SHARING);
    for (const char* p : {"lab-1", "lab-2", "lab-3"}) params.add_parties(p);
    params.set_modulus_bits(64);
    params.set_element_count(1);
    v1::Inner share;
    v1::AdditiveSharingRequest* a = share.mutable_additive_sharing_request();
    a->set_context_id("ctx-digest");
    a->set_researcher(kResearcher);
    a->set_params_digest(std::string(32, 'x'));
    auto other_digest = node::RouterForTesting(fed.node("lab-2")).Request("lab-1", share, deadline).get();
    REQUIRE(other_digest.kind == router::RequestOutcome::Kind::kErrorReply);
    CHECK(other_digest.error_reply().code() == "PARAMS_MISMATCH");

    a->set_params_digest(ToString(secagg::ParamsDigestOf(kResearcher, params)));
    auto right_digest = node::RouterForTesting(fed.node("lab-2")).Request("lab-1", share, deadline).get();
    CHECK(right_digest.ok());  // the same request from a party is served
    auto non_party = node::RouterForTesting(fed.node("lab-4")).Request("lab-1", share, deadline).get();
    REQUIRE(non_party.kind == router::RequestOutcome::Kind::kErrorReply);
    CHECK(non_party.error_reply().code() == "NOT_A_PARTY");
  }
}

TEST_CASE("a share request that comes before its context starts is held, not refused") {
  TestFederation fed({"lab-1", "lab-2", "lab-3"});
  fed.StartHub();
  Inputs inputs;
  for (const char* id : {"lab-1", "lab-2", "lab-3"}) {
    inputs.values[id] = {"5"};
    fed.StartNode(id, [&](NodeOptions& o) { o.secagg_input = inputs.For(id); });
  }
  Node& researcher = fed.StartNode(kResearcher);
  v1::SecaggSetupRequest params;
  params.set_context_id("ctx-held");
  params.set_scheme(v1::ADDITIVE_SHARING);
  for (const char* p : {"lab-1", "lab-2", "lab-3"}) params.add_parties(p);
  params.set_modulus_bits(64);
  params.set_element_count(1);
  v1::Inner share;
  v1::AdditiveSharingRequest* a = share.mutable_additive_sharing_request();
  a->set_context_id("ctx-held");
  a->set_researcher(kResearcher);
  a->set_params_digest(ToString(secagg::ParamsDigestOf(kResearcher, params)));
  uint64_t now = core::SystemClock::Get().NowMs();
  // Sent before lab-1 knows the context: held until it starts.
  auto early = node::RouterForTesting(fed.node("lab-2")).Request("lab-1", share, now + 20'000);
  // A request for a context that never starts ends with TIMEOUT at its deadline.
  a->set_context_id("ctx-never");
  auto never = node::RouterForTesting(fed.node("lab-3")).Request("lab-1", share, now + 1'500);

  SecureSumRequest request;
  request.parties = {"lab-1", "lab-2", "lab-3"};
  request.context_id = "ctx-held";
  auto result = researcher.SecureSum(request);
  REQUIRE(result.ok());
  CHECK(result->ok());
  CHECK(result->sum == std::vector<std::string>{"15"});
  router::RequestOutcome held = early.get();
  CHECK(held.ok());
  CHECK(held.reply.has_additive_sharing_reply());
  router::RequestOutcome timed_out = never.get();
  CHECK_FALSE(timed_out.ok());
}

}  // namespace
}  // namespace nodelink::testing

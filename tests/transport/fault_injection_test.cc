// The relay's fault injection (--inject-faults): each fault does what it says, to sealed
// messages only, reproducibly for a seed, and is counted.
#include "transport/fault_injection.h"

#include <doctest/doctest.h>

#include <set>

#include "relay_rig.h"

namespace nodelink::transport {
namespace {

using namespace testing;  // NOLINT: the rig

TEST_CASE("faults: the spec parses, and bad items are named") {
  auto o = ParseFaultSpec("drop=0.1,duplicate=0.2,reorder=0.05,delay=0.05,delay-ms=30,corrupt=0.1,seed=9");
  REQUIRE(o.ok());
  CHECK(o->drop == 0.1);
  CHECK(o->duplicate == 0.2);
  CHECK(o->delay_ms == 30);
  CHECK(o->seed == 9);
  CHECK(o->any());
  CHECK_FALSE(ParseFaultSpec("").value().any());
  for (const char* bad : {"drop", "drop=2", "drop=-0.1", "drop=x", "lose=0.1", "seed=-1",
                          "delay-ms=1.5", "drop=0.6,corrupt=0.6", "drop=nan"}) {
    CAPTURE(bad);
    auto r = ParseFaultSpec(bad);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().message().find("--inject-faults") != std::string::npos);
  }
}

TEST_CASE("faults: choices follow the seed and the rates, and spare setups") {
  FaultOptions o;
  o.drop = 0.1;
  o.corrupt = 0.2;
  o.seed = 42;
  FaultInjector a(o), b(o);
  const v1::Envelope sealed = Env("a", "b", Id(1));
  size_t drops = 0, corrupts = 0;
  for (int i = 0; i < 10'000; ++i) {
    const Fault fa = a.Choose(sealed);
    CHECK(fa == b.Choose(sealed));
    drops += fa == Fault::kDrop;
    corrupts += fa == Fault::kCorrupt;
  }
  CHECK(drops > 800);
  CHECK(drops < 1200);
  CHECK(corrupts > 1700);
  CHECK(corrupts < 2300);
  v1::Envelope setup = sealed;
  setup.mutable_setup_request()->set_setup_id(std::string(16, 's'));
  for (int i = 0; i < 100; ++i) CHECK(a.Choose(setup) == Fault::kNone);
}

struct FaultRig {
  explicit FaultRig(const std::string& spec) : rig(Options(spec)) {
    REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
    REQUIRE(rig.relay->Attach(&b, "node-b", 0).ok());
  }
  static RelayOptions Options(const std::string& spec) {
    RelayOptions o;
    o.faults = ParseFaultSpec(spec).value();
    return o;
  }
  void Send(int n) { rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-b", Id(n))); }
  size_t Injected(Fault f) const {
    return rig.counters.faults_injected[static_cast<size_t>(f)].load();
  }
  Rig rig;
  FakeSession& a = rig.NewSession();
  FakeSession& b = rig.NewSession();
};

TEST_CASE("faults: drop deletes an accepted envelope without pushing it") {
  FaultRig f("drop=1");
  f.Send(1);
  REQUIRE(Eventually([&] { return f.a.CountAccepted() == 1; }));
  REQUIRE(Eventually([&] { return f.Injected(Fault::kDrop) == 1; }));
  REQUIRE(Eventually([&] { return f.rig.committer->totals().items == 0; }));
  CHECK(f.b.pushed().empty());
}

TEST_CASE("faults: duplicate pushes twice; the first receipt deletes, the second matches nothing") {
  FaultRig f("duplicate=1");
  f.Send(1);
  REQUIRE(Eventually([&] { return f.b.pushed().size() == 2; }));
  CHECK(f.b.pushed()[0].SerializeAsString() == f.b.pushed()[1].SerializeAsString());
  f.rig.relay->OnDelivered(&f.b, "node-b", Id(1));
  f.rig.relay->OnDelivered(&f.b, "node-b", Id(1));
  REQUIRE(Eventually([&] { return f.rig.committer->totals().items == 0; }));
  CHECK(f.rig.counters.delivered.load() == 1);
  CHECK(f.rig.counters.delivered_unmatched.load() == 1);
  CHECK(f.Injected(Fault::kDuplicate) == 1);
}

TEST_CASE("faults: corrupt flips exactly one bit of the ciphertext") {
  FaultRig f("corrupt=1");
  f.Send(1);
  REQUIRE(Eventually([&] { return f.b.pushed().size() == 1; }));
  const std::string sent = Env("node-a", "node-b", Id(1)).sealed().ciphertext();
  const std::string got = f.b.pushed()[0].sealed().ciphertext();
  REQUIRE(got.size() == sent.size());
  int bits = 0;
  for (size_t i = 0; i < sent.size(); ++i) bits += __builtin_popcount((sent[i] ^ got[i]) & 0xff);
  CHECK(bits == 1);
  CHECK(f.b.pushed()[0].message_id() == Id(1));  // the header is intact: its receipt matches
}

TEST_CASE("faults: delay holds a push until the clock passes delay-ms") {
  FaultRig f("delay=1,delay-ms=50");
  f.Send(1);
  REQUIRE(Eventually([&] { return f.Injected(Fault::kDelay) == 1; }));
  f.rig.relay->ReleaseHeldPushes();
  CHECK(f.b.pushed().empty());
  f.rig.clock.Advance(49);
  f.rig.relay->ReleaseHeldPushes();
  CHECK(f.b.pushed().empty());
  f.rig.clock.Advance(1);
  f.rig.relay->ReleaseHeldPushes();
  REQUIRE(f.b.pushed().size() == 1);
  CHECK(f.b.pushed()[0].message_id() == Id(1));
}

TEST_CASE("faults: reorder sends a held push after the next one; every envelope arrives once") {
  FaultRig f("reorder=0.5,seed=3");
  constexpr int kCount = 40;
  for (int n = 1; n <= kCount; ++n) {
    f.Send(n);
    // One at a time, so that each push is its own fetch and "the next push" is well defined.
    REQUIRE(Eventually([&] { return f.a.CountAccepted() == static_cast<size_t>(n); }));
  }
  REQUIRE(Eventually([&] { return f.rig.counters.pushed.load() == kCount; }));
  f.rig.clock.Advance(f.rig.relay->options().faults.delay_ms);
  f.rig.relay->ReleaseHeldPushes();  // the last one, if held, has no next push
  std::vector<std::string> ids;
  for (const v1::Envelope& e : f.b.pushed()) ids.push_back(e.message_id());
  REQUIRE(ids.size() == kCount);
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == kCount);
  size_t out_of_order = 0;
  for (int n = 1; n <= kCount; ++n) out_of_order += ids[n - 1] != Id(n);
  CHECK(f.Injected(Fault::kReorder) > 5);
  CHECK(out_of_order > 5);
}

TEST_CASE("faults: a replaced stream forgets held pushes; the queue pushes them again") {
  FaultRig f("delay=1,delay-ms=1000");
  f.Send(1);
  REQUIRE(Eventually([&] { return f.Injected(Fault::kDelay) == 1; }));
  FakeSession& b2 = f.rig.NewSession();
  REQUIRE(f.rig.relay->Attach(&b2, "node-b", 0).ok());
  REQUIRE(Eventually([&] { return f.Injected(Fault::kDelay) == 2; }));
  f.rig.clock.Advance(1000);
  f.rig.relay->ReleaseHeldPushes();
  CHECK(f.b.pushed().empty());
  REQUIRE(b2.pushed().size() == 1);
  CHECK(b2.pushed()[0].message_id() == Id(1));
}

}  // namespace
}  // namespace nodelink::transport

// The relay logic without gRPC (relay_rig.h).
#include "transport/relay.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <atomic>

#include "process/temp_dir.h"
#include "relay_rig.h"
#include "wrapped_store.h"
#include "transport/sqlite_queue_store.h"

namespace nodelink::transport {
namespace {

using namespace testing;  // NOLINT: the rig

TEST_CASE("relay: Welcome, Accepted after commit, push, and delete on Delivered") {
  RelayOptions o;
  o.max_envelope_bytes = 4096;
  o.queue_ttl_ms = 60'000;
  Rig rig(o);
  FakeSession& a = rig.NewSession();
  FakeSession& b = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  REQUIRE(rig.relay->Attach(&b, "node-b", 0).ok());
  REQUIRE(a.sent().size() == 1);
  const v1::Welcome w = a.sent()[0].frame.welcome();
  CHECK(w.protocol_version() == 1);
  CHECK(w.max_envelope_bytes() == 4096);
  CHECK(w.queue_ttl_ms() == 60'000);
  CHECK(w.hub_time_ms() == rig.clock.NowMs());

  rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-b", Id(1)));
  REQUIRE(Eventually([&] { return b.pushed().size() == 1; }));
  REQUIRE(Eventually([&] { return a.CountAccepted() == 1; }));
  CHECK(b.pushed()[0].message_id() == Id(1));
  CHECK(rig.counters.accepted.load() == 1);
  CHECK(rig.committer->totals().items == 1);
  rig.relay->OnDelivered(&b, "node-b", Id(1));
  REQUIRE(Eventually([&] { return rig.committer->totals().items == 0; }));
  CHECK(rig.counters.delivered.load() == 1);
  // A resend of the same envelope is answered Accepted again and not queued twice.
  rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-b", Id(1)));
  REQUIRE(Eventually([&] { return a.CountAccepted() == 2; }));
  CHECK(rig.counters.duplicates.load() == 1);
  CHECK(b.pushed().size() == 1);
}

TEST_CASE("relay: each acceptance rule answers its Rejected code") {
  RelayOptions o;
  o.max_envelope_bytes = 300;
  o.members = std::set<std::string>{"node-a", "node-b"};
  Rig rig(o);
  FakeSession& a = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  auto expect = [&](v1::Envelope e, v1::Code code) {
    const size_t before = a.rejected().size();
    rig.relay->OnEnvelope(&a, "node-a", e);
    REQUIRE(a.rejected().size() == before + 1);  // refusals are answered at once
    CHECK(a.rejected().back().code() == code);
    CHECK(a.rejected().back().message_id() == e.message_id());
    CHECK_FALSE(a.rejected().back().detail().empty());
  };
  v1::Envelope big = Env("node-a", "node-b", Id(1));
  big.mutable_sealed()->set_ciphertext(std::string(400, 'x'));
  expect(big, v1::TOO_LARGE);
  v1::Envelope v2 = Env("node-a", "node-b", Id(2));
  v2.set_version(2);
  expect(v2, v1::UNSUPPORTED_VERSION);
  expect(Env("node-b", "node-b", Id(3)), v1::IMPERSONATION);
  v1::Envelope bad = Env("node-a", "node-b", Id(4));
  bad.set_message_id("short");
  expect(bad, v1::MALFORMED);
  v1::Envelope nobody = Env("node-a", "node-b", Id(5));
  nobody.clear_sealed();
  expect(nobody, v1::MALFORMED);
  expect(Env("node-a", "node-b", Id(6), "other-fed"), v1::WRONG_FEDERATION);
  expect(Env("node-a", "node-x", Id(7)), v1::UNKNOWN_DESTINATION);
  CHECK(rig.counters.rejected[v1::IMPERSONATION].load() == 1);
  // A non-member cannot connect.
  FakeSession& x = rig.NewSession();
  CHECK(rig.relay->Attach(&x, "node-x", 0).code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("relay: rate limit per sender, refilled by the injected clock") {
  RelayOptions o;
  o.rate = RateLimit{2, 2};  // 2 per second, burst 2
  Rig rig(o);
  FakeSession& a = rig.NewSession();
  FakeSession& b = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  REQUIRE(rig.relay->Attach(&b, "node-b", 0).ok());
  for (int i = 0; i < 3; ++i) rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-b", Id(i)));
  REQUIRE(a.rejected().size() == 1);
  CHECK(a.rejected()[0].code() == v1::RATE_LIMITED);
  CHECK(a.rejected()[0].message_id() == Id(2));
  // Another sender has its own bucket.
  rig.relay->OnEnvelope(&b, "node-b", Env("node-b", "node-a", Id(9)));
  CHECK(b.rejected().empty());
  rig.clock.Advance(500);  // one token back
  rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-b", Id(2)));
  rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-b", Id(3)));
  REQUIRE(Eventually([&] { return a.CountAccepted() == 3; }));
  CHECK(a.rejected().size() == 2);
}

TEST_CASE("relay: credits bound pushes; acknowledgements in any order free them") {
  Rig rig;
  FakeSession& a = rig.NewSession();
  FakeSession& b = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  REQUIRE(rig.relay->Attach(&b, "node-b", 2).ok());  // max_in_flight 2
  for (int i = 1; i <= 5; ++i) rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-b", Id(i)));
  REQUIRE(Eventually([&] { return a.CountAccepted() == 5; }));
  REQUIRE(Eventually([&] { return b.pushed().size() == 2; }));
  CHECK(b.pushed()[0].message_id() == Id(1));
  CHECK(b.pushed()[1].message_id() == Id(2));
  rig.relay->OnDelivered(&b, "node-b", Id(2));  // out of order
  REQUIRE(Eventually([&] { return b.pushed().size() == 3; }));
  CHECK(b.pushed()[2].message_id() == Id(3));
  rig.relay->OnDelivered(&b, "node-b", Id(1));
  rig.relay->OnDelivered(&b, "node-b", Id(3));
  REQUIRE(Eventually([&] { return b.pushed().size() == 5; }));
  CHECK(b.pushed()[3].message_id() == Id(4));
  CHECK(b.pushed()[4].message_id() == Id(5));
  // A receipt naming nothing in flight changes nothing.
  rig.relay->OnDelivered(&b, "node-b", Id(77));
  CHECK(rig.counters.delivered_unmatched.load() == 1);
  rig.relay->OnDelivered(&b, "node-b", Id(4));
  rig.relay->OnDelivered(&b, "node-b", Id(5));
  REQUIRE(Eventually([&] { return rig.committer->totals().items == 0; }));
}

TEST_CASE("relay: a waiting recipient gets an envelope at once, never ahead of older ones") {
  Rig rig;
  FakeSession& x = rig.NewSession();
  FakeSession& y = rig.NewSession();
  FakeSession& r = rig.NewSession();
  REQUIRE(rig.relay->Attach(&x, "node-x", 0).ok());
  REQUIRE(rig.relay->Attach(&y, "node-y", 0).ok());
  REQUIRE(rig.relay->Attach(&r, "node-r", 8).ok());
  rig.Settle();  // the Attach's fetch found nothing: r waits
  rig.relay->OnEnvelope(&x, "node-x", Env("node-x", "node-r", Id(1)));
  REQUIRE(Eventually([&] { return r.pushed().size() == 1; }));
  CHECK(rig.counters.pushed_at_once.load() == 1);  // not read back from the queue
  // y's envelope has the id of the one in flight, so it waits (see the next test). x's next one
  // has room and a fresh id, but an older row is waiting: it must not overtake it.
  rig.relay->OnEnvelope(&y, "node-y", Env("node-y", "node-r", Id(1)));
  REQUIRE(Eventually([&] { return y.CountAccepted() == 1; }));
  rig.relay->OnEnvelope(&x, "node-x", Env("node-x", "node-r", Id(2)));
  REQUIRE(Eventually([&] { return x.CountAccepted() == 2; }));
  rig.Settle();
  CHECK(r.pushed().size() == 1);
  rig.relay->OnDelivered(&r, "node-r", Id(1));
  REQUIRE(Eventually([&] { return r.pushed().size() == 3; }));
  CHECK(r.pushed()[1].sender() == "node-y");
  CHECK(r.pushed()[2].message_id() == Id(2));
  CHECK(rig.counters.pushed_at_once.load() == 1);
  rig.relay->OnDelivered(&r, "node-r", Id(1));
  rig.relay->OnDelivered(&r, "node-r", Id(2));
  REQUIRE(Eventually([&] { return rig.committer->totals().items == 0; }));
}

// A store that runs `between` after the relay's before_commit, where only the commit is left.
class StagedStore final : public WrappedStore {
 public:
  using WrappedStore::WrappedStore;
  absl::StatusOr<std::vector<AppendResult>> Commit(std::span<const AppendRequest> appends,
                                                   std::span<const uint64_t> deletes,
                                                   const QueueBounds& bounds,
                                                   const BeforeCommit& before_commit) override {
    return WrappedStore::Commit(appends, deletes, bounds, [&](std::span<const AppendResult> s) {
      if (before_commit) before_commit(s);
      if (between) between();
    });
  }
  std::function<void()> between;  // set before the first append; runs on the committer's thread
};

TEST_CASE("relay: a waiting recipient's envelope is pushed while its append commits") {
  auto store = std::make_unique<StagedStore>(std::make_unique<MemoryQueueStore>());
  StagedStore& staged = *store;
  Rig rig({}, {}, std::move(store));
  FakeSession& a = rig.NewSession();
  FakeSession& r = rig.NewSession();
  std::atomic<size_t> pushed_before_commit{99}, accepted_before_commit{99};
  staged.between = [&] {
    pushed_before_commit = r.pushed().size();
    accepted_before_commit = a.CountAccepted();
  };
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  REQUIRE(rig.relay->Attach(&r, "node-r", 0).ok());
  rig.Settle();  // r waits
  rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-r", Id(1)));
  REQUIRE(Eventually([&] { return a.CountAccepted() == 1; }));
  CHECK(pushed_before_commit == 1);
  CHECK(accepted_before_commit == 0);  // Accepted only once durable (PROTOCOL 4)
  CHECK(rig.counters.pushed_at_once.load() == 1);
}

TEST_CASE("relay: a pushed envelope whose commit fails is resent, not refused, under a new id") {
  // SQLite's COMMIT failing on a full disk, after the push: a QUEUE_FULL answer would make the
  // sender's application send it again as a new message, which the recipient would take twice.
  process::TempDir dir;
  auto sqlite = SqliteQueueStore::Open({dir.File("queue.db")});
  REQUIRE(sqlite.ok());
  auto store = std::make_unique<StagedStore>(*std::move(sqlite));
  StagedStore& staged = *store;
  std::atomic<bool> fail{true};
  staged.between = [&] {
    if (fail.exchange(false)) throw SQLite::Exception("injected: the disk is full", SQLITE_FULL);
  };
  Rig rig({}, {}, std::move(store));
  FakeSession& a = rig.NewSession();
  FakeSession& r = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  REQUIRE(rig.relay->Attach(&r, "node-r", 0).ok());
  rig.Settle();
  rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-r", Id(1)));
  REQUIRE(Eventually([&] { return a.ended().has_value(); }));
  CHECK(absl::IsUnavailable(*a.ended()));
  CHECK(a.CountAccepted() == 0);
  CHECK(a.rejected().empty());
  REQUIRE(r.pushed().size() == 1);
  const uint64_t failed_id = r.sent().back().queue_id;
  rig.relay->OnDelivered(&r, "node-r", Id(1));  // names a row that never committed
  // The sender's next stream resends it: queued now, pushed again under another id, which the
  // earlier receipt did not delete.
  rig.relay->Detach(&a, "node-a");
  FakeSession& a2 = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a2, "node-a", 0).ok());
  rig.relay->OnEnvelope(&a2, "node-a", Env("node-a", "node-r", Id(1)));
  REQUIRE(Eventually([&] { return a2.CountAccepted() == 1; }));
  REQUIRE(Eventually([&] { return r.pushed().size() == 2; }));
  CHECK(r.sent().back().queue_id > failed_id);
  rig.Settle();
  CHECK(rig.committer->totals().items == 1);
  rig.relay->OnDelivered(&r, "node-r", Id(1));
  REQUIRE(Eventually([&] { return rig.committer->totals().items == 0; }));
}

TEST_CASE("relay: two senders' envelopes with one message id are never in flight together") {
  // Delivered names no sender: if both were in flight, the recipient's receipt for one could
  // delete the other before it was processed. The later one waits for the earlier's receipt.
  Rig rig;
  FakeSession& x = rig.NewSession();
  FakeSession& y = rig.NewSession();
  FakeSession& r = rig.NewSession();
  REQUIRE(rig.relay->Attach(&x, "node-x", 0).ok());
  REQUIRE(rig.relay->Attach(&y, "node-y", 0).ok());
  const std::string shared = Id(42);
  rig.relay->OnEnvelope(&y, "node-y", Env("node-y", "node-r", shared));
  REQUIRE(Eventually([&] { return y.CountAccepted() == 1; }));
  rig.relay->OnEnvelope(&x, "node-x", Env("node-x", "node-r", shared));
  rig.relay->OnEnvelope(&x, "node-x", Env("node-x", "node-r", Id(43)));
  REQUIRE(Eventually([&] { return x.CountAccepted() == 2; }));
  REQUIRE(rig.relay->Attach(&r, "node-r", 8).ok());
  REQUIRE(Eventually([&] { return r.pushed().size() == 1; }));
  CHECK(r.pushed()[0].sender() == "node-y");
  // Nothing else is pushed while the first envelope with that id is in flight.
  rig.Settle();
  CHECK(r.pushed().size() == 1);
  rig.relay->OnDelivered(&r, "node-r", shared);  // unambiguous: deletes node-y's
  REQUIRE(Eventually([&] { return r.pushed().size() == 3; }));
  CHECK(r.pushed()[1].sender() == "node-x");
  CHECK(r.pushed()[1].message_id() == shared);
  CHECK(r.pushed()[2].message_id() == Id(43));
  rig.relay->OnDelivered(&r, "node-r", shared);
  rig.relay->OnDelivered(&r, "node-r", Id(43));
  REQUIRE(Eventually([&] { return rig.committer->totals().items == 0; }));
  CHECK(rig.counters.delivered.load() == 3);
}

TEST_CASE("relay: a newer stream replaces the older; unacknowledged envelopes are pushed again") {
  Rig rig;
  FakeSession& a = rig.NewSession();
  FakeSession& b1 = rig.NewSession();
  FakeSession& b2 = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  REQUIRE(rig.relay->Attach(&b1, "node-b", 0).ok());
  for (int i = 1; i <= 3; ++i) rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "node-b", Id(i)));
  REQUIRE(Eventually([&] { return b1.pushed().size() == 3; }));
  rig.relay->OnDelivered(&b1, "node-b", Id(1));
  REQUIRE(rig.relay->Attach(&b2, "node-b", 0).ok());
  REQUIRE(b1.ended().has_value());
  CHECK(b1.ended()->code() == absl::StatusCode::kAborted);
  CHECK(rig.counters.streams_replaced.load() == 1);
  CHECK(rig.counters.connected.load() == 2);
  // The old stream's frames are ignored from now on; the new one gets 2 and 3 again, in order.
  rig.relay->OnDelivered(&b1, "node-b", Id(2));
  REQUIRE(Eventually([&] { return b2.pushed().size() == 2; }));
  CHECK(b2.pushed()[0].message_id() == Id(2));
  CHECK(b2.pushed()[1].message_id() == Id(3));
  CHECK(rig.counters.redeliveries.load() == 2);
  rig.relay->Detach(&b1, "node-b");  // stale detach of the replaced stream: no effect
  CHECK(rig.counters.connected.load() == 2);
  rig.relay->Detach(&b2, "node-b");
  CHECK(rig.counters.connected.load() == 1);
}

TEST_CASE("relay: QUEUE_FULL at the recipient's bound") {
  Rig rig(RelayOptions{}, QueueBounds{2, 0});
  FakeSession& a = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  for (int i = 1; i <= 3; ++i) rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "offline", Id(i)));
  REQUIRE(Eventually([&] { return a.CountAccepted() == 2 && a.rejected().size() == 1; }));
  CHECK(a.rejected()[0].code() == v1::QUEUE_FULL);
  CHECK(a.rejected()[0].message_id() == Id(3));
}

TEST_CASE("relay: expiry sends Rejected{EXPIRED} to the sender, durably queued if offline") {
  RelayOptions o;
  o.queue_ttl_ms = 1000;
  Rig rig(o);
  FakeSession& a = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  rig.relay->OnEnvelope(&a, "node-a", Env("node-a", "offline", Id(1)));
  REQUIRE(Eventually([&] { return a.CountAccepted() == 1; }));
  rig.relay->Detach(&a, "node-a");  // the sender goes offline too
  auto none = rig.relay->ExpireNow();
  REQUIRE(none.ok());
  CHECK(*none == 0);
  rig.clock.Advance(1000);
  auto one = rig.relay->ExpireNow();
  REQUIRE(one.ok());
  CHECK(*one == 1);
  CHECK(rig.counters.expired.load() == 1);
  FakeSession& a2 = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a2, "node-a", 0).ok());
  REQUIRE(Eventually([&] { return a2.rejected().size() == 1; }));
  CHECK(a2.rejected()[0].code() == v1::EXPIRED);
  CHECK(a2.rejected()[0].message_id() == Id(1));
  // Once written, the notice is deleted.
  uint64_t notice_id = 0;
  for (const auto& s : a2.sent()) {
    if (s.kind == Session::FrameKind::kNotice) notice_id = s.queue_id;
  }
  REQUIRE(notice_id != 0);
  rig.relay->OnNoticeWritten(notice_id);
  REQUIRE(Eventually([&] { return rig.committer->totals().items == 0; }));
  // The recipient that connects later gets nothing.
  FakeSession& late = rig.NewSession();
  REQUIRE(rig.relay->Attach(&late, "offline", 0).ok());
  rig.Settle();
  CHECK(late.pushed().empty());
}

TEST_CASE("relay: EndAll ends every stream and refuses new ones") {
  Rig rig;
  FakeSession& a = rig.NewSession();
  REQUIRE(rig.relay->Attach(&a, "node-a", 0).ok());
  rig.relay->EndAll(absl::UnavailableError("stopping"));
  REQUIRE(a.ended().has_value());
  FakeSession& b = rig.NewSession();
  CHECK(rig.relay->Attach(&b, "node-b", 0).code() == absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace nodelink::transport

#include "router/router.h"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "router/error_reply.h"
#include "router_fixture.h"
#include "router_test_support.h"

namespace nodelink::router {
namespace {

using testing::AppInner;
using testing::Eventually;
using testing::Gate;
using testing::MakeEnvelope;
using testing::RouterFixture;
using testing::TestOpener;
using testing::TestOptions;

constexpr auto kApp = v1::Inner::kApp;
constexpr auto kKeyRequest = v1::Inner::kKeyRequest;

v1::Inner KeyRequest(const std::string& request_id, uint64_t deadline_ms = 0) {
  v1::Inner inner;
  inner.set_request_id(request_id);
  inner.set_deadline_ms(deadline_ms);
  inner.mutable_key_request()->set_context_id("ctx");
  return inner;
}

v1::Inner KeyReply(const std::string& context) {
  v1::Inner inner;
  inner.mutable_key_reply()->set_context_id(context);
  return inner;
}

// The replies `fixture` sent to `peer` for `request_id`.
std::vector<v1::Inner> RepliesTo(const RouterFixture& f, const std::string& peer,
                                 const std::string& request_id) {
  std::vector<v1::Inner> out;
  for (const auto& s : f.sender.SentTo(peer)) {
    if (s.inner.request_id() == request_id) out.push_back(s.inner);
  }
  return out;
}

class EventLog {
 public:
  void Add(std::string event) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() const {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> events_;
};

TEST_CASE("router: the normal path runs the handler, then the final, and acknowledges once") {
  RouterFixture f;
  EventLog log;
  f.router->SetHandler(
      kApp,
      [&](HandlerContext& ctx) {
        log.Add("handler:" + ctx.inner().app().payload());
        CHECK(ctx.sender() == "bob");
        CHECK_FALSE(ctx.is_request());
        CHECK(ctx.deadline_ms() == f.clock.NowMs() + 1000);
        ctx.state() = 42;
        return absl::OkStatus();
      },
      [&](FinalContext& ctx) {
        log.Add("final:" + std::to_string(std::any_cast<int>(ctx.state())));
        return absl::OkStatus();
      });
  f.router->Start();
  v1::Envelope envelope = MakeEnvelope("bob", "alice", AppInner("t", "p1"));
  f.router->Submit(envelope);
  REQUIRE(Eventually([&] { return f.router->Counters().of(kApp).handled == 1; }));
  CHECK(log.events() == std::vector<std::string>{"handler:p1", "final:42"});
  CHECK(f.acks.Acked(envelope));
  CHECK(f.acks.total() == 1);
  REQUIRE(Eventually([&] { return f.opener.completed().size() == 1; }));
  CHECK(f.opener.completed().at(1) == 1);
  const RouterCounters c = f.router->Counters();
  CHECK(c.open_outcomes[static_cast<size_t>(messages::ReceiveCode::kOk)] == 1);
  CHECK(c.inbox_depth == 0);
  CHECK(c.dispatches_in_progress == 0);
  CHECK(f.sender.sent_count() == 0);  // one-way: nothing answered
}

TEST_CASE("router: a handler replies with the request's request_id") {
  RouterFixture f;
  f.router->SetHandler(kKeyRequest, [](HandlerContext& ctx) {
    CHECK(ctx.is_request());
    CHECK(ctx.Reply(KeyReply("ctx")).ok());
    CHECK(ctx.Reply(KeyReply("again")).code() == absl::StatusCode::kAlreadyExists);
    return absl::OkStatus();
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r1", f.clock.NowMs() + 500)));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).handled == 1; }));
  std::vector<v1::Inner> replies = RepliesTo(f, "bob", "r1");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].has_key_reply());
  CHECK(replies[0].deadline_ms() == 0);
}

TEST_CASE("router: the deadline is the sooner of the router's and the request's") {
  RouterFixture f;
  std::atomic<uint64_t> seen{0};
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    seen = ctx.deadline_ms();
    return ctx.Reply(KeyReply("c"));
  });
  f.router->Start();
  const uint64_t soon = f.clock.NowMs() + 200;
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r", soon)));
  REQUIRE(Eventually([&] { return seen.load() != 0; }));
  CHECK(seen.load() == soon);
}

TEST_CASE(
    "router: one sender's messages keep their order over several workers, senders run in "
    "parallel") {
  RouterFixture f("alice", TestOptions(4), TestOpener::DoneMode::kCommitThread);
  constexpr int kPerSender = 300;
  std::mutex mu;
  std::map<std::string, std::vector<int>> order;
  std::map<std::string, int> running;
  std::atomic<int> overlapping_handlers{0};
  Gate carol_ran;
  std::atomic<bool> bob_saw_carol{false};
  f.router->SetHandler(kApp, [&](HandlerContext& ctx) {
    const std::string& sender = ctx.sender();
    {
      std::lock_guard lock(mu);
      if (running[sender]++ != 0) ++overlapping_handlers;
      order[sender].push_back(std::stoi(ctx.inner().app().payload()));
    }
    // Bob's first handler holds its worker until one of carol's handlers has run: carol proceeds
    // on another worker while bob's strand is busy.
    if (sender == "bob" && ctx.inner().app().payload() == "0") bob_saw_carol = carol_ran.Wait();
    if (sender == "carol") carol_ran.Open();
    std::lock_guard lock(mu);
    --running[sender];
    return absl::OkStatus();
  });
  f.router->Start();
  std::vector<v1::Envelope> envelopes;
  for (int i = 0; i < kPerSender; ++i) {
    for (const char* sender : {"bob", "carol"}) {
      envelopes.push_back(MakeEnvelope(sender, "alice", AppInner("t", std::to_string(i)), i + 1));
      f.router->Submit(envelopes.back());
    }
  }
  REQUIRE(Eventually([&] { return f.router->Counters().of(kApp).handled == 2 * kPerSender; }));
  CHECK(bob_saw_carol.load());
  CHECK(overlapping_handlers.load() == 0);
  CHECK(f.opener.overlapping_opens() == 0);
  std::vector<int> expected(kPerSender);
  for (int i = 0; i < kPerSender; ++i) expected[i] = i;
  std::lock_guard lock(mu);
  CHECK(order["bob"] == expected);
  CHECK(order["carol"] == expected);
  for (const v1::Envelope& e : envelopes) CHECK(f.acks.Acked(e));
}

TEST_CASE("router: a slow handler does not delay opening and acknowledging what follows") {
  RouterFixture f("alice", TestOptions(2));
  Gate entered;
  Gate release;
  std::atomic<int> handled{0};
  f.router->SetHandler(kApp, [&](HandlerContext& ctx) {
    if (ctx.inner().app().payload() == "slow") {
      entered.Open();
      release.Wait();
    }
    ++handled;
    return absl::OkStatus();
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t", "slow"), 1));
  REQUIRE(entered.Wait());
  std::vector<v1::Envelope> behind;
  for (int i = 0; i < 5; ++i) {
    behind.push_back(MakeEnvelope("bob", "alice", AppInner("t", std::to_string(i)), i + 2));
    f.router->Submit(behind.back());
  }
  // Credits come back although bob's handler strand is busy; handling keeps its order.
  REQUIRE(Eventually([&] { return f.acks.total() == 6; }));
  for (const v1::Envelope& e : behind) CHECK(f.acks.Acked(e));
  CHECK(handled.load() == 0);
  CHECK(Eventually([&] { return f.router->Counters().queued_work == 5; }));
  // The first of them came alone while bob's handler ran: its record committed at once.
  CHECK(f.opener.open_and_handle_calls() >= 2);
  release.Open();
  REQUIRE(Eventually([&] { return handled.load() == 6; }));
}

TEST_CASE("router: a handler that throws gets no final and its requester gets HANDLER_FAILED") {
  RouterFixture f;
  std::atomic<int> finals{0};
  f.router->SetHandler(
      kKeyRequest,
      [](HandlerContext&) -> absl::Status { throw std::runtime_error("boom at /secret/path"); },
      [&](FinalContext&) {
        ++finals;
        return absl::OkStatus();
      });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r-throw")));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).failed == 1; }));
  std::vector<v1::Inner> replies = RepliesTo(f, "bob", "r-throw");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error_reply().code() == error_code::kHandlerFailed);
  CHECK(replies[0].error_reply().detail().find("/secret") == std::string::npos);
  CHECK(finals.load() == 0);
  CHECK(f.opener.completed().at(1) == 1);
}

TEST_CASE("router: a handler's failure status becomes the requester's ErrorReply") {
  RouterFixture f;
  std::atomic<int> finals{0};
  auto final = [&](FinalContext&) {
    ++finals;
    return absl::OkStatus();
  };
  f.router->SetHandler(
      kKeyRequest,
      [](HandlerContext& ctx) -> absl::Status {
        if (ctx.inner().request_id() == "coded") {
          return ErrorReplyStatus(error_code::kBadParties, "parties must be in ascending order");
        }
        return absl::InternalError("store failure in /var/lib/nodelink/store.db");
      },
      final);
  f.router->SetHandler(
      kApp, [](HandlerContext&) { return absl::UnavailableError("one-way failure"); }, final);
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("coded")));
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("plain")));
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("one-way")));
  REQUIRE(Eventually([&] {
    return f.router->Counters().of(kKeyRequest).failed == 2 &&
           f.router->Counters().of(kApp).failed == 1;
  }));
  std::vector<v1::Inner> coded = RepliesTo(f, "bob", "coded");
  REQUIRE(coded.size() == 1);
  CHECK(coded[0].error_reply().code() == error_code::kBadParties);
  CHECK(coded[0].error_reply().detail() == "parties must be in ascending order");
  std::vector<v1::Inner> plain = RepliesTo(f, "bob", "plain");
  REQUIRE(plain.size() == 1);
  CHECK(plain[0].error_reply().code() == error_code::kHandlerFailed);
  CHECK(plain[0].error_reply().detail().find("store.db") == std::string::npos);
  CHECK(f.sender.sent_count() == 2);  // the one-way failure is answered by nobody
  CHECK(finals.load() == 0);
}

TEST_CASE("router: a handler past its deadline is ended by the sweep: TIMEOUT at once, no final") {
  RouterFixture f;
  Gate entered;
  Gate release;
  std::atomic<bool> saw_cancel{false};
  std::atomic<int> finals{0};
  f.router->SetHandler(
      kKeyRequest,
      [&](HandlerContext& ctx) {
        entered.Open();
        release.Wait();
        saw_cancel = ctx.IsCancelled();
        // Too late: the requester already has its ErrorReply.
        CHECK(ctx.Reply(KeyReply("late")).code() == absl::StatusCode::kFailedPrecondition);
        return absl::OkStatus();
      },
      [&](FinalContext&) {
        ++finals;
        return absl::OkStatus();
      });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("slow")));
  REQUIRE(entered.Wait());
  f.clock.Advance(999);
  f.router->Sweep();
  CHECK(RepliesTo(f, "bob", "slow").empty());
  f.clock.Advance(1);
  f.router->Sweep();
  // The requester is answered while the handler is still running.
  std::vector<v1::Inner> replies = RepliesTo(f, "bob", "slow");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].error_reply().code() == error_code::kTimeout);
  CHECK(f.router->Counters().of(kKeyRequest).timed_out == 1);
  release.Open();
  REQUIRE(Eventually([&] { return f.router->Counters().dispatches_in_progress == 0; }));
  REQUIRE(Eventually([&] { return saw_cancel.load(); }));
  CHECK(finals.load() == 0);
  CHECK(f.router->Counters().of(kKeyRequest).handled == 0);
  CHECK(RepliesTo(f, "bob", "slow").size() == 1);
  CHECK(f.opener.completed().at(1) == 1);
}

TEST_CASE("router: a final in progress is not interrupted by the deadline sweep") {
  RouterFixture f;
  Gate in_final;
  Gate release;
  f.router->SetHandler(
      kKeyRequest, [](HandlerContext&) { return absl::OkStatus(); },
      [&](FinalContext& ctx) {
        in_final.Open();
        release.Wait();
        return ctx.Reply(KeyReply("from-final"));
      });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r")));
  REQUIRE(in_final.Wait());
  f.clock.Advance(60'000);
  f.router->Sweep();
  f.router->Sweep();
  CHECK(f.router->Counters().of(kKeyRequest).timed_out == 0);
  CHECK(RepliesTo(f, "bob", "r").empty());
  release.Open();
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).handled == 1; }));
  std::vector<v1::Inner> replies = RepliesTo(f, "bob", "r");
  REQUIRE(replies.size() == 1);
  CHECK(replies[0].key_reply().context_id() == "from-final");
}

TEST_CASE("router: a final that fails answers HANDLER_FAILED and counts a failure") {
  RouterFixture f;
  f.router->SetHandler(
      kKeyRequest, [](HandlerContext&) { return absl::OkStatus(); },
      [](FinalContext&) { return absl::InternalError("commit failed"); });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r")));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).failed == 1; }));
  REQUIRE(RepliesTo(f, "bob", "r").size() == 1);
  CHECK(RepliesTo(f, "bob", "r")[0].error_reply().code() == error_code::kHandlerFailed);
}

TEST_CASE("router: an envelope the opener refuses never reaches a handler and is acknowledged") {
  RouterFixture f;
  std::atomic<int> handled{0};
  f.router->SetHandler(kApp, [&](HandlerContext&) {
    ++handled;
    return absl::OkStatus();
  });
  f.opener.RefuseType("tampered", messages::ReceiveCode::kDecryptFailed);
  f.router->Start();
  // PROTOCOL.md section 7 check 2: a message for another recipient (MISROUTED).
  v1::Envelope misrouted = MakeEnvelope("bob", "mallory", AppInner("t"));
  v1::Envelope tampered = MakeEnvelope("bob", "alice", AppInner("tampered"));
  v1::Envelope good = MakeEnvelope("bob", "alice", AppInner("t"));
  f.router->Submit(misrouted);
  f.router->Submit(tampered);
  f.router->Submit(good);
  REQUIRE(Eventually([&] { return f.router->Counters().of(kApp).handled == 1; }));
  CHECK(handled.load() == 1);
  CHECK(f.acks.Acked(misrouted));
  CHECK(f.acks.Acked(tampered));
  CHECK(f.acks.Acked(good));
  const RouterCounters c = f.router->Counters();
  CHECK(c.open_outcomes[static_cast<size_t>(messages::ReceiveCode::kMisrouted)] == 1);
  CHECK(c.open_outcomes[static_cast<size_t>(messages::ReceiveCode::kDecryptFailed)] == 1);
  CHECK(c.inbox_depth == 0);
}

TEST_CASE("router: acknowledgement waits for the durable outcome; the inbox bound is counted") {
  RouterOptions options = TestOptions(2);
  options.inbox_capacity = 4;
  RouterFixture f("alice", options, TestOpener::DoneMode::kHeld);
  std::atomic<int> handled{0};
  f.router->SetHandler(kApp, [&](HandlerContext&) {
    ++handled;
    return absl::OkStatus();
  });
  // Queued before Start, so none is alone: after Start the first could be taken before the
  // second is submitted, and a message alone is handled before its outcome is durable (the test
  // below); CI caught that race once (handled == 1).
  for (int i = 0; i < 6; ++i) f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t"), i + 1));
  f.router->Start();
  REQUIRE(Eventually([&] { return f.opener.held() == 6; }));
  // Opened, not yet durable: no Delivered, no handler.
  CHECK(f.acks.total() == 0);
  CHECK(handled.load() == 0);
  RouterCounters c = f.router->Counters();
  CHECK(c.inbox_depth == 6);
  CHECK(c.inbox_depth_max == 6);
  CHECK(c.inbox_overflow == 2);  // accepted anyway, never dropped
  CHECK(f.opener.ReleaseHeld() == 6);
  CHECK(f.acks.total() == 6);
  REQUIRE(Eventually([&] { return handled.load() == 6; }));
  c = f.router->Counters();
  CHECK(c.inbox_depth == 0);
  CHECK(c.acknowledged == 6);
}

TEST_CASE("router: an envelope alone is opened with OpenAlone, one of several with Open") {
  RouterFixture f("alice", TestOptions(2), TestOpener::DoneMode::kHeld);
  // Queued before Start: three unacknowledged at once, so none is alone.
  for (int i = 0; i < 3; ++i) f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t"), i + 1));
  f.router->Start();
  REQUIRE(Eventually([&] { return f.opener.held() == 3; }));
  CHECK(f.opener.alone_opens() == 0);
  CHECK(f.opener.ReleaseHeld() == 3);
  // Light load: the next one is the only envelope not yet acknowledged.
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t"), 4));
  REQUIRE(Eventually([&] { return f.opener.held() == 1; }));
  CHECK(f.opener.alone_opens() == 1);
  CHECK(f.opener.ReleaseHeld() == 1);
}

TEST_CASE("router: a message alone is handled before its outcome is durable, its receipt after") {
  RouterFixture f("alice", TestOptions(2), TestOpener::DoneMode::kHeld);
  f.router->SetHandler(kApp, [](HandlerContext&) { return absl::OkStatus(); });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t"), 1));
  // Counted once the dispatch ended and its inbox removal was queued.
  REQUIRE(Eventually([&] { return f.router->Counters().of(kApp).handled == 1; }));
  CHECK(f.opener.open_and_handle_calls() == 1);
  CHECK(f.acks.total() == 0);  // the outcome is held: not durable, so no receipt yet
  CHECK(f.opener.completed().count(1) == 1);
  CHECK(f.opener.ReleaseHeld() == 1);
  CHECK(f.acks.total() == 1);
  CHECK(f.router->Counters().inbox_depth == 0);
}

TEST_CASE("router: a message alone is never handled ahead of one whose outcome is still running") {
  std::mutex mu;
  std::vector<std::string> order;  // payloads, as handled
  const v1::Envelope second = MakeEnvelope("bob", "alice", AppInner("t", "1"), 2);
  Gate acking, release;
  std::thread releaser;
  RouterFixture f("alice", TestOptions(2), TestOpener::DoneMode::kHeld);
  struct EndRelease {  // before the router stops: it waits for the receipt held here
    Gate& release;
    std::thread& releaser;
    ~EndRelease() {
      release.Open();
      if (releaser.joinable()) releaser.join();
    }
  } end_release{release, releaser};
  f.router->SetHandler(kApp, [&](HandlerContext& ctx) {
    std::lock_guard lock(mu);
    order.push_back(ctx.inner().app().payload());
    return absl::OkStatus();
  });
  f.acks.before_ack = [&](const std::string& id) {
    if (id != second.message_id()) return;
    acking
        .Open();  // its outcome is being handled: the inbox depth is down, its dispatch not posted
    release.Wait();
  };
  // Two at once, so neither is alone; their outcomes are held until released, in open order.
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t", "0"), 1));
  f.router->Submit(second);
  f.router->Start();
  REQUIRE(Eventually([&] { return f.opener.held() == 2; }));
  CHECK(f.opener.alone_opens() == 0);
  releaser = std::thread([&] { f.opener.ReleaseHeld(); });  // stops inside the second's receipt
  REQUIRE(acking.Wait());
  // The next one is alone (the only unacknowledged envelope), and must not be handled before
  // "1", whose dispatch its outcome has not posted yet.
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t", "2"), 3));
  REQUIRE(Eventually([&] { return f.opener.alone_opens() == 1; }));
  CHECK(f.opener.open_and_handle_calls() == 0);
  release.Open();
  releaser.join();
  REQUIRE(Eventually([&] { return f.opener.held() == 1; }));
  CHECK(f.opener.ReleaseHeld() == 1);
  REQUIRE(Eventually([&] { return f.router->Counters().of(kApp).handled == 3; }));
  std::lock_guard lock(mu);
  CHECK(order == std::vector<std::string>{"0", "1", "2"});
}

TEST_CASE("router: 1,000 requests waiting for late data do not stall an unrelated message") {
  RouterFixture f("alice", TestOptions(2));
  // Secagg-style: key requests held until their context has started (PROTOCOL.md section 8).
  EventWaitExchange<std::string> started(
      f.clock, ExchangeOptions{.value_ttl_ms = 3'600'000, .keep_after_delivery = true});
  std::atomic<int> app_handled_while_waiting{0};
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    return ctx.Defer(started, {"ctx-1"}, ctx.deadline_ms(),
                     [](HandlerContext& c, WaitResult<std::string> r) -> absl::Status {
                       if (!r.all_arrived())
                         return ErrorReplyStatus(error_code::kTimeout, "context did not start");
                       return c.Reply(KeyReply(r.values.at("ctx-1")));
                     });
  });
  f.router->SetHandler(kApp, [&](HandlerContext&) {
    if (f.router->Counters().dispatches_in_progress >= 1000) ++app_handled_while_waiting;
    return absl::OkStatus();
  });
  f.router->Start();
  constexpr int kRequests = 1000;
  for (int i = 0; i < kRequests; ++i) {
    const std::string sender = "p" + std::to_string(i % 10);
    f.router->Submit(
        MakeEnvelope(sender, "alice", KeyRequest("k" + std::to_string(i)), i / 10 + 1));
  }
  REQUIRE(Eventually([&] { return f.router->Counters().dispatches_in_progress == kRequests; }));
  // From one of the senders whose requests wait, and from a new one.
  f.router->Submit(MakeEnvelope("p3", "alice", AppInner("unrelated"), 1000));
  f.router->Submit(MakeEnvelope("zed", "alice", AppInner("unrelated")));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kApp).handled == 2; }));
  CHECK(app_handled_while_waiting.load() == 2);
  CHECK(f.sender.sent_count() == 0);
  CHECK(f.router->Counters().dispatches_in_progress == kRequests);

  started.Post("ctx-1", "ctx-1-key");
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).handled == kRequests; }));
  CHECK(f.sender.sent_count() == kRequests);
  for (const auto& s : f.sender.sent()) CHECK(s.inner.key_reply().context_id() == "ctx-1-key");
  CHECK(f.router->Counters().dispatches_in_progress == 0);
}

TEST_CASE(
    "router: a deferred handler resumes with data posted before it waited, and may defer "
    "again") {
  RouterFixture f;
  EventWaitExchange<int> data(f.clock);
  data.Post("a", 1);
  std::atomic<int> finals{0};
  f.router->SetHandler(
      kKeyRequest,
      [&](HandlerContext& ctx) {
        CHECK(ctx.Defer<int>(data, {"a"}, ctx.deadline_ms(),
                             [&](HandlerContext& c, WaitResult<int> first) -> absl::Status {
                               c.state() = first.values.at("a");
                               return c.Defer<int>(data, {"b"}, c.deadline_ms(),
                                                   [](HandlerContext& c2, WaitResult<int> second) {
                                                     const int sum =
                                                         std::any_cast<int>(c2.state()) +
                                                         second.values.at("b");
                                                     return c2.Reply(KeyReply(std::to_string(sum)));
                                                   });
                             })
                  .ok());
        // One Defer per call.
        CHECK(ctx.Defer<int>(data, {"z"}, ctx.deadline_ms(), nullptr).code() ==
              absl::StatusCode::kFailedPrecondition);
        return absl::OkStatus();
      },
      [&](FinalContext&) {
        ++finals;
        return absl::OkStatus();
      });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r")));
  REQUIRE(Eventually([&] { return data.Stats().waits == 1; }));
  CHECK(finals.load() == 0);
  data.Post("b", 2);
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).handled == 1; }));
  CHECK(finals.load() == 1);
  REQUIRE(RepliesTo(f, "bob", "r").size() == 1);
  CHECK(RepliesTo(f, "bob", "r")[0].key_reply().context_id() == "3");
}

TEST_CASE("router: a deferred handler past its deadline gets TIMEOUT and its wait is dropped") {
  RouterFixture f;
  EventWaitExchange<int> data(f.clock);
  std::atomic<int> continuations{0};
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    return ctx.Defer<int>(data, {"never"}, ctx.deadline_ms() + 60'000,
                          [&](HandlerContext&, WaitResult<int>) {
                            ++continuations;
                            return absl::OkStatus();
                          });
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("held")));
  REQUIRE(Eventually([&] { return data.Stats().waits == 1; }));
  f.clock.Advance(1000);
  f.router->Sweep();
  REQUIRE(RepliesTo(f, "bob", "held").size() == 1);
  CHECK(RepliesTo(f, "bob", "held")[0].error_reply().code() == error_code::kTimeout);
  CHECK(data.Stats().waits == 0);  // cancelled
  data.Post("never", 1);
  CHECK(f.router->Counters().of(kKeyRequest).timed_out == 1);
  CHECK(continuations.load() == 0);
  CHECK(f.opener.completed().at(1) == 1);
}

TEST_CASE("router: a handler that defers and then fails drops its wait") {
  RouterFixture f;
  EventWaitExchange<int> data(f.clock);
  std::atomic<int> continuations{0};
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    CHECK(ctx.Defer(data, {"x"}, ctx.deadline_ms(),
                    [&](HandlerContext&, WaitResult<int>) {
                      ++continuations;
                      return absl::OkStatus();
                    })
              .ok());
    return ErrorReplyStatus(error_code::kNotAParty, "bob is not a party of ctx");
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r")));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).failed == 1; }));
  REQUIRE(RepliesTo(f, "bob", "r").size() == 1);
  CHECK(RepliesTo(f, "bob", "r")[0].error_reply().code() == error_code::kNotAParty);
  CHECK(data.Stats().waits == 0);
  data.Post("x", 1);
  CHECK(continuations.load() == 0);
}

TEST_CASE("router: a continuation that sees its wait expire can fail with TIMEOUT") {
  RouterFixture f;
  EventWaitExchange<int> data(f.clock);
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    return ctx.Defer<int>(data, {"x"}, f.clock.NowMs() + 100,
                          [](HandlerContext&, WaitResult<int> r) -> absl::Status {
                            if (r.all_arrived()) return absl::OkStatus();
                            return absl::DeadlineExceededError("x did not arrive");
                          });
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r")));
  REQUIRE(Eventually([&] { return data.Stats().waits == 1; }));
  f.clock.Advance(100);
  data.Sweep();  // the exchange's own sweep (the router's deadline is still 900 ms away)
  REQUIRE(Eventually([&] { return RepliesTo(f, "bob", "r").size() == 1; }));
  CHECK(RepliesTo(f, "bob", "r")[0].error_reply().code() == error_code::kTimeout);
  CHECK(f.router->Counters().of(kKeyRequest).failed == 1);
}

TEST_CASE("router: no handler gives UNKNOWN_TYPE to a request and a count for a one-way message") {
  RouterFixture f;
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r")));
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t")));
  REQUIRE(Eventually([&] {
    return f.router->Counters().of(kKeyRequest).no_handler == 1 &&
           f.router->Counters().of(kApp).no_handler == 1;
  }));
  REQUIRE(f.sender.sent_count() == 1);
  CHECK(RepliesTo(f, "bob", "r")[0].error_reply().code() == error_code::kUnknownType);
  CHECK(f.opener.completed().size() == 2);
}

TEST_CASE("router: a request past its deadline is refused with EXPIRED without its handler") {
  RouterFixture f;
  std::atomic<int> handled{0};
  f.router->SetHandler(kKeyRequest, [&](HandlerContext&) {
    ++handled;
    return absl::OkStatus();
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("late", f.clock.NowMs() - 1)));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).expired == 1; }));
  CHECK(handled.load() == 0);
  REQUIRE(RepliesTo(f, "bob", "late").size() == 1);
  CHECK(RepliesTo(f, "bob", "late")[0].error_reply().code() == error_code::kExpired);
}

TEST_CASE("router: a repeated request is answered from the answered log, not handled again") {
  RouterFixture f;
  std::atomic<int> handled{0};
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    ++handled;
    return ctx.Reply(KeyReply("once-" + std::to_string(handled.load())));
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("same"), 1));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).handled == 1; }));
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("same"), 2));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).answered_from_log == 1; }));
  CHECK(handled.load() == 1);
  std::vector<v1::Inner> replies = RepliesTo(f, "bob", "same");
  REQUIRE(replies.size() == 2);
  CHECK(replies[0].SerializeAsString() == replies[1].SerializeAsString());
  // Another peer using the same request_id is a different request.
  f.router->Submit(MakeEnvelope("carol", "alice", KeyRequest("same")));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).handled == 2; }));
  // The record expires after the retention (queue TTL + 2 x max skew).
  f.clock.Advance(TestOptions().answered_retention_ms);
  f.router->Sweep();
  CHECK(f.answered.size() == 0);
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("same"), 3));
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).handled == 3; }));
}

TEST_CASE("router: a request repeated while its first copy waits is not handled twice") {
  RouterFixture f;
  EventWaitExchange<int> data(f.clock);
  std::atomic<int> started{0};
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    ++started;
    return ctx.Defer<int>(data, {"d"}, ctx.deadline_ms(), [](HandlerContext& c, WaitResult<int>) {
      return c.Reply(KeyReply("done"));
    });
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("dup"), 1));
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("dup"), 2));
  REQUIRE(Eventually([&] { return f.router->Counters().repeats_in_progress == 1; }));
  data.Post("d", 1);
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).handled == 1; }));
  CHECK(started.load() == 1);
  CHECK(RepliesTo(f, "bob", "dup").size() == 1);
  CHECK(f.opener.completed().size() == 2);
}

TEST_CASE("router: Start dispatches the inbox left from before a restart") {
  RouterFixture f;
  overlay::InboxMessage pending;
  pending.inbox_id = 77;
  pending.sender = "bob";
  pending.inner = AppInner("t", "from-before");
  f.opener.SetPendingInbox({pending});
  std::atomic<int> handled{0};
  f.router->SetHandler(kApp, [&](HandlerContext& ctx) {
    CHECK(ctx.inner().app().payload() == "from-before");
    ++handled;
    return absl::OkStatus();
  });
  f.router->Start();
  REQUIRE(Eventually([&] { return f.opener.completed().count(77) == 1; }));
  CHECK(handled.load() == 1);
  CHECK(f.acks.total() == 0);  // acknowledged before the restart
}

TEST_CASE("router: Stop cancels waiting handlers: ErrorReply, counted, inbox row kept") {
  RouterFixture f;
  EventWaitExchange<int> data(f.clock);
  std::atomic<int> continuations{0};
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    return ctx.Defer<int>(data, {"never"}, ctx.deadline_ms(),
                          [&](HandlerContext&, WaitResult<int>) {
                            ++continuations;
                            return absl::OkStatus();
                          });
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r")));
  REQUIRE(Eventually([&] { return data.Stats().waits == 1; }));
  f.router->Stop();
  f.router->Stop();  // idempotent
  CHECK(f.router->Counters().of(kKeyRequest).cancelled == 1);
  REQUIRE(RepliesTo(f, "bob", "r").size() == 1);
  CHECK(RepliesTo(f, "bob", "r")[0].error_reply().code() == error_code::kHandlerFailed);
  CHECK(data.Stats().waits == 0);
  CHECK(f.opener.completed().empty());  // handled again after a restart
  data.Post("never", 1);
  CHECK(continuations.load() == 0);
  // After Stop nothing is taken.
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t")));
  CHECK(f.router->Counters().submitted_after_stop == 1);
}

TEST_CASE("router: Reply on a one-way message is refused") {
  RouterFixture f;
  std::atomic<bool> checked{false};
  f.router->SetHandler(kApp, [&](HandlerContext& ctx) {
    CHECK(ctx.Reply(KeyReply("x")).code() == absl::StatusCode::kFailedPrecondition);
    checked = true;
    return absl::OkStatus();
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", AppInner("t")));
  REQUIRE(Eventually([&] { return checked.load(); }));
  CHECK(f.sender.sent_count() == 0);
}

TEST_CASE("router: options out of range are refused") {
  core::ManualClock clock;
  testing::TestOpener opener("a", clock);
  testing::LoopSender sender("a");
  InMemoryAnsweredLog answered;
  RouterOptions options = TestOptions();
  options.workers = 0;
  CHECK(Router::Create(options, opener, sender, answered, clock, [](ByteView) {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  options = TestOptions();
  options.inbox_capacity = 0;
  CHECK(Router::Create(options, opener, sender, answered, clock, [](ByteView) {}).status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(Router::Create(TestOptions(), opener, sender, answered, clock, nullptr).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("router: the sweep timer ends a handler past its deadline without a manual sweep") {
  RouterOptions options = TestOptions();
  options.sweep_interval_ms = 1;
  RouterFixture f("alice", options);
  EventWaitExchange<int> data(f.clock);
  f.router->SetHandler(kKeyRequest, [&](HandlerContext& ctx) {
    return ctx.Defer<int>(data, {"never"}, ctx.deadline_ms(),
                          [](HandlerContext&, WaitResult<int>) { return absl::OkStatus(); });
  });
  f.router->Start();
  f.router->Submit(MakeEnvelope("bob", "alice", KeyRequest("r")));
  REQUIRE(Eventually([&] { return data.Stats().waits == 1; }));
  f.clock.Advance(1000);
  REQUIRE(Eventually([&] { return f.router->Counters().of(kKeyRequest).timed_out == 1; }));
}

}  // namespace
}  // namespace nodelink::router

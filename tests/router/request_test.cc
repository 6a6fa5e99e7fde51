#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <string>

#include "router/error_reply.h"
#include "router/router.h"
#include "router_fixture.h"
#include "router_test_support.h"

namespace nodelink::router {
namespace {

using testing::AppInner;
using testing::Eventually;
using testing::MakeEnvelope;
using testing::RouterFixture;
using testing::TestOpener;
using testing::TestOptions;

constexpr auto kKeyRequest = v1::Inner::kKeyRequest;

v1::Inner KeyRequestBody() {
  v1::Inner inner;
  inner.mutable_key_request()->set_context_id("ctx");
  return inner;
}

v1::Inner KeyReplyFor(const std::string& request_id, const std::string& context) {
  v1::Inner inner;
  inner.set_request_id(request_id);
  inner.mutable_key_reply()->set_context_id(context);
  return inner;
}

template <class T>
bool Ready(const std::future<T>& future) {
  return future.wait_for(std::chrono::seconds(0)) == std::future_status::ready;
}

template <class T>
T Get(std::future<T>& future) {
  REQUIRE(future.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  return future.get();
}

// Alice, bob and carol on loopback, sharing one ManualClock. Dave is never connected.
struct Federation {
  Federation() {
    alice.sender.Connect("bob", bob.router.get());
    alice.sender.Connect("carol", carol.router.get());
    bob.sender.Connect("alice", alice.router.get());
    bob.sender.Connect("carol", carol.router.get());
    carol.sender.Connect("alice", alice.router.get());
    carol.sender.Connect("bob", bob.router.get());
  }
  ~Federation() {
    // Stop every router before any is destroyed: their senders point at each other.
    alice.router->Stop();
    bob.router->Stop();
    carol.router->Stop();
  }
  void StartAll() {
    alice.router->Start();
    bob.router->Start();
    carol.router->Start();
  }
  uint64_t Deadline(uint64_t in_ms = 5000) const { return clock.NowMs() + in_ms; }

  core::ManualClock clock;
  RouterFixture alice{"alice", TestOptions(), TestOpener::DoneMode::kInline, &clock};
  RouterFixture bob{"bob", TestOptions(), TestOpener::DoneMode::kInline, &clock};
  RouterFixture carol{"carol", TestOptions(), TestOpener::DoneMode::kInline, &clock};
};

void AnswerKeyRequests(RouterFixture& f, const std::string& context) {
  f.router->SetHandler(kKeyRequest, [context](HandlerContext& ctx) {
    v1::Inner reply;
    reply.mutable_key_reply()->set_context_id(context);
    return ctx.Reply(reply);
  });
}

TEST_CASE("request: a reply from the peer resolves the request") {
  Federation fed;
  AnswerKeyRequests(fed.bob, "from-bob");
  fed.StartAll();
  const uint64_t deadline = fed.Deadline();
  auto future = fed.alice.router->Request("bob", KeyRequestBody(), deadline);
  RequestOutcome outcome = Get(future);
  CHECK(outcome.kind == RequestOutcome::Kind::kReply);
  CHECK(outcome.ok());
  CHECK(outcome.status.ok());
  CHECK(outcome.peer == "bob");
  CHECK(outcome.reply.key_reply().context_id() == "from-bob");
  CHECK(outcome.request_id.size() == 32);  // 16 random bytes, hex
  REQUIRE(fed.alice.sender.SentTo("bob").size() == 1);
  const v1::Inner sent = fed.alice.sender.SentTo("bob")[0].inner;
  CHECK(sent.request_id() == outcome.request_id);
  CHECK(sent.deadline_ms() == deadline);
  // Counted by the worker right after the future was resolved.
  CHECK(Eventually([&] { return fed.alice.router->Counters().replies_matched == 1; }));
  CHECK(fed.alice.router->Counters().requests_replied == 1);
  // Request ids are fresh per request.
  auto second = fed.alice.router->Request("bob", KeyRequestBody(), deadline);
  CHECK(Get(second).request_id != outcome.request_id);
}

TEST_CASE("request: the peer's ErrorReply is a typed outcome, not a timeout") {
  Federation fed;
  fed.bob.router->SetHandler(kKeyRequest, [](HandlerContext&) {
    return ErrorReplyStatus(error_code::kNotAuthorized, "alice is not a researcher here");
  });
  fed.StartAll();
  auto refused = fed.alice.router->Request("bob", KeyRequestBody(), fed.Deadline());
  RequestOutcome outcome = Get(refused);
  CHECK(outcome.kind == RequestOutcome::Kind::kErrorReply);
  CHECK(outcome.answered());
  CHECK(outcome.error_reply().code() == error_code::kNotAuthorized);
  CHECK(outcome.status.code() == absl::StatusCode::kFailedPrecondition);
  // No handler at all: UNKNOWN_TYPE.
  v1::Inner setup;
  setup.mutable_secagg_setup_request()->set_context_id("c");
  auto unknown = fed.alice.router->Request("carol", setup, fed.Deadline());
  RequestOutcome u = Get(unknown);
  CHECK(u.kind == RequestOutcome::Kind::kErrorReply);
  CHECK(u.error_reply().code() == error_code::kUnknownType);
}

TEST_CASE("request: silence times out at the sweep after the deadline; a late reply is counted") {
  Federation fed;
  fed.alice.sender.SetSilent("bob");
  fed.StartAll();
  auto future = fed.alice.router->Request("bob", KeyRequestBody(), fed.Deadline(3000));
  fed.clock.Advance(2999);
  fed.alice.router->Sweep();
  CHECK_FALSE(Ready(future));
  fed.clock.Advance(1);
  fed.alice.router->Sweep();
  RequestOutcome outcome = Get(future);
  CHECK(outcome.kind == RequestOutcome::Kind::kTimeout);
  CHECK(outcome.status.code() == absl::StatusCode::kDeadlineExceeded);
  fed.alice.router->Submit(MakeEnvelope("bob", "alice", KeyReplyFor(outcome.request_id, "late")));
  REQUIRE(Eventually([&] { return fed.alice.router->Counters().replies_unmatched == 1; }));
  CHECK(fed.alice.sender.SentTo("bob").size() == 1);  // a reply is never answered
}

TEST_CASE("request: a send failure resolves at once with the overlay's reason") {
  Federation fed;
  fed.alice.sender.SetFailing("bob", absl::UnavailableError("channel setup with bob timed out"));
  fed.StartAll();
  auto future = fed.alice.router->Request("bob", KeyRequestBody(), fed.Deadline());
  RequestOutcome outcome = Get(future);
  CHECK(outcome.kind == RequestOutcome::Kind::kSendFailed);
  CHECK(outcome.status.message() == "channel setup with bob timed out");
  CHECK(fed.alice.router->Counters().requests_send_failed == 1);
}

TEST_CASE("request: a deadline already past resolves as a timeout without sending") {
  Federation fed;
  fed.StartAll();
  auto future = fed.alice.router->Request("bob", KeyRequestBody(), fed.clock.NowMs());
  CHECK(Get(future).kind == RequestOutcome::Kind::kTimeout);
  CHECK(fed.alice.sender.sent_count() == 0);
}

TEST_CASE("request: a reply with the request_id from another peer is ignored and counted") {
  Federation fed;
  fed.alice.sender.SetSilent("bob");
  fed.StartAll();
  auto future = fed.alice.router->Request("bob", KeyRequestBody(), fed.Deadline());
  REQUIRE(fed.alice.sender.SentTo("bob").size() == 1);
  const std::string request_id = fed.alice.sender.SentTo("bob")[0].inner.request_id();
  fed.alice.router->Submit(MakeEnvelope("carol", "alice", KeyReplyFor(request_id, "forged")));
  REQUIRE(Eventually([&] { return fed.alice.router->Counters().replies_wrong_sender == 1; }));
  CHECK_FALSE(Ready(future));
  fed.alice.router->Submit(MakeEnvelope("bob", "alice", KeyReplyFor(request_id, "genuine")));
  RequestOutcome outcome = Get(future);
  CHECK(outcome.kind == RequestOutcome::Kind::kReply);
  CHECK(outcome.reply.key_reply().context_id() == "genuine");
}

TEST_CASE("request: an AppMessage is a reply only when it matches a pending request") {
  Federation fed;
  fed.bob.router->SetHandler(v1::Inner::kApp, [](HandlerContext& ctx) {
    return ctx.Reply(AppInner("pong", ctx.inner().app().payload()));
  });
  std::atomic<int> alice_app_handled{0};
  fed.alice.router->SetHandler(v1::Inner::kApp, [&](HandlerContext&) {
    ++alice_app_handled;
    return absl::OkStatus();
  });
  fed.StartAll();
  auto future = fed.alice.router->Request("bob", AppInner("ping", "42"), fed.Deadline());
  RequestOutcome outcome = Get(future);
  CHECK(outcome.kind == RequestOutcome::Kind::kReply);
  CHECK(outcome.reply.app().type() == "pong");
  CHECK(outcome.reply.app().payload() == "42");
  CHECK(alice_app_handled.load() == 0);
  // A repeated copy of that reply (for example resent after a lost channel) is a late reply, not a
  // request: answering it would start a loop between the two answered logs.
  v1::Inner copy = outcome.reply;
  fed.alice.router->Submit(MakeEnvelope("bob", "alice", copy));
  REQUIRE(Eventually([&] { return fed.alice.router->Counters().replies_unmatched == 1; }));
  fed.alice.router->Submit(MakeEnvelope("carol", "alice", copy));
  REQUIRE(Eventually([&] { return fed.alice.router->Counters().replies_wrong_sender == 1; }));
  CHECK(alice_app_handled.load() == 0);
  CHECK(fed.alice.sender.SentTo("bob").size() == 1);
  // An AppMessage with a request_id this node never used is an ordinary message (a request).
  v1::Inner app = AppInner("hello");
  app.set_request_id("bob-req-1");
  fed.alice.router->Submit(MakeEnvelope("bob", "alice", app));
  REQUIRE(Eventually([&] { return alice_app_handled.load() == 1; }));
}

TEST_CASE("request: Stop resolves pending requests as cancelled") {
  Federation fed;
  fed.alice.sender.SetSilent("bob");
  fed.StartAll();
  auto future = fed.alice.router->Request("bob", KeyRequestBody(), fed.Deadline());
  fed.alice.router->Stop();
  RequestOutcome outcome = Get(future);
  CHECK(outcome.kind == RequestOutcome::Kind::kCancelled);
  CHECK(outcome.status.code() == absl::StatusCode::kCancelled);
  auto after = fed.alice.router->Request("bob", KeyRequestBody(), fed.Deadline());
  CHECK(Get(after).kind == RequestOutcome::Kind::kCancelled);
}

TEST_CASE("fan-out: every send is issued at once and a silent party is reported exactly") {
  Federation fed;
  AnswerKeyRequests(fed.bob, "bob-key");
  AnswerKeyRequests(fed.carol, "carol-key");
  fed.alice.sender.SetSilent("dave");
  fed.StartAll();
  for (bool fail_if_missing : {false, true}) {
    CAPTURE(fail_if_missing);
    fed.alice.sender.HoldDone(true);
    const size_t sent_before = fed.alice.sender.sent_count();
    auto future = fed.alice.router->SendAll(std::vector<std::string>{"bob", "carol", "dave"},
                                            KeyRequestBody(), fed.Deadline(2000),
                                            FanOutOptions{.fail_if_any_missing = fail_if_missing});
    // All three requests were handed to the overlay before any of their sends completed.
    CHECK(fed.alice.sender.sent_count() == sent_before + 3);
    fed.alice.sender.HoldDone(false);
    CHECK(fed.alice.sender.ReleaseDone() == 3);
    REQUIRE(Eventually([&] {
      return fed.alice.router->Counters().replies_matched == (fail_if_missing ? 4u : 2u);
    }));
    CHECK_FALSE(Ready(future));
    fed.clock.Advance(2000);
    fed.alice.router->Sweep();
    FanOutResult result = Get(future);
    CHECK(result.missing == std::vector<std::string>{"dave"});
    REQUIRE(result.outcomes.size() == 3);
    CHECK(result.outcomes.at("bob").reply.key_reply().context_id() == "bob-key");
    CHECK(result.outcomes.at("carol").reply.key_reply().context_id() == "carol-key");
    CHECK(result.outcomes.at("dave").kind == RequestOutcome::Kind::kTimeout);
    if (fail_if_missing) {
      CHECK(result.status.code() == absl::StatusCode::kDeadlineExceeded);
      CHECK(std::string(result.status.message()).find("dave") != std::string::npos);
      CHECK(std::string(result.status.message()).find("bob") == std::string::npos);
    } else {
      CHECK(result.status.ok());
    }
  }
}

TEST_CASE("fan-out: per-party messages; an ErrorReply is an answer, a send failure is not") {
  Federation fed;
  AnswerKeyRequests(fed.bob, "bob-key");
  fed.carol.router->SetHandler(kKeyRequest, [](HandlerContext& ctx) {
    CHECK(ctx.inner().key_request().context_id() == "for-carol");
    return ErrorReplyStatus(error_code::kParamsMismatch, "digest differs");
  });
  fed.alice.sender.SetFailing("erin", absl::UnavailableError("hub rejected: UNKNOWN_DESTINATION"));
  fed.StartAll();
  std::map<std::string, v1::Inner> per_party;
  per_party["bob"] = KeyRequestBody();
  per_party["carol"] = KeyRequestBody();
  per_party["carol"].mutable_key_request()->set_context_id("for-carol");
  per_party["erin"] = KeyRequestBody();
  std::promise<FanOutResult> promise;
  fed.alice.router->SendAll(per_party, fed.Deadline(), FanOutOptions{.fail_if_any_missing = true},
                            [&](FanOutResult r) { promise.set_value(std::move(r)); });
  auto future = promise.get_future();
  FanOutResult result = Get(future);
  CHECK(result.outcomes.at("bob").ok());
  CHECK(result.outcomes.at("carol").kind == RequestOutcome::Kind::kErrorReply);
  CHECK(result.outcomes.at("carol").error_reply().code() == error_code::kParamsMismatch);
  CHECK(result.outcomes.at("erin").kind == RequestOutcome::Kind::kSendFailed);
  CHECK(result.missing == std::vector<std::string>{"erin"});
  CHECK_FALSE(result.status.ok());
  // Nobody to ask: resolves at once.
  auto empty = fed.alice.router->SendAll(std::map<std::string, v1::Inner>{}, fed.Deadline());
  CHECK(Get(empty).outcomes.empty());
}

}  // namespace
}  // namespace nodelink::router

// OpenAndHandle, the receive path of a message that came alone (overlay/delivery.h): handled
// before its record commits, that record placed in the handler's CallerScope so that one
// transaction takes both, the outcome (and so the receipt) after; and what a failure in between
// costs: the message is pushed again and handled again, never lost (PROTOCOL.md section 6).
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "overlay_fixture.h"
#include "usual_path.h"

namespace nodelink::overlay {
namespace {

using messages::ReceiveCode;
using testing::Federation;
using testing::TestNode;
using testing::UsualPathInSomeRun;

// Sets up a channel from node-a to node-b and returns the next message from a, queued for b,
// with nothing of b's own still committing.
v1::Envelope NextOnNewChannel(Federation& fed, const std::string& payload) {
  fed.SendApp(fed.node("node-a"), "node-b", "channel up");
  fed.relay().Pump();
  REQUIRE(fed.node("node-b").ReceivedPayloads().size() == 1);
  fed.SendApp(fed.node("node-a"), "node-b", payload);
  std::vector<v1::Envelope> queued = fed.relay().Take("node-b", 1);
  REQUIRE(queued.size() == 1);
  fed.node("node-b").manager->Flush();
  return queued[0];
}

TEST_CASE("a message alone is handled first, then recorded with the handler's outcome at once") {
  CHECK(UsualPathInSomeRun([] {
    Federation fed;
    fed.AddNode("node-a");
    TestNode& b = fed.AddNode("node-b");
    const v1::Envelope next = NextOnNewChannel(fed, "second");
    const uint64_t transactions = b.manager->counters().commit_transactions;
    const size_t rows_before = b.journal->inbox_rows_written.load();
    std::optional<InboxMessage> handled;
    std::atomic<bool> outcome_ran{false};
    std::optional<OpenOutcome> outcome;
    std::thread::id outcome_on;
    bool outcome_before_placed = true;
    b.manager->OpenAndHandle(
        next,
        [&](InboxMessage message, const std::function<void()>& place_record) {
          CommitQueue::CallerScope commit_after;  // as the router's dispatch
          b.manager->Complete(message.inbox_id);  // the handler's outcome
          handled = std::move(message);
          outcome_before_placed = outcome_ran.load();
          place_record();
        },
        [&](OpenOutcome o) {
          outcome_on = std::this_thread::get_id();
          outcome = std::move(o);
          outcome_ran = true;
        });
    const bool outcome_on_return = outcome_ran.load();
    b.manager->Flush();
    // Whoever commits: handled once; the outcome once its record is durable, without the message.
    REQUIRE(handled.has_value());
    CHECK(handled->inner.app().payload() == "second");
    REQUIRE(outcome.has_value());
    CHECK(outcome->code == ReceiveCode::kOk);
    CHECK_FALSE(outcome->message.has_value());
    const bool usual = outcome_on_return && !outcome_before_placed &&
                       outcome_on == std::this_thread::get_id() &&
                       b.manager->counters().commit_transactions == transactions + 1 &&
                       b.journal->inbox_rows_written.load() == rows_before;  // put and removed
    // The seq mark is durable and no inbox row is left: after a restart the same envelope is a
    // duplicate, and nothing waits to be handled again.
    fed.Restart(b);
    CHECK(b.manager->PendingInbox().empty());
    CHECK(fed.relay().Deliver(next) == ReceiveCode::kDuplicate);
    return usual;
  }));
}

TEST_CASE("a record not placed yet commits with the next commit, its outcome then") {
  Federation fed;
  fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  const v1::Envelope next = NextOnNewChannel(fed, "slow");
  std::function<void()> place_later;
  std::atomic<bool> outcome{false};
  b.manager->OpenAndHandle(
      next,
      [&](InboxMessage, std::function<void()> place_record) {
        place_later = std::move(place_record);  // a first step still running
      },
      [&](OpenOutcome) { outcome = true; });
  b.manager->Maintain();  // any other commit (here the maintenance pass) takes the record along
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!outcome.load() && std::chrono::steady_clock::now() < limit) std::this_thread::yield();
  CHECK(outcome.load());  // no Flush: the maintenance pass's commit ran it
  place_later();          // placing it afterwards is harmless
  b.manager->Flush();
}

TEST_CASE("a message handled before its record failed to commit is handled again, not lost") {
  Federation fed;
  fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  const v1::Envelope next = NextOnNewChannel(fed, "second");
  b.journal->fail_commits = true;  // the record will not commit: a crash after the handler ran
  int handled = 0;
  bool outcome = false;
  b.manager->OpenAndHandle(
      next,
      [&](InboxMessage message, const std::function<void()>& place_record) {
        ++handled;
        b.manager->Complete(message.inbox_id);
        place_record();
      },
      [&](OpenOutcome) { outcome = true; });
  b.manager->Flush();
  CHECK(handled == 1);
  CHECK_FALSE(outcome);  // fail-stop: no outcome, so no receipt, and the hub keeps the envelope
  fed.Restart(b);
  CHECK(b.manager->PendingInbox().empty());
  CHECK(fed.relay().Deliver(next) == ReceiveCode::kOk);  // pushed again: at-least-once
  CHECK(b.ReceivedPayloads().back() == "second");
  CHECK(fed.relay().Deliver(next) == ReceiveCode::kDuplicate);
}

TEST_CASE("a message handled first whose handler has not finished stays in the inbox") {
  Federation fed;
  fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  const v1::Envelope next = NextOnNewChannel(fed, "unfinished");
  bool outcome = false;
  b.manager->OpenAndHandle(
      next, [](InboxMessage, const std::function<void()>& place_record) { place_record(); },
      [&](OpenOutcome) { outcome = true; });  // the handler goes on after its first step
  b.manager->Flush();
  CHECK(outcome);
  fed.Restart(b);  // as a crash before the handler finished
  const std::vector<InboxMessage> pending = b.manager->PendingInbox();
  REQUIRE(pending.size() == 1);
  CHECK(pending[0].inner.app().payload() == "unfinished");
}

TEST_CASE("a refusal handed to OpenAndHandle goes to its outcome alone, never to the handler") {
  Federation fed;
  fed.AddNode("node-a");
  TestNode& b = fed.AddNode("node-b");
  const v1::Envelope next = NextOnNewChannel(fed, "second");
  REQUIRE(fed.relay().Deliver(next) == ReceiveCode::kOk);
  std::optional<ReceiveCode> code;
  bool handled = false;
  b.manager->OpenAndHandle(
      next, [&](InboxMessage, const std::function<void()>&) { handled = true; },
      [&](OpenOutcome o) { code = o.code; });
  b.manager->Flush();
  CHECK_FALSE(handled);
  CHECK(code == ReceiveCode::kDuplicate);
}

}  // namespace
}  // namespace nodelink::overlay

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <vector>

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

TEST_CASE("stress: many senders, several workers, batched commits: order and one ack each") {
  constexpr int kSenders = 8;
  constexpr int kPerSender = 1000;
  constexpr int kTotal = kSenders * kPerSender;
  RouterOptions options = TestOptions(4);
  options.inbox_capacity = kTotal;
  RouterFixture f("alice", options, TestOpener::DoneMode::kCommitThread);
  EventWaitExchange<int> tick(f.clock, ExchangeOptions{.keep_after_delivery = true});

  std::mutex mu;
  std::map<std::string, std::vector<int>> order;
  std::map<std::string, int> running;
  std::atomic<int> overlapping{0};
  std::atomic<int> finals{0};
  auto record = [&](const std::string& sender, int n) {
    std::lock_guard lock(mu);
    if (running[sender] != 0) ++overlapping;
    order[sender].push_back(n);
  };
  f.router->SetHandler(
      v1::Inner::kApp,
      [&](HandlerContext& ctx) -> absl::Status {
        const int n = std::stoi(ctx.inner().app().payload());
        record(ctx.sender(), n);
        // Every 10th message defers on the exchange (posted already: resumes at once, later on
        // the same strand), so continuations interleave with the strand's next messages.
        if (n % 10 == 0) {
          return ctx.Defer<int>(
              tick, {"go"}, ctx.deadline_ms(), [](HandlerContext&, WaitResult<int> r) {
                return r.all_arrived() ? absl::OkStatus() : absl::InternalError("no tick");
              });
        }
        return absl::OkStatus();
      },
      [&](FinalContext&) {
        ++finals;
        return absl::OkStatus();
      });
  tick.Post("go", 1);
  f.router->Start();

  std::vector<v1::Envelope> envelopes;
  envelopes.reserve(kTotal);
  for (int i = 0; i < kPerSender; ++i) {
    for (int s = 0; s < kSenders; ++s) {
      envelopes.push_back(MakeEnvelope("peer" + std::to_string(s), "alice",
                                       AppInner("t", std::to_string(i)), i + 1));
    }
  }
  // Two transport threads would break hub order per sender; one thread submits, as the transport.
  for (const v1::Envelope& e : envelopes) f.router->Submit(e);

  REQUIRE(Eventually([&] { return finals.load() == kTotal; }, std::chrono::seconds(120)));
  REQUIRE(Eventually([&] { return f.router->Counters().dispatches_in_progress == 0; }));
  const RouterCounters c = f.router->Counters();
  CHECK(c.of(v1::Inner::kApp).handled == static_cast<uint64_t>(kTotal));
  CHECK(c.of(v1::Inner::kApp).failed == 0);
  CHECK(c.acknowledged == static_cast<uint64_t>(kTotal));
  CHECK(c.inbox_depth == 0);
  CHECK(c.inbox_overflow == 0);
  CHECK(f.acks.total() == static_cast<size_t>(kTotal));
  CHECK(f.acks.repeated() == 0);
  size_t acked = 0;
  for (const v1::Envelope& e : envelopes) acked += f.acks.Acked(e) ? 1 : 0;
  CHECK(acked == static_cast<size_t>(kTotal));
  CHECK(f.opener.overlapping_opens() == 0);
  CHECK(overlapping.load() == 0);
  const std::map<uint64_t, int> completed = f.opener.completed();
  CHECK(completed.size() == static_cast<size_t>(kTotal));
  for (const auto& [id, count] : completed) CHECK(count == 1);
  std::vector<int> expected(kPerSender);
  for (int i = 0; i < kPerSender; ++i) expected[i] = i;
  std::lock_guard lock(mu);
  REQUIRE(order.size() == static_cast<size_t>(kSenders));
  for (const auto& [sender, seen] : order) {
    CAPTURE(sender);
    CHECK(seen == expected);
  }
}

}  // namespace
}  // namespace nodelink::router

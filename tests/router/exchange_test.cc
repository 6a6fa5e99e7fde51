#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.h"
#include "router/event_wait_exchange.h"
#include "router_test_support.h"

namespace nodelink::router {
namespace {

using testing::Eventually;

struct Captured {
  std::optional<WaitResult<int>> result;
  int calls = 0;
  EventWaitExchange<int>::Callback Callback() {
    return [this](WaitResult<int> r) {
      result = std::move(r);
      ++calls;
    };
  }
};

TEST_CASE("exchange: a value posted before the wait completes the wait at once") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  CHECK(exchange.Post("a", 1) == PostResult::kStored);
  CHECK(exchange.Post("b", 2) == PostResult::kStored);
  Captured c;
  exchange.WaitAsync({"a", "b"}, clock.NowMs() + 1000, c.Callback());
  REQUIRE(c.calls == 1);
  CHECK(c.result->all_arrived());
  CHECK(c.result->values.at("a") == 1);
  CHECK(c.result->values.at("b") == 2);
  // Removed once delivered (the default): a second wait does not see them.
  CHECK_FALSE(exchange.Has("a"));
  Captured c2;
  exchange.WaitAsync({"a"}, clock.NowMs() + 1000, c2.Callback());
  CHECK(c2.calls == 0);
  CHECK(exchange.Stats().waits == 1);
}

TEST_CASE("exchange: a value posted after the wait completes it from the posting thread") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  Captured c;
  exchange.WaitAsync({"x"}, clock.NowMs() + 1000, c.Callback());
  CHECK(c.calls == 0);
  CHECK(exchange.Post("x", 7) == PostResult::kTaken);
  REQUIRE(c.calls == 1);
  CHECK(c.result->end == WaitEnd::kAllArrived);
  CHECK(c.result->values.at("x") == 7);
  CHECK(exchange.Stats().values == 0);  // consumed
  // A second post of the same id after delivery waits for a new wait.
  CHECK(exchange.Post("x", 8) == PostResult::kStored);
  CHECK(c.calls == 1);
}

TEST_CASE("exchange: partial arrival is reported at the deadline by a sweep, not by a post") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  Captured c;
  exchange.WaitAsync({"a", "b", "c"}, clock.NowMs() + 500, c.Callback());
  CHECK(exchange.Post("a", 1) == PostResult::kTaken);
  CHECK(exchange.Post("c", 3) == PostResult::kTaken);
  exchange.Sweep();
  CHECK(c.calls == 0);  // deadline not reached
  clock.Advance(499);
  exchange.Sweep();
  CHECK(c.calls == 0);
  clock.Advance(1);
  exchange.Sweep();  // no post needed for the deadline to bite
  REQUIRE(c.calls == 1);
  CHECK(c.result->end == WaitEnd::kExpired);
  CHECK_FALSE(c.result->all_arrived());
  CHECK(c.result->values.size() == 2);
  CHECK(c.result->values.at("a") == 1);
  CHECK(c.result->values.at("c") == 3);
  CHECK(c.result->values.count("b") == 0);
  CHECK(exchange.Stats().waits_expired == 1);
  // A late "b" finds no wait.
  CHECK(exchange.Post("b", 2) == PostResult::kStored);
  CHECK(c.calls == 1);
}

TEST_CASE("exchange: a wait whose deadline already passed ends at once with what is stored") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  exchange.Post("a", 1);
  Captured c;
  exchange.WaitAsync({"a", "b"}, clock.NowMs(), c.Callback());
  REQUIRE(c.calls == 1);
  CHECK(c.result->end == WaitEnd::kExpired);
  CHECK(c.result->values.size() == 1);
}

TEST_CASE("exchange: stored values expire by the sweep alone") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock, ExchangeOptions{.value_ttl_ms = 1000});
  exchange.Post("a", 1);
  clock.Advance(999);
  exchange.Sweep();
  CHECK(exchange.Has("a"));
  clock.Advance(1);
  CHECK_FALSE(exchange.Has("a"));  // expired even before the sweep removes it
  exchange.Sweep();
  CHECK(exchange.Stats().values == 0);
  CHECK(exchange.Stats().values_expired == 1);
  Captured c;
  exchange.WaitAsync({"a"}, clock.NowMs() + 10, c.Callback());
  CHECK(c.calls == 0);
}

TEST_CASE("exchange: keep_after_delivery lets every later wait see an event") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(
      clock, ExchangeOptions{.value_ttl_ms = 10'000, .keep_after_delivery = true});
  Captured early;
  exchange.WaitAsync({"started"}, clock.NowMs() + 100, early.Callback());
  CHECK(exchange.Post("started", 1) == PostResult::kTaken);
  CHECK(early.calls == 1);
  CHECK(exchange.Has("started"));
  for (int i = 0; i < 3; ++i) {
    Captured late;
    exchange.WaitAsync({"started"}, clock.NowMs() + 100, late.Callback());
    CHECK(late.calls == 1);
    CHECK(late.result->all_arrived());
  }
  clock.Advance(10'000);
  exchange.Sweep();
  CHECK_FALSE(exchange.Has("started"));
}

TEST_CASE("exchange: remove mode hands a stored value to exactly one wait") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  exchange.Post("v", 5);
  Captured first;
  Captured second;
  exchange.WaitAsync({"v"}, clock.NowMs() + 100, first.Callback());
  exchange.WaitAsync({"v"}, clock.NowMs() + 100, second.Callback());
  CHECK(first.calls == 1);
  CHECK(second.calls == 0);
}

TEST_CASE("exchange: a post from the wrong source is ignored and counted") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  Captured c;
  exchange.WaitAsync({"req-1"}, clock.NowMs() + 100, c.Callback(), WaitOptions{.from = "bob"});
  CHECK(exchange.Post("req-1", 666, PostOptions{.source = "mallory"}) == PostResult::kWrongSource);
  CHECK(c.calls == 0);
  CHECK(exchange.Stats().values == 0);  // not stored: it cannot occupy the slot
  CHECK(exchange.Post("req-1", 42, PostOptions{.source = "bob"}) == PostResult::kTaken);
  REQUIRE(c.calls == 1);
  CHECK(c.result->values.at("req-1") == 42);
  CHECK(exchange.Stats().posts_wrong_source == 1);

  // Stored before the wait by the wrong source: the wait ignores it.
  exchange.Post("req-2", 1, PostOptions{.source = "mallory"});
  Captured d;
  exchange.WaitAsync({"req-2"}, clock.NowMs() + 100, d.Callback(), WaitOptions{.from = "bob"});
  CHECK(d.calls == 0);
  exchange.Post("req-2", 2, PostOptions{.source = "bob"});
  REQUIRE(d.calls == 1);
  CHECK(d.result->values.at("req-2") == 2);
}

TEST_CASE("exchange: only_if_awaited does not store a value nobody waits for") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  CHECK(exchange.Post("r", 1, PostOptions{.only_if_awaited = true}) == PostResult::kNotAwaited);
  CHECK(exchange.Stats().values == 0);
}

TEST_CASE("exchange: Cancel removes a wait silently; CancelAll resolves waits as cancelled") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  Captured a;
  Captured b;
  auto handle = exchange.WaitAsync({"a"}, clock.NowMs() + 100, a.Callback());
  exchange.WaitAsync({"b", "c"}, clock.NowMs() + 100, b.Callback());
  CHECK(exchange.Cancel(handle));
  CHECK_FALSE(exchange.Cancel(handle));
  exchange.Post("a", 1);
  CHECK(a.calls == 0);
  exchange.Post("b", 2);
  CHECK(exchange.CancelAll() == 1);
  REQUIRE(b.calls == 1);
  CHECK(b.result->end == WaitEnd::kCancelled);
  CHECK(b.result->values.size() == 1);
  clock.Advance(1000);
  exchange.Sweep();
  CHECK(a.calls == 0);
  CHECK(b.calls == 1);
}

TEST_CASE("exchange: the blocking Wait returns when another thread posts or sweeps") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  std::optional<WaitResult<int>> got;
  std::thread waiter([&] { got = exchange.Wait({"k"}, clock.NowMs() + 1000); });
  REQUIRE(Eventually([&] { return exchange.Stats().waits == 1; }));
  exchange.Post("k", 9);
  waiter.join();
  REQUIRE(got.has_value());
  CHECK(got->values.at("k") == 9);

  std::optional<WaitResult<int>> timed_out;
  std::thread waiter2([&] { timed_out = exchange.Wait({"never"}, clock.NowMs() + 1000); });
  REQUIRE(Eventually([&] { return exchange.Stats().waits == 1; }));
  clock.Advance(1000);
  exchange.Sweep();
  waiter2.join();
  REQUIRE(timed_out.has_value());
  CHECK(timed_out->end == WaitEnd::kExpired);
}

TEST_CASE("exchange: its own sweep timer expires waits without any post or manual sweep") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock, ExchangeOptions{.sweep_interval_ms = 1});
  std::atomic<int> calls{0};
  std::atomic<bool> expired{false};
  exchange.WaitAsync({"z"}, clock.NowMs() + 50, [&](WaitResult<int> r) {
    expired = r.end == WaitEnd::kExpired;
    ++calls;
  });
  clock.Advance(50);
  REQUIRE(Eventually([&] { return calls.load() == 1; }));
  CHECK(expired.load());
}

TEST_CASE("exchange: callbacks may call back into the exchange") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  int second = 0;
  exchange.WaitAsync({"a"}, clock.NowMs() + 100, [&](WaitResult<int>) {
    exchange.WaitAsync({"b"}, clock.NowMs() + 100,
                       [&](WaitResult<int> r) { second = r.values.at("b"); });
    exchange.Post("b", 3);
  });
  exchange.Post("a", 1);
  CHECK(second == 3);
}

TEST_CASE("exchange: concurrent posts and waits from many threads lose nothing") {
  core::ManualClock clock;
  EventWaitExchange<int> exchange(clock);
  constexpr int kIds = 2000;
  std::atomic<int> completed{0};
  std::thread waiters([&] {
    for (int i = 0; i < kIds; ++i) {
      exchange.WaitAsync({"id" + std::to_string(i)}, clock.NowMs() + 1000,
                         [&, i](WaitResult<int> r) {
                           if (r.all_arrived() && r.values.at("id" + std::to_string(i)) == i) {
                             ++completed;
                           }
                         });
    }
  });
  std::thread posters([&] {
    for (int i = kIds - 1; i >= 0; --i) exchange.Post("id" + std::to_string(i), i);
  });
  waiters.join();
  posters.join();
  CHECK(completed.load() == kIds);
  CHECK(exchange.Stats().waits == 0);
  CHECK(exchange.Stats().values == 0);
}

}  // namespace
}  // namespace nodelink::router

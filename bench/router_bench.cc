// Dispatch overhead of the router per message: Submit -> open on the sender's strand ->
// acknowledge -> dispatch -> handler -> final, with an opener that does no cryptography (its
// cost is the overlay's, measured elsewhere), and the EventWaitExchange post/wait round trip.
#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/clock.h"
#include "router/answered_log.h"
#include "router/event_wait_exchange.h"
#include "router/router.h"

namespace nodelink::router {
namespace {

// Opens by parsing the Inner the benchmark put in Sealed.ciphertext; the outcome is durable at
// once.
class PlainOpener final : public overlay::EnvelopeOpener {
 public:
  void Open(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done) override {
    overlay::OpenOutcome outcome;
    outcome.message = Parse(envelope);
    done(std::move(outcome));
  }
  void OpenAlone(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done) override {
    Open(std::move(envelope), std::move(done));
  }
  void OpenAndHandle(v1::Envelope envelope,
                     std::function<void(overlay::InboxMessage, std::function<void()>)> handle,
                     std::function<void(overlay::OpenOutcome)> done) override {
    handle(Parse(envelope), [done = std::move(done)] { done(overlay::OpenOutcome{}); });
  }
  void Complete(uint64_t, std::function<void()> durable) override {
    if (durable) durable();
  }
  std::vector<overlay::InboxMessage> PendingInbox() override { return {}; }

 private:
  static overlay::InboxMessage Parse(const v1::Envelope& envelope) {
    overlay::InboxMessage message;
    message.sender = envelope.sender();
    message.inner.ParseFromString(envelope.sealed().ciphertext());
    return message;
  }
};

class NullSender final : public overlay::InnerSender {
 public:
  void Send(const std::string&, v1::Inner, std::function<void(absl::Status)> done) override {
    done(absl::OkStatus());
  }
};

class Counter {
 public:
  void Add() {
    std::lock_guard lock(mu_);
    if (++count_ >= target_) cv_.notify_all();
  }
  void WaitFor(uint64_t target) {
    std::unique_lock lock(mu_);
    target_ = target;
    cv_.wait(lock, [&] { return count_ >= target_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  uint64_t count_ = 0;
  uint64_t target_ = ~uint64_t{0};
};

// Args: workers, senders. Each iteration submits 1,000 one-way messages spread over the senders
// and waits until every final ran.
void BM_DispatchOneWay(benchmark::State& state) {
  const auto workers = static_cast<size_t>(state.range(0));
  const auto senders = static_cast<int>(state.range(1));
  constexpr int kBatch = 1000;
  core::SystemClock& clock = core::SystemClock::Get();
  PlainOpener opener;
  NullSender sender;
  InMemoryAnsweredLog answered;
  RouterOptions options;
  options.workers = workers;
  options.inbox_capacity = kBatch;
  options.sweep_interval_ms = 0;
  auto router =
      std::move(*Router::Create(options, opener, sender, answered, clock, [](ByteView) {}));
  Counter finals;
  router->SetHandler(
      v1::Inner::kApp, [](HandlerContext&) { return absl::OkStatus(); },
      [&](FinalContext&) {
        finals.Add();
        return absl::OkStatus();
      });
  router->Start();
  v1::Inner inner;
  inner.mutable_app()->set_type("bench");
  inner.mutable_app()->set_payload(std::string(64, 'x'));
  std::vector<v1::Envelope> batch(kBatch);
  for (int i = 0; i < kBatch; ++i) {
    batch[i].set_sender("peer" + std::to_string(i % senders));
    batch[i].set_recipient("me");
    batch[i].set_message_id(std::string(16, static_cast<char>(i)));
    batch[i].mutable_sealed()->set_ciphertext(inner.SerializeAsString());
  }
  uint64_t submitted = 0;
  for (auto _ : state) {
    for (const v1::Envelope& envelope : batch) router->Submit(envelope);
    submitted += kBatch;
    finals.WaitFor(submitted);
  }
  state.SetItemsProcessed(static_cast<int64_t>(submitted));
  router->Stop();
}
BENCHMARK(BM_DispatchOneWay)
    ->Args({1, 1})
    ->Args({2, 1})
    ->Args({2, 8})
    ->Args({4, 64})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// One wait registered, then its value posted: the cost of a deferral's rendezvous.
void BM_ExchangeWaitThenPost(benchmark::State& state) {
  core::SystemClock& clock = core::SystemClock::Get();
  EventWaitExchange<int> exchange(clock);
  int delivered = 0;
  uint64_t i = 0;
  for (auto _ : state) {
    const std::string id = std::to_string(i++);
    exchange.WaitAsync({id}, clock.NowMs() + 60'000,
                       [&](WaitResult<int> r) { delivered += r.values.begin()->second; });
    exchange.Post(id, 1);
  }
  benchmark::DoNotOptimize(delivered);
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()));
}
BENCHMARK(BM_ExchangeWaitThenPost);

}  // namespace
}  // namespace nodelink::router

BENCHMARK_MAIN();

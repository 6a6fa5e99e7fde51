// The hub's durable queue per envelope: group commit of appends (what Accepted waits for) and
// the deletes that Delivered causes, SQLite (synchronous=NORMAL, WAL, as the hub runs it) against
// the in-memory store. Results: bench/RESULTS.md.
#include <benchmark/benchmark.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <vector>

#include "process/temp_dir.h"
#include "transport/memory_queue_store.h"
#include "transport/queue_committer.h"
#include "transport/sqlite_queue_store.h"

namespace nodelink::transport {
namespace {

std::unique_ptr<QueueStore> MakeStore(bool durable, const std::string& dir) {
  if (!durable) return std::make_unique<MemoryQueueStore>();
  SqliteQueueOptions options;
  options.path = dir + "/queue.db";
  auto store = SqliteQueueStore::Open(options);
  if (!store.ok()) std::abort();  // a fresh temporary directory: failure is a broken machine
  return *std::move(store);
}

// An envelope from node-a to node-b that never expires, with a unique 16-byte message id.
AppendRequest MakeAppend(uint64_t serial, const std::string& body) {
  AppendRequest r;
  r.sender = "node-a";
  r.recipient = "node-b";
  r.message_id = std::to_string(serial);
  r.message_id.resize(16, '-');
  r.now_ms = 1;
  r.expires_at_ms = ~uint64_t{0} >> 1;
  r.body = body;
  return r;
}

// Args: durable (0/1), body bytes. Each iteration appends 256 envelopes at once (as many
// senders do), waits for every Accepted-ready completion, then deletes them (Delivered).
void BM_QueueAppendThenDelete(benchmark::State& state) {
  const bool durable = state.range(0) != 0;
  const auto body_bytes = static_cast<size_t>(state.range(1));
  constexpr int kBatch = 256;
  process::TempDir dir;
  QueueCommitter committer(MakeStore(durable, dir.path()), CommitterOptions{});
  const std::string body(body_bytes, 'e');
  uint64_t serial = 0;
  for (auto _ : state) {
    std::mutex mu;
    std::condition_variable cv;
    int done = 0;
    std::vector<uint64_t> ids(kBatch, 0);
    for (int i = 0; i < kBatch; ++i) {
      committer.Append(MakeAppend(++serial, body),
                       [&, i](const absl::StatusOr<AppendResult>& result) {
                         std::lock_guard lock(mu);
                         if (result.ok()) ids[static_cast<size_t>(i)] = result->id;
                         if (++done == kBatch) cv.notify_all();
                       });
    }
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done == kBatch; });
    }
    for (uint64_t id : ids) committer.Delete(id);
  }
  committer.Stop();
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.SetBytesProcessed(state.iterations() * kBatch * static_cast<int64_t>(body_bytes));
  state.counters["commits"] = static_cast<double>(committer.stats().commits);
}
BENCHMARK(BM_QueueAppendThenDelete)
    ->ArgNames({"durable", "bytes"})
    ->Args({0, 200})
    ->Args({1, 200})
    ->Args({0, 4200})
    ->Args({1, 4200})
    ->Args({1, 1 << 20})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// Args: durable (0/1). The hub's pass at one envelope in flight: one transaction with one append
// and the delete of the envelope before it (a receipt's delete rides with the next append).
// Counter staged_us: from the call to its before_commit, which is when the hub pushes the
// envelope to a waiting recipient (Relay::OnStaged): that part is on a round trip's path.
void BM_QueueCommitOneAppend(benchmark::State& state) {
  using Clock = std::chrono::steady_clock;
  const bool durable = state.range(0) != 0;
  process::TempDir dir;
  std::unique_ptr<QueueStore> store = MakeStore(durable, dir.path());
  const std::string body(200, 'e');
  uint64_t serial = 0;
  std::vector<uint64_t> deletes;
  Clock::duration to_staged{};
  for (auto _ : state) {
    const AppendRequest r = MakeAppend(++serial, body);
    const Clock::time_point start = Clock::now();
    auto results =
        store->Commit({&r, 1}, deletes, QueueBounds{},
                      [&](std::span<const AppendResult>) { to_staged += Clock::now() - start; });
    if (!results.ok() || results->size() != 1) std::abort();
    deletes.assign(1, results->front().id);
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["staged_us"] = std::chrono::duration<double, std::micro>(to_staged).count() /
                                static_cast<double>(state.iterations());
}
BENCHMARK(BM_QueueCommitOneAppend)
    ->ArgNames({"durable"})
    ->Arg(0)
    ->Arg(1)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace nodelink::transport

BENCHMARK_MAIN();

// The node's key-store journal (overlay/store_journal.h) under its expiry pass: how long the
// commits take that carry a live reply's record while a backlog of expired rows is pruned (a node
// restarted after its answered replies and sent copies expired, or one that was stopped for
// longer than the queue TTL). Results: bench/RESULTS.md.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/clock.h"
#include "keys/key_store.h"
#include "overlay/store_journal.h"
#include "process/temp_dir.h"

namespace nodelink::overlay {
namespace {

void Check(const absl::Status& status) {
  if (!status.ok()) std::abort();  // a fresh temporary store: failure is a broken machine
}

AnsweredRow Answered(uint64_t serial, uint64_t expires_ms) {
  // A reply to a 64 B request, as the round-trip benchmark's echo records it.
  return AnsweredRow{"node-b", "request-" + std::to_string(serial), expires_ms, Bytes(110, 0x5a)};
}

SentRow Sent(uint64_t serial, uint64_t sent_at_ms) {
  SentRow row;
  row.recipient = "node-b";
  std::string id = std::to_string(serial);
  id.resize(16, '-');
  row.message_id = Bytes(id.begin(), id.end());
  row.channel_id = Bytes(16, 0x11);
  row.seq = serial;
  row.sent_at_ms = sent_at_ms;
  row.inner = std::make_shared<const Bytes>(110, 0x5a);
  return row;
}

// Arg: expired answered replies and expired sent copies in the store (each). Each iteration
// writes them (untimed), then times the commits that follow: each carries one live reply's
// record, the first also the expiry pass's cutoffs, until the backlog is gone. Counters: the
// longest of those commits (what one live reply waited), the median one, and how many it took.
void BM_CommitsWhilePruningBacklog(benchmark::State& state) {
  const auto backlog = static_cast<uint64_t>(state.range(0));
  core::ManualClock clock(1'000'000);
  double longest_ms = 0, median_ms = 0, commits = 0;
  uint64_t serial = 0;
  for (auto _ : state) {
    state.PauseTiming();
    process::TempDir dir;
    keys::StoreOptions options;
    options.clock = &clock;
    auto store = keys::KeyStore::Create(
        dir.File("store.db"),
        keys::StoreKeySource::Passphrase(core::SecretBytes::CopyOf(AsBytes("bench"))),
        keys::KdfProfile::kMinimal, options);
    if (!store.ok()) std::abort();
    StoreJournal journal(**store);
    Check(journal.Load().status());
    for (uint64_t done = 0; done < backlog;) {
      JournalBatch fill;
      for (int i = 0; i < 1000 && done < backlog; ++i, ++done) {
        fill.put_answered.push_back(Answered(++serial, 10));
        fill.put_sent.push_back(Sent(serial, 10));
      }
      Check(journal.Commit(std::move(fill)));
    }
    state.ResumeTiming();
    JournalBatch first;
    first.prune_answered_before_ms = first.prune_sent_before_ms = 1'000;
    first.put_answered.push_back(Answered(++serial, 2'000'000));
    std::vector<double> took_ms;
    int n = 0;
    for (JournalBatch batch = std::move(first); n == 0 || journal.PrunePending(); ++n) {
      if (n > 0) batch.put_answered.push_back(Answered(++serial, 2'000'000));
      auto start = std::chrono::steady_clock::now();
      Check(journal.Commit(std::move(batch)));
      took_ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
              .count());
      batch = JournalBatch{};
    }
    std::sort(took_ms.begin(), took_ms.end());
    longest_ms = took_ms.back();
    median_ms = took_ms[took_ms.size() / 2];
    commits = n;
  }
  state.counters["longest_commit_ms"] = longest_ms;
  state.counters["median_commit_ms"] = median_ms;
  state.counters["commits"] = commits;
}
BENCHMARK(BM_CommitsWhilePruningBacklog)
    ->Arg(1'000)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace
}  // namespace nodelink::overlay

BENCHMARK_MAIN();

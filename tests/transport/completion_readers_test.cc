// CompletionReaders on a real grpc::CompletionQueue, its completions from grpc::Alarm: one thread
// polls at a time, a lent thread's work may take long without holding up the queue, and both
// threads end with the queue.
#include "transport/completion_readers.h"

#include <doctest/doctest.h>
#include <grpcpp/alarm.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "process/wait_for.h"

namespace nodelink::transport {
namespace {

constexpr std::chrono::milliseconds kBound{20'000};  // a broken run's limit, not a timing guess

gpr_timespec Now() { return gpr_now(GPR_CLOCK_MONOTONIC); }

struct Rig {
  grpc::CompletionQueue cq;
  std::mutex mu;
  std::vector<std::unique_ptr<grpc::Alarm>> alarms;
  // Fires an alarm now: its tag comes out of the queue on a reader thread.
  void Fire(void* tag) {
    std::lock_guard lock(mu);
    alarms.push_back(std::make_unique<grpc::Alarm>());
    alarms.back()->Set(&cq, Now(), tag);
  }
  ~Rig() {
    cq.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq.Next(&tag, &ok)) {
    }
  }
};

TEST_CASE("completion readers: lent work that blocks is covered by the other thread") {
  Rig rig;
  int first = 1, second = 2;
  std::atomic<bool> second_handled{false}, work_saw_second{false};
  std::unique_ptr<CompletionReaders> readers;
  readers = std::make_unique<CompletionReaders>(
      rig.cq,
      [&](void* tag, bool) {
        if (tag == &second) {
          second_handled = true;
          return;
        }
        if (!readers->CanLend()) {  // the other thread has not reached its standby yet
          rig.Fire(&first);
          return;
        }
        // Waits for a completion that only another polling thread can take out of the queue.
        readers->Lend([&] {
          rig.Fire(&second);
          work_saw_second = process::WaitFor([&] { return second_handled.load(); }, kBound);
        });
      },
      std::chrono::microseconds(1000));
  REQUIRE(readers->Start("test-reader").ok());
  rig.Fire(&first);
  REQUIRE(process::WaitFor([&] { return work_saw_second.load(); }, kBound));
  CHECK(readers->takeovers() == 1);
  rig.cq.Shutdown();
  readers->Join();  // both end: the poller with the queue, the one standing by woken by it
}

TEST_CASE("completion readers: one handler at a time; every completion handled; both end") {
  Rig rig;
  constexpr int kAlarms = 300;
  std::vector<int> tags(kAlarms);
  std::atomic<int> in_handler{0}, overlaps{0}, handled{0}, lent_ran{0};
  std::unique_ptr<CompletionReaders> readers;
  readers = std::make_unique<CompletionReaders>(
      rig.cq,
      [&](void*, bool) {
        if (in_handler.fetch_add(1) != 0) ++overlaps;
        in_handler.fetch_sub(1);
        readers->Lend([&] { ++lent_ran; });  // may overlap the next handler after a takeover
        ++handled;
      },
      std::chrono::microseconds(1000));
  REQUIRE(readers->Start("test-reader").ok());
  for (int& tag : tags) rig.Fire(&tag);
  REQUIRE(process::WaitFor([&] { return handled.load() == kAlarms; }, kBound));
  CHECK(overlaps.load() == 0);
  CHECK(lent_ran.load() == kAlarms);
  rig.cq.Shutdown();
  readers->Join();
}

TEST_CASE("completion readers: Lend from a thread that does not poll just runs the work") {
  Rig rig;
  CompletionReaders readers(
      rig.cq, [](void*, bool) {}, std::chrono::microseconds(1000));
  REQUIRE(readers.Start("test-reader").ok());
  bool ran = false;
  CHECK_FALSE(readers.CanLend());
  readers.Lend([&] { ran = true; });
  CHECK(ran);
  CHECK(readers.takeovers() == 0);
  rig.cq.Shutdown();
  readers.Join();
}

}  // namespace
}  // namespace nodelink::transport

#include "router/strand_executor.h"

#include <doctest/doctest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "router_test_support.h"

namespace nodelink::router {
namespace {

using testing::Eventually;
using testing::Gate;

TEST_CASE("strand executor: tasks of one key run in order, one at a time; keys run in parallel") {
  StrandExecutor executor(3);
  std::mutex mu;
  std::map<std::string, std::vector<int>> order;
  std::map<std::string, bool> busy;
  std::atomic<int> overlaps{0};
  std::atomic<int> done{0};
  Gate b_ran;
  std::atomic<bool> a_saw_b{false};
  for (int i = 0; i < 500; ++i) {
    for (const std::string key : {"a", "b", "c"}) {
      executor.Post(key, [&, key, i] {
        {
          std::lock_guard lock(mu);
          if (busy[key]) ++overlaps;
          busy[key] = true;
          order[key].push_back(i);
        }
        if (key == "a" && i == 0) a_saw_b = b_ran.Wait();
        if (key == "b") b_ran.Open();
        {
          std::lock_guard lock(mu);
          busy[key] = false;
        }
        ++done;
      });
    }
  }
  CHECK(executor.QueuedTasks() == 1500);  // nothing runs before Start
  executor.Start();
  REQUIRE(Eventually([&] { return done.load() == 1500; }));
  CHECK(a_saw_b.load());
  CHECK(overlaps.load() == 0);
  std::vector<int> expected(500);
  for (int i = 0; i < 500; ++i) expected[i] = i;
  for (const auto& [key, seen] : order) CHECK(seen == expected);
  REQUIRE(Eventually([&] {
    executor.DropIdleStrands();
    return executor.StrandCount() == 0;
  }));
}

TEST_CASE("strand executor: PostNext from a task runs the strand on that worker once it returns") {
  std::atomic<std::thread::id> poster{}, runner{};
  std::atomic<bool> poster_returned{false}, saw_return{false};
  Gate ran;
  StrandExecutor executor(2);  // after what its tasks use: its workers are joined first
  executor.Start();
  // Both workers asleep first: a worker still starting would find "b" ready by itself, without
  // being woken, and PostNext promises only that it wakes nobody.
  REQUIRE(Eventually([&] { return executor.IdleWorkers() == 2; }));
  executor.Post("a", [&] {
    poster = std::this_thread::get_id();
    executor.PostNext("b", [&] {
      runner = std::this_thread::get_id();
      saw_return = poster_returned.load();
      ran.Open();
    });
    poster_returned = true;
  });
  REQUIRE(ran.Wait());
  CHECK(runner.load() == poster.load());
  CHECK(saw_return.load());  // after the posting task, not inside it
}

TEST_CASE("strand executor: PostNext wakes another worker when the poster's strand goes on") {
  std::atomic<bool> b_ran{false};
  Gate b_done;
  StrandExecutor executor(2);
  executor.Post("a", [&] { executor.PostNext("b", [&] { b_done.Open(); }); });
  // The next task of strand "a" waits for "b": only another worker can run it meanwhile.
  executor.Post("a", [&] { b_ran = b_done.Wait(); });
  executor.Start();
  REQUIRE(Eventually([&] { return b_done.is_open(); }));
  REQUIRE(Eventually([&] { return b_ran.load(); }));
}

TEST_CASE("strand executor: PostNext from outside a worker is Post") {
  Gate ran;
  StrandExecutor executor(1);
  executor.Start();
  CHECK(executor.PostNext("a", [&] { ran.Open(); }));
  CHECK(ran.Wait());
}

TEST_CASE("strand executor: PostNextIfIdle queues only behind nothing, else leaves the task") {
  Gate entered, release, ran;
  std::atomic<int> runs{0};
  StrandExecutor executor(2);  // after what its tasks use: its workers are joined first
  executor.Start();
  REQUIRE(executor.Post("busy", [&] {
    entered.Open();
    release.Wait();
  }));
  REQUIRE(entered.Wait());
  StrandExecutor::Task task = [&] {
    ++runs;
    ran.Open();
  };
  CHECK_FALSE(executor.PostNextIfIdle("busy", task));  // running: the task stays with the caller
  REQUIRE(task);
  release.Open();
  CHECK(executor.PostNextIfIdle("idle", task));
  REQUIRE(ran.Wait());
  CHECK(runs.load() == 1);
}

TEST_CASE("strand executor: ClaimIfIdle runs a task and what it posts next on the caller") {
  const std::thread::id caller = std::this_thread::get_id();
  std::atomic<std::thread::id> open_ran{}, dispatch_ran{};
  StrandExecutor executor(2);
  executor.Start();
  // Both workers asleep first: one still starting could take the posted dispatch by itself.
  REQUIRE(Eventually([&] { return executor.IdleWorkers() == 2; }));
  StrandExecutor::Task work = executor.ClaimIfIdle("open", [&] {
    open_ran = std::this_thread::get_id();
    // As the router's open posts the message's dispatch on another strand.
    executor.PostNext("handle", [&] { dispatch_ran = std::this_thread::get_id(); });
  });
  REQUIRE(work);
  CHECK(executor.QueuedTasks() == 1);  // claimed: queued on its strand, not handed to a worker
  work();
  CHECK(open_ran.load() == caller);
  CHECK(dispatch_ran.load() == caller);
  CHECK(executor.QueuedTasks() == 0);
  // The strands are free again: a later claim of either succeeds.
  StrandExecutor::Task again = executor.ClaimIfIdle("handle", [] {});
  REQUIRE(again);
  again();
}

TEST_CASE("strand executor: ClaimIfIdle posts instead when the strand or the executor is busy") {
  Gate entered, release, ran_busy, ran_queued;
  StrandExecutor executor(1);  // one worker: held by "busy", so a posted task stays queued
  executor.Start();
  REQUIRE(executor.Post("busy", [&] {
    entered.Open();
    release.Wait();
  }));
  REQUIRE(entered.Wait());
  // Its strand is running: posted behind it, nothing to run here.
  CHECK_FALSE(executor.ClaimIfIdle("busy", [&] { ran_busy.Open(); }));
  // Another strand, but a task is queued: posted too, so the workers keep the order of arrival.
  CHECK_FALSE(executor.ClaimIfIdle("other", [&] { ran_queued.Open(); }));
  CHECK(executor.QueuedTasks() == 2);
  release.Open();
  CHECK(ran_busy.Wait());
  CHECK(ran_queued.Wait());
}

TEST_CASE("strand executor: claimed work dropped without running goes to a worker") {
  Gate ran;
  std::atomic<std::thread::id> runner{};
  StrandExecutor executor(1);
  executor.Start();
  {
    StrandExecutor::Task work = executor.ClaimIfIdle("open", [&] {
      runner = std::this_thread::get_id();
      ran.Open();
    });
    REQUIRE(work);
  }  // dropped
  REQUIRE(ran.Wait());
  CHECK(runner.load() != std::this_thread::get_id());
  executor.Stop();  // returns: the dropped claim no longer counts as running
}

TEST_CASE("strand executor: Stop waits for a claimed task, which then drops what it posts") {
  Gate entered, release;
  std::atomic<bool> work_returned{false}, returned_before_stop{false}, posted_ran{false};
  StrandExecutor executor(1);
  executor.Start();
  StrandExecutor::Task work = executor.ClaimIfIdle("open", [&] {
    entered.Open();
    release.Wait();
    executor.PostNext("handle", [&] { posted_ran = true; });
    work_returned = true;
  });
  REQUIRE(work);
  std::thread reader([&] { work(); });
  REQUIRE(entered.Wait());
  std::thread stopper([&] {
    executor.Stop();
    returned_before_stop = work_returned.load();
  });
  // Stop has begun once Post refuses; only then is the claimed task let go.
  REQUIRE(Eventually([&] { return !executor.Post("late", [] {}); }));
  release.Open();
  stopper.join();
  reader.join();
  CHECK(returned_before_stop.load());
  CHECK_FALSE(posted_ran.load());
}

TEST_CASE("strand executor: Stop drops queued tasks and refuses new ones") {
  StrandExecutor executor(1);
  Gate release;
  Gate entered;
  std::atomic<int> ran{0};
  executor.Post("k", [&] {
    entered.Open();
    release.Wait();
    ++ran;
  });
  for (int i = 0; i < 10; ++i) executor.Post("k", [&] { ++ran; });
  executor.Start();
  REQUIRE(entered.Wait());
  std::thread stopper([&] { executor.Stop(); });
  REQUIRE(Eventually([&] { return !executor.Post("k", [&] { ++ran; }); }));
  release.Open();
  stopper.join();
  CHECK(ran.load() == 1);  // the running task finished; the queued ones were dropped
}

}  // namespace
}  // namespace nodelink::router

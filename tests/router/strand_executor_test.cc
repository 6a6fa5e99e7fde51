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

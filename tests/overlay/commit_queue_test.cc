// The group commit's two ways of committing: on the commit thread (batching under load) and on
// the caller's thread at light load (CommitHereIfIdle), against a journal that records which
// thread committed and can hold a commit to stand for one that is running.
#include "overlay/commit_queue.h"

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "usual_path.h"

namespace nodelink::overlay {
namespace {

using CommitBy = CommitQueue::CommitBy;
using testing::UsualPathInSomeRun;

class RecordingJournal final : public ChannelJournal {
 public:
  absl::StatusOr<JournalSnapshot> Load() override { return JournalSnapshot{}; }
  absl::Status Commit(JournalBatch batch) override {
    std::unique_lock lock(mu_);
    commits_.push_back({std::this_thread::get_id(), batch.put_sent.size()});
    changed_.notify_all();
    changed_.wait(lock, [&] { return !hold_; });
    return fail_ ? absl::DataLossError("disk gone") : absl::OkStatus();
  }
  absl::StatusOr<std::optional<SentRow>> FindSent(std::string_view, ByteView) override {
    return std::nullopt;
  }
  absl::StatusOr<std::vector<SentRow>> SentOnChannel(std::string_view, ByteView,
                                                     uint64_t) override {
    return std::vector<SentRow>{};
  }
  absl::StatusOr<std::optional<Bytes>> FindAnswered(std::string_view, std::string_view,
                                                    uint64_t) override {
    return std::nullopt;
  }
  absl::Status ForEachAnswered(
      const std::function<void(std::string_view, std::string_view, uint64_t)>&) override {
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<std::string>> TakeRenewRequests() override {
    return std::vector<std::string>{};
  }

  struct Record {
    std::thread::id thread;
    size_t rows;  // put_sent rows: the items of the batch, as the tests build them
  };
  std::vector<Record> commits() {
    std::lock_guard lock(mu_);
    return commits_;
  }
  // While held, a commit that starts waits, as one that takes long would.
  void Hold(bool hold) {
    std::lock_guard lock(mu_);
    hold_ = hold;
    changed_.notify_all();
  }
  void FailCommits() {
    std::lock_guard lock(mu_);
    fail_ = true;
  }
  void Forget() {
    std::lock_guard lock(mu_);
    commits_.clear();
  }
  // False if fewer than `n` commits came within 30 s.
  bool WaitForCommits(size_t n) {
    std::unique_lock lock(mu_);
    return changed_.wait_for(lock, std::chrono::seconds(30), [&] { return commits_.size() >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable changed_;
  std::vector<Record> commits_;
  bool hold_ = false;
  bool fail_ = false;
};

JournalBatch OneRow() {
  JournalBatch b;
  b.put_sent.push_back(SentRow{});
  return b;
}

// Until its thread first sleeps, the queue's thread takes whatever it finds queued, unwoken. A
// held item committed through it by a Flush (which returns once the thread is back asleep: it
// holds the lock from its batch's end until it waits) leaves it asleep with a deadline (it
// lingers, 10 x the hold), so a test sees who commits what and held items wake nobody.
struct SleepingQueue {
  RecordingJournal journal;
  CommitQueue queue;
  // By default a held item waits for the next transaction, however long the test takes.
  explicit SleepingQueue(std::chrono::milliseconds hold = std::chrono::hours(1))
      : queue(journal, nullptr, hold) {
    queue.Enqueue(OneRow(), nullptr, CommitBy::kHeld);
    queue.Flush();
    journal.Forget();
  }
};

TEST_CASE_FIXTURE(
    SleepingQueue,
    "commit queue: alone, a caller's item commits on the caller's thread before it returns") {
  std::thread::id ran_on;
  queue.Enqueue(
      OneRow(), [&] { ran_on = std::this_thread::get_id(); }, CommitBy::kCaller);
  queue.CommitHereIfIdle();
  CHECK(ran_on == std::this_thread::get_id());
  REQUIRE(journal.commits().size() == 1);
  CHECK(journal.commits()[0].thread == std::this_thread::get_id());
}

TEST_CASE_FIXTURE(SleepingQueue,
                  "commit queue: CommitOnThread hands a caller's item to the commit thread") {
  std::atomic<bool> ran{false};
  queue.Enqueue(
      OneRow(), [&] { ran = true; }, CommitBy::kCaller);
  queue.CommitOnThread();
  queue.Flush();
  CHECK(ran);
  REQUIRE(journal.commits().size() == 1);
  CHECK(journal.commits()[0].thread != std::this_thread::get_id());
}

TEST_CASE_FIXTURE(
    SleepingQueue,
    "commit queue: with another item queued, or a commit running, the thread batches") {
  SUBCASE("two items queued: one transaction on the commit thread") {
    queue.Enqueue(OneRow(), nullptr, CommitBy::kCaller);
    queue.Enqueue(OneRow(), nullptr, CommitBy::kCaller);
    queue.CommitHereIfIdle();
    queue.Flush();
    REQUIRE(journal.commits().size() == 1);
    CHECK(journal.commits()[0].rows == 2);
    CHECK(journal.commits()[0].thread != std::this_thread::get_id());
  }
  SUBCASE("a commit running: the caller returns at once, the thread commits after it") {
    journal.Hold(true);
    queue.Enqueue(OneRow());
    REQUIRE(journal.WaitForCommits(1));  // the thread is inside its commit now
    queue.Enqueue(OneRow(), nullptr, CommitBy::kCaller);
    queue.CommitHereIfIdle();  // must not wait for the held commit
    CHECK(journal.commits().size() == 1);
    journal.Hold(false);
    queue.Flush();
    REQUIRE(journal.commits().size() == 2);
    CHECK(journal.commits()[1].thread == journal.commits()[0].thread);
  }
}

TEST_CASE("commit queue: in a CallerScope, items nobody waits for commit together at its end") {
  CHECK(UsualPathInSomeRun([] {
    SleepingQueue q;
    RecordingJournal& journal = q.journal;
    CommitQueue& queue = q.queue;
    {
      CommitQueue::CallerScope scope;
      queue.Enqueue(OneRow());
      {
        CommitQueue::CallerScope inner;  // nested: does nothing of its own
        queue.Enqueue(OneRow());
      }
      queue.Enqueue(OneRow());
    }
    const auto at_end = journal.commits();
    queue.Flush();
    size_t rows = 0;
    for (const auto& c : journal.commits()) rows += c.rows;
    CHECK(rows == 3);
    return at_end.size() == 1 && at_end[0].rows == 3 &&
           at_end[0].thread == std::this_thread::get_id();
  }));
}

TEST_CASE_FIXTURE(
    SleepingQueue,
    "commit queue: in a CallerScope, an item with a `then` still goes to the thread") {
  // Someone waits for it (a sequence reservation resumes sending): it must not wait for the end.
  CommitQueue::CallerScope scope;
  std::atomic<bool> ran{false};
  queue.Enqueue(OneRow(), [&] { ran = true; });
  REQUIRE(journal.WaitForCommits(1));
  CHECK(journal.commits()[0].thread != std::this_thread::get_id());
  queue.Flush();
  CHECK(ran);
}

TEST_CASE("commit queue: an item placed in a CallerScope commits at its end with the scope's") {
  CHECK(UsualPathInSomeRun([] {
    SleepingQueue q;
    std::thread::id then_ran_on;
    q.queue.Enqueue(
        OneRow(), [&] { then_ran_on = std::this_thread::get_id(); },
        CommitBy::kCaller);  // as an open's record, before its handler runs
    {
      CommitQueue::CallerScope scope;
      q.queue.Enqueue(OneRow());  // as the handler's outcome
      q.queue.PlaceHere();
    }
    const auto at_end = q.journal.commits();
    q.queue.Flush();
    CHECK(then_ran_on != std::thread::id());
    return at_end.size() == 1 && at_end[0].rows == 2 &&
           at_end[0].thread == std::this_thread::get_id() &&
           then_ran_on == std::this_thread::get_id();
  }));
}

TEST_CASE("commit queue: an item placed outside a scope commits at once, on the caller's thread") {
  CHECK(UsualPathInSomeRun([] {
    SleepingQueue q;
    std::atomic<std::thread::id> ran_on;  // read before Flush: the thread may have run it
    q.queue.Enqueue(
        OneRow(), [&] { ran_on = std::this_thread::get_id(); }, CommitBy::kCaller);
    q.queue.PlaceHere();
    const bool here = ran_on.load() == std::this_thread::get_id();
    q.queue.Flush();
    CHECK(ran_on.load() != std::thread::id());
    return here;
  }));
}

TEST_CASE("journal batch: an inbox row removed in the batch that puts it is never written") {
  JournalBatch batch;
  JournalBatch earlier_removal;
  earlier_removal.delete_inbox = {3};  // a row committed before
  batch.Absorb(std::move(earlier_removal));
  JournalBatch puts;
  puts.put_inbox = {InboxRow{7, "peer", {}, 0, {}}, InboxRow{8, "peer", {}, 0, {}}};
  batch.Absorb(std::move(puts));
  JournalBatch removals;
  removals.delete_inbox = {8, 5};
  batch.Absorb(std::move(removals));
  REQUIRE(batch.put_inbox.size() == 1);
  CHECK(batch.put_inbox[0].id == 7);
  CHECK(batch.delete_inbox == std::vector<uint64_t>{3, 5});
}

TEST_CASE("commit queue: a CallerScope's end leaves the batch to the thread if others queued") {
  CHECK(UsualPathInSomeRun([] {
    SleepingQueue q;
    RecordingJournal& journal = q.journal;
    CommitQueue& queue = q.queue;
    {
      CommitQueue::CallerScope scope;
      queue.Enqueue(OneRow());
      std::thread other([&] { queue.Enqueue(OneRow(), nullptr, CommitBy::kCaller); });
      other.join();
    }
    queue.Flush();
    const auto commits = journal.commits();
    return commits.size() == 1 && commits[0].rows == 2 &&
           commits[0].thread != std::this_thread::get_id();
  }));
}

TEST_CASE_FIXTURE(SleepingQueue,
                  "commit queue: Flush commits a caller's item that was never placed") {
  queue.Enqueue(OneRow(), nullptr, CommitBy::kCaller);
  queue.Flush();  // returns: Flush wakes the commit thread
  CHECK(journal.commits().size() == 1);
}

TEST_CASE("commit queue: a caller's failed commit stops the queue; Flush and Shutdown return") {
  RecordingJournal journal;
  journal.FailCommits();
  std::thread::id failed_on;
  std::atomic<int> failures{0};
  {
    CommitQueue queue(journal, [&](absl::Status) {
      failed_on = std::this_thread::get_id();
      ++failures;
    });
    bool ran = false;
    queue.Enqueue(
        OneRow(), [&] { ran = true; }, CommitBy::kCaller);
    queue.CommitHereIfIdle();
    CHECK_FALSE(ran);  // not durable: its `then` never runs
    CHECK(failed_on == std::this_thread::get_id());
    queue.Enqueue(OneRow());  // dropped: fail-stop
    queue.Flush();
  }  // Shutdown joins the thread
  CHECK(failures.load() == 1);
  CHECK(journal.commits().size() == 1);
}

TEST_CASE_FIXTURE(SleepingQueue,
                  "commit queue: a held item commits with the next transaction, not before") {
  queue.Enqueue(OneRow(), nullptr, CommitBy::kHeld);  // as a request's sent copy
  CHECK(journal.commits().empty());
  std::thread::id then_ran_on;
  queue.Enqueue(
      OneRow(), [&] { then_ran_on = std::this_thread::get_id(); },
      CommitBy::kCaller);    // as its reply's record
  queue.CommitHereIfIdle();  // the held item does not count as another caller's
  CHECK(then_ran_on == std::this_thread::get_id());
  REQUIRE(journal.commits().size() == 1);
  CHECK(journal.commits()[0].rows == 2);
  CHECK(journal.commits()[0].thread == std::this_thread::get_id());
}

TEST_CASE("commit queue: a held item alone commits on the thread once it has waited the hold") {
  SleepingQueue q(std::chrono::milliseconds(1));
  q.queue.Enqueue(OneRow(), nullptr, CommitBy::kHeld);
  REQUIRE(q.journal.WaitForCommits(1));  // only if the thread committed it by itself
  CHECK(q.journal.commits()[0].thread != std::this_thread::get_id());
  q.queue.Enqueue(OneRow(), nullptr, CommitBy::kHeld);  // lingering or not, it commits this too
  CHECK(q.journal.WaitForCommits(2));
}

TEST_CASE_FIXTURE(SleepingQueue, "commit queue: Flush and Shutdown commit held items at once") {
  SUBCASE("Flush") {
    queue.Enqueue(OneRow(), nullptr, CommitBy::kHeld);
    queue.Enqueue(OneRow(), nullptr, CommitBy::kHeld);
    queue.Flush();
    REQUIRE(journal.commits().size() == 1);
    CHECK(journal.commits()[0].rows == 2);
  }
  SUBCASE("Shutdown") {
    queue.Enqueue(OneRow(), nullptr, CommitBy::kHeld);
    queue.Shutdown();
    CHECK(journal.commits().size() == 1);
  }
  SUBCASE("an item someone waits for is never held") {
    std::atomic<bool> ran{false};
    queue.Enqueue(
        OneRow(), [&] { ran = true; }, CommitBy::kHeld);
    CHECK(journal.WaitForCommits(1));
    queue.Flush();
    CHECK(ran);
  }
}

TEST_CASE_FIXTURE(SleepingQueue,
                  "commit queue: a held item and a Flush that come during a caller's commit") {
  // While a caller commits, the thread sleeps without a deadline: the caller's end must wake it
  // for a Flush (else the Flush waits for the hold, an hour here).
  journal.Hold(true);
  std::thread caller([&] {
    queue.Enqueue(OneRow(), nullptr, CommitBy::kCaller);
    queue.CommitHereIfIdle();
  });
  REQUIRE(journal.WaitForCommits(1));  // the caller is inside its commit
  queue.Enqueue(OneRow(), nullptr, CommitBy::kHeld);
  std::promise<void> flushed;
  std::thread flusher([&] {
    queue.Flush();
    flushed.set_value();
  });
  // The Flush woke the thread, which found the caller committing and sleeps without a deadline.
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (!queue.ThreadSleepsWithoutDeadline() && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::yield();
  }
  CHECK(queue.ThreadSleepsWithoutDeadline());
  journal.Hold(false);
  CHECK(flushed.get_future().wait_for(std::chrono::seconds(30)) == std::future_status::ready);
  caller.join();
  flusher.join();
  REQUIRE(journal.commits().size() == 2);
  CHECK(journal.commits()[1].thread != std::this_thread::get_id());
}

}  // namespace
}  // namespace nodelink::overlay

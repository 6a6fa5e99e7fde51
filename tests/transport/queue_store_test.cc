// The QueueStore contract, run on both implementations: FIFO per recipient, dedup (outliving
// deletion), bounds, expiry with notices, and (SQLite) recovery after reopening.
#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <memory>
#include <span>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/wal_checkpointer.h"
#include "process/temp_dir.h"
#include "process/wait_for.h"
#include "transport/memory_queue_store.h"
#include "transport/queue_committer.h"
#include "transport/sqlite_queue_store.h"
#include "wrapped_store.h"

namespace nodelink::transport {
namespace {

AppendRequest Req(std::string sender, std::string recipient, std::string id, uint64_t now = 1000,
                  std::string body = "body") {
  return AppendRequest{std::move(sender), std::move(recipient), std::move(id), now,
                       now + 500,         std::move(body)};
}

std::vector<AppendResult> CommitOk(QueueStore& s, std::vector<AppendRequest> appends,
                                   std::vector<uint64_t> deletes = {}, QueueBounds bounds = {}) {
  absl::StatusOr<std::vector<AppendResult>> r = s.Commit(appends, deletes, bounds);
  REQUIRE(r.ok());
  return *r;
}

std::vector<QueuedItem> FetchAll(QueueStore& s, const std::string& r, uint64_t after = 0) {
  absl::StatusOr<std::vector<QueuedItem>> items = s.Fetch(r, after, 1000, 1ull << 40);
  REQUIRE(items.ok());
  return *items;
}

std::string NoticeBody(const QueuedItem& expired) { return "expired:" + expired.message_id; }

struct StoreFactory {
  const char* name;
  std::function<std::unique_ptr<QueueStore>(const std::string& dir)> open;
};

std::vector<StoreFactory> Factories() {
  return {{"memory", [](const std::string&) { return std::make_unique<MemoryQueueStore>(); }},
          {"sqlite", [](const std::string& dir) -> std::unique_ptr<QueueStore> {
             auto s = SqliteQueueStore::Open({dir + "/queue.db"});
             REQUIRE(s.ok());
             return *std::move(s);
           }}};
}

TEST_CASE("queue store: FIFO per recipient, fetch after a cursor, byte cap") {
  for (const StoreFactory& f : Factories()) {
    CAPTURE(std::string(f.name));
    process::TempDir dir;
    auto s = f.open(dir.path());
    auto r = CommitOk(
        *s, {Req("a", "r", "1"), Req("b", "r", "1"), Req("a", "r", "2"), Req("a", "other", "3")});
    REQUIRE(r.size() == 4);
    for (const AppendResult& x : r) CHECK(x.outcome == AppendOutcome::kQueued);
    CHECK(r[0].id < r[1].id);
    CHECK(r[1].id < r[2].id);
    auto items = FetchAll(*s, "r");
    REQUIRE(items.size() == 3);
    CHECK(items[0].sender == "a");
    CHECK(items[0].message_id == "1");
    CHECK(items[1].sender == "b");
    CHECK(items[2].message_id == "2");
    CHECK(items[2].body == "body");
    CHECK(FetchAll(*s, "r", items[1].id).size() == 1);
    CHECK(FetchAll(*s, "nobody").empty());
    // The byte cap stops early but always returns at least one row.
    auto capped = s->Fetch("r", 0, 10, 1);
    REQUIRE(capped.ok());
    CHECK(capped->size() == 1);
    auto limited = s->Fetch("r", 0, 2, 1ull << 40);
    REQUIRE(limited.ok());
    CHECK(limited->size() == 2);
    CHECK(s->Totals().items == 4);
    CHECK(s->Totals().bytes == 16);
  }
}

TEST_CASE("queue store: dedup within a batch, across batches, and after deletion") {
  for (const StoreFactory& f : Factories()) {
    CAPTURE(std::string(f.name));
    process::TempDir dir;
    auto s = f.open(dir.path());
    auto r = CommitOk(*s, {Req("a", "r", "m"), Req("a", "r", "m"), Req("b", "r", "m")});
    CHECK(r[0].outcome == AppendOutcome::kQueued);
    CHECK(r[1].outcome == AppendOutcome::kDuplicate);
    CHECK(r[2].outcome == AppendOutcome::kQueued);  // ids are unique per sender only
    auto again = CommitOk(*s, {Req("a", "r", "m")});
    CHECK(again[0].outcome == AppendOutcome::kDuplicate);
    // Delivered deletes the row; the dedup record stays, so a late resend is not queued again.
    CommitOk(*s, {}, {r[0].id});
    CHECK(FetchAll(*s, "r").size() == 1);
    auto late = CommitOk(*s, {Req("a", "r", "m")});
    CHECK(late[0].outcome == AppendOutcome::kDuplicate);
    CHECK(*s->IsDuplicate("a", "m"));
    CHECK_FALSE(*s->IsDuplicate("a", "other"));
    // Unknown ids in deletes are ignored.
    CommitOk(*s, {}, {999999});
  }
}

TEST_CASE("queue store: per-recipient bounds by count and bytes; deletes free room") {
  for (const StoreFactory& f : Factories()) {
    CAPTURE(std::string(f.name));
    process::TempDir dir;
    auto s = f.open(dir.path());
    QueueBounds count{2, 0};
    auto r = CommitOk(
        *s, {Req("a", "r", "1"), Req("a", "r", "2"), Req("a", "r", "3"), Req("a", "q", "4")}, {},
        count);
    CHECK(r[0].outcome == AppendOutcome::kQueued);
    CHECK(r[1].outcome == AppendOutcome::kQueued);
    CHECK(r[2].outcome == AppendOutcome::kQueueFull);
    CHECK(r[3].outcome == AppendOutcome::kQueued);  // another recipient
    // A refused envelope is not in the dedup record: a retry after room is freed is queued.
    CommitOk(*s, {}, {r[0].id}, count);
    auto retry = CommitOk(*s, {Req("a", "r", "3")}, {}, count);
    CHECK(retry[0].outcome == AppendOutcome::kQueued);
    // The deletes of a commit free room for its appends (a receipt's delete rides with the next
    // append): "r" is full until the delete beside "5" runs.
    const std::vector<QueuedItem> full = FetchAll(*s, "r");
    REQUIRE(full.size() == 2);
    auto beside = CommitOk(*s, {Req("a", "r", "5")}, {full[0].id}, count);
    CHECK(beside[0].outcome == AppendOutcome::kQueued);
    // With room, the delete beside an append applies all the same.
    auto roomy = CommitOk(*s, {Req("a", "q", "6")}, {beside[0].id}, count);
    CHECK(roomy[0].outcome == AppendOutcome::kQueued);
    CHECK(FetchAll(*s, "r").size() == 1);
    CHECK(FetchAll(*s, "q").size() == 2);
    QueueBounds bytes{0, 10};
    auto b = CommitOk(*s,
                      {Req("x", "big", "1", 1000, std::string(6, 'x')),
                       Req("x", "big", "2", 1000, std::string(6, 'x')),
                       Req("x", "big", "3", 1000, std::string(4, 'x'))},
                      {}, bytes);
    CHECK(b[0].outcome == AppendOutcome::kQueued);
    CHECK(b[1].outcome == AppendOutcome::kQueueFull);
    CHECK(b[2].outcome == AppendOutcome::kQueued);
  }
}

TEST_CASE("queue store: expiry queues a notice for the sender; dedup outlives the TTL window") {
  for (const StoreFactory& f : Factories()) {
    CAPTURE(std::string(f.name));
    process::TempDir dir;
    auto s = f.open(dir.path());
    auto r = CommitOk(*s, {Req("a", "r", "old", 1000), Req("a", "r", "new", 1400)});
    // Req sets expires_at = now + 500: "old" expires at 1500, "new" at 1900.
    auto e = s->Expire(1500, 10'000, 700, NoticeBody);
    REQUIRE(e.ok());
    CHECK(e->expired_envelopes == 1);
    REQUIRE(e->notices.size() == 1);
    const QueuedItem& n = e->notices[0];
    CHECK(n.kind == QueuedKind::kExpiredNotice);
    CHECK(n.recipient == "a");  // the notice goes to the original sender
    CHECK(n.sender == "r");
    CHECK(n.message_id == "old");
    CHECK(n.body == "expired:old");
    CHECK(n.expires_at_ms == 2200);
    auto for_a = FetchAll(*s, "a");
    REQUIRE(for_a.size() == 1);
    CHECK(for_a[0].id == n.id);
    auto for_r = FetchAll(*s, "r");
    REQUIRE(for_r.size() == 1);
    CHECK(for_r[0].message_id == "new");
    // Still a duplicate after expiry, within the dedup window.
    CHECK(*s->IsDuplicate("a", "old"));
    // Later: "new" expires, the old notice is dropped silently, dedup records past the window go.
    auto later = s->Expire(20'000, 10'000, 700, NoticeBody);
    REQUIRE(later.ok());
    CHECK(later->expired_envelopes == 1);
    CHECK(later->dropped_notices == 1);
    CHECK(later->forgotten_dedup == 2);
    CHECK_FALSE(*s->IsDuplicate("a", "old"));
    (void)r;
  }
}

TEST_CASE("sqlite queue store: a second store on an open database is refused, saying why") {
  // Two hubs on one data directory would push and delete each other's rows, and the second's
  // OpenSpool would remove body files of the first one's commits.
  process::TempDir dir;
  const std::string path = dir.File("queue.db");
  auto first = SqliteQueueStore::Open({path});
  REQUIRE(first.ok());
  CommitOk(**first, {Req("a", "r", "1")});
  auto second = SqliteQueueStore::Open({path});
  REQUIRE_FALSE(second.ok());
  CHECK(absl::IsFailedPrecondition(second.status()));
  CHECK_MESSAGE(second.status().message().find("in use by another process") != std::string::npos,
                second.status());
  CHECK(FetchAll(**first, "r").size() == 1);  // the first is unaffected
  first->reset();
  auto again = SqliteQueueStore::Open({path});  // the lock goes with the first store
  REQUIRE(again.ok());
  CHECK(FetchAll(**again, "r").size() == 1);
}

TEST_CASE("queue stores: before_commit sees each append's outcome; a failed commit's ids stay used") {
  // The relay pushes what before_commit shows as kQueued while the commit syncs (relay.h). If the
  // commit then fails, the recipient's receipt names an id that must never belong to another row.
  process::TempDir dir;
  auto sqlite = SqliteQueueStore::Open({dir.File("queue.db")});
  REQUIRE(sqlite.ok());
  MemoryQueueStore memory;
  for (QueueStore* s : {static_cast<QueueStore*>(sqlite->get()), static_cast<QueueStore*>(&memory)}) {
    CAPTURE((s == &memory ? "memory" : "sqlite"));
    const uint64_t first = CommitOk(*s, {Req("a", "r", "1")}).at(0).id;
    std::vector<AppendResult> shown;
    absl::StatusOr<std::vector<AppendResult>> r =
        s->Commit(std::vector{Req("a", "r", "1"), Req("a", "r", "2"), Req("a", "r", "3")}, {}, {},
                  [&](std::span<const AppendResult> staged) {
                    shown.assign(staged.begin(), staged.end());
                  });
    REQUIRE(r.ok());
    REQUIRE(shown.size() == 3);
    CHECK(shown[0].outcome == AppendOutcome::kDuplicate);
    CHECK(shown[1].outcome == AppendOutcome::kQueued);
    CHECK(shown[1].id == (*r)[1].id);
    CHECK(shown[2].id == (*r)[2].id);
    CHECK((*r)[1].id > first);
    if (s == &memory) continue;  // nothing of its commit can fail after before_commit
    // A commit that fails after before_commit (here the hook throws, as SQLite's COMMIT would):
    // nothing is applied, and the ids it showed are skipped by the next commits (and, once one of
    // those committed, after a restart of the store).
    uint64_t failed_id = 0;
    absl::StatusOr<std::vector<AppendResult>> failed =
        s->Commit(std::vector{Req("a", "r", "4")}, {}, {}, [&](std::span<const AppendResult> st) {
          failed_id = st[0].id;
          throw std::runtime_error("injected: the commit fails");
        });
    CHECK_FALSE(failed.ok());
    CHECK(failed_id > (*r)[2].id);
    CHECK(FetchAll(*s, "r").size() == 3);
    const uint64_t next = CommitOk(*s, {Req("a", "r", "4")}).at(0).id;
    CHECK(next > failed_id);
    sqlite->reset();
    sqlite = SqliteQueueStore::Open({dir.File("queue.db")});
    REQUIRE(sqlite.ok());
    CHECK(CommitOk(**sqlite, {Req("a", "r", "5")}).at(0).id > next);
    CHECK(FetchAll(**sqlite, "r").size() == 5);
  }
}

TEST_CASE("sqlite queue store: the WAL is checkpointed off the queue thread and restarts") {
  process::TempDir dir;
  const std::string path = dir.File("queue.db");
  // Every append and delete is a commit of a few frames, so a WAL that never restarted would hold
  // them all. Envelopes go on until it restarted twice: how many that takes depends on how soon
  // the thread's pass ends (the machine's load), so the cap is only for a broken run.
  constexpr int kMaxEnvelopes = 10 * core::WalCheckpointer::kThresholdFrames;
  int envelopes = 0;
  {
    auto store = SqliteQueueStore::Open({path});
    REQUIRE(store.ok());
    const core::WalCheckpointer& wal = (*store)->wal_checkpointer();
    for (; envelopes < kMaxEnvelopes && wal.restarts() < 2; ++envelopes) {
      const std::vector<AppendResult> r =
          CommitOk(**store, {Req("s", "r", std::to_string(envelopes))});
      REQUIRE(r[0].outcome == AppendOutcome::kQueued);
      if (envelopes % 2 == 0) CommitOk(**store, {}, {r[0].id});  // every other one delivered
    }
    CHECK(wal.restarts() >= 2);
    CHECK(wal.checkpoints() > 0);  // pass 1 copied frames: pass 2 did not do it all
  }
  auto store = SqliteQueueStore::Open({path});
  REQUIRE(store.ok());
  CHECK((*store)->Totals().items == static_cast<uint64_t>(envelopes / 2));
  const std::vector<QueuedItem> oldest = FetchAll(**store, "r");
  REQUIRE_FALSE(oldest.empty());
  CHECK(oldest.front().message_id == "1");  // the first kept, in order
}

TEST_CASE("sqlite queue store: rows, dedup, usage and increasing ids survive reopening") {
  process::TempDir dir;
  const std::string path = dir.File("queue.db");
  uint64_t last_id = 0;
  {
    auto s = SqliteQueueStore::Open({path});
    REQUIRE(s.ok());
    auto r = CommitOk(**s, {Req("a", "r", "1"), Req("a", "r", "2"), Req("a", "r", "3")}, {},
                      QueueBounds{3, 0});
    last_id = r[2].id;
    // Delete the newest row: AUTOINCREMENT must not hand its id out again (the relay's cursor).
    CommitOk(**s, {}, {last_id});
  }
  auto s = SqliteQueueStore::Open({path});
  REQUIRE(s.ok());
  auto items = FetchAll(**s, "r");
  REQUIRE(items.size() == 2);
  CHECK(items[0].message_id == "1");
  CHECK((*s)->Totals().items == 2);
  auto dup = CommitOk(**s, {Req("a", "r", "3")});
  CHECK(dup[0].outcome == AppendOutcome::kDuplicate);
  // Usage was reloaded: one more fits under a bound of 3, the next does not.
  auto more = CommitOk(**s, {Req("a", "r", "4"), Req("a", "r", "5")}, {}, QueueBounds{3, 0});
  CHECK(more[0].outcome == AppendOutcome::kQueued);
  CHECK(more[0].id > last_id);
  CHECK(more[1].outcome == AppendOutcome::kQueueFull);
}

TEST_CASE("sqlite queue store: appends stop at the disk headroom; deletes still run") {
  process::TempDir dir;
  SqliteQueueOptions o{dir.File("queue.db")};
  auto roomy = SqliteQueueStore::Open(o);
  REQUIRE(roomy.ok());
  auto first = CommitOk(**roomy, {Req("a", "r", "1")});
  REQUIRE(first.at(0).outcome == AppendOutcome::kQueued);
  roomy->reset();
  o.min_free_bytes = uint64_t{1} << 62;  // more than any disk has free
  auto full = SqliteQueueStore::Open(o);
  REQUIRE(full.ok());
  auto refused = CommitOk(**full, {Req("a", "r", "2"), Req("a", "r", "3")});
  CHECK(refused.at(0).outcome == AppendOutcome::kDiskFull);
  CHECK(refused.at(1).outcome == AppendOutcome::kDiskFull);
  CommitOk(**full, {}, {first[0].id});
  CHECK((*full)->Totals().items == 0);
}

bool Exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

TEST_CASE("sqlite queue store: large bodies live in files, written before and removed after") {
  for (SqliteSynchronous mode : {SqliteSynchronous::kNormal, SqliteSynchronous::kFull}) {
    CAPTURE(static_cast<int>(mode));
    process::TempDir dir;
    SqliteQueueOptions o{dir.File("queue.db")};
    o.synchronous = mode;  // kFull: files fdatasync'd, and their directory, before the commit
    o.spool_min_bytes = 100;
    const std::string bodies = o.path + "-bodies";
    const std::string big(5000, 'B');
    uint64_t big_id = 0, expiring_id = 0;
    {
      auto s = SqliteQueueStore::Open(o);
      REQUIRE(s.ok());
      auto r = CommitOk(**s, {Req("a", "r", "small"), Req("a", "r", "big", 1000, big),
                              Req("a", "r", "expiring", 1000, big)});
      big_id = r[1].id;
      expiring_id = r[2].id;
      CHECK_FALSE(Exists(bodies + "/" + std::to_string(r[0].id)));  // small: in the row
      CHECK(Exists(bodies + "/" + std::to_string(big_id)));
      CHECK((*s)->Totals().bytes == 4 + 2 * big.size());
      auto items = FetchAll(**s, "r");
      REQUIRE(items.size() == 3);
      CHECK(items[1].body == big);
      // A byte cap counts the spooled body.
      auto capped = (*s)->Fetch("r", 0, 10, 4 + 10);
      REQUIRE(capped.ok());
      CHECK(capped->size() == 1);
    }
    // A file no row names (a commit that never happened, or a delete before its unlink).
    std::FILE* orphan = std::fopen((bodies + "/999999").c_str(), "w");
    REQUIRE(orphan != nullptr);
    std::fclose(orphan);
    {
      auto s = SqliteQueueStore::Open(o);
      REQUIRE(s.ok());
      CHECK_FALSE(Exists(bodies + "/999999"));
      CHECK((*s)->Totals().bytes == 4 + 2 * big.size());  // usage reloaded with file sizes
      CommitOk(**s, {}, {big_id});
      CHECK_FALSE(Exists(bodies + "/" + std::to_string(big_id)));
      // Expiry removes the file too, and the notice needs no body.
      auto expired = (*s)->Expire(2000, 10, 500, NoticeBody);
      REQUIRE(expired.ok());
      CHECK(expired->expired_envelopes == 2);
      CHECK_FALSE(Exists(bodies + "/" + std::to_string(expiring_id)));
      CHECK((*s)->Totals().items == 2);  // the two notices
    }
  }
}

TEST_CASE("sqlite queue store: a lost body file is skipped, counted, and the rest delivered") {
  process::TempDir dir;
  SqliteQueueOptions o{dir.File("queue.db")};
  o.spool_min_bytes = 100;
  auto s = SqliteQueueStore::Open(o);
  REQUIRE(s.ok());
  auto r = CommitOk(**s, {Req("a", "r", "1", 1000, std::string(500, 'x')),
                          Req("a", "r", "2", 1000, std::string(500, 'y')),
                          Req("a", "r", "3", 1000, std::string(500, 'z'))});
  const std::string bodies = o.path + "-bodies/";
  REQUIRE(::unlink((bodies + std::to_string(r[0].id)).c_str()) == 0);
  REQUIRE(::truncate((bodies + std::to_string(r[1].id)).c_str(), 10) == 0);  // cut short
  auto items = FetchAll(**s, "r");
  REQUIRE(items.size() == 1);
  CHECK(items[0].message_id == "3");
  CHECK((*s)->lost_bodies() == 2);
  FetchAll(**s, "r");
  CHECK((*s)->lost_bodies() == 2);  // counted once each
}

TEST_CASE("sqlite queue store: a version 1 database is migrated and its rows kept") {
  process::TempDir dir;
  const std::string path = dir.File("queue.db");
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec(
        "CREATE TABLE queue(id INTEGER PRIMARY KEY AUTOINCREMENT, recipient TEXT NOT NULL, "
        "sender TEXT NOT NULL, message_id BLOB NOT NULL, kind INTEGER NOT NULL, "
        "enqueued_at_ms INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL, body BLOB NOT NULL);"
        "CREATE TABLE meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "INSERT INTO meta VALUES('schema_version', 1);"
        "INSERT INTO queue(recipient, sender, message_id, kind, enqueued_at_ms, expires_at_ms, "
        "body) VALUES('r', 'a', 'old', 0, 1000, 999999, x'0102')");
  }
  auto s = SqliteQueueStore::Open({path});
  REQUIRE(s.ok());
  auto items = FetchAll(**s, "r");
  REQUIRE(items.size() == 1);
  CHECK(items[0].body == std::string("\x01\x02", 2));
  CHECK((*s)->Totals().bytes == 2);
}

// A store on a disk that is full: every transaction with an append fails as SQLite's does
// (ResourceExhausted); deletes alone still go through.
class FullDiskStore final : public testing::WrappedStore {
 public:
  FullDiskStore() : WrappedStore(std::make_unique<MemoryQueueStore>()) {}
  absl::StatusOr<std::vector<AppendResult>> Commit(std::span<const AppendRequest> appends,
                                                   std::span<const uint64_t> deletes,
                                                   const QueueBounds& bounds,
                                                   const BeforeCommit& before_commit) override {
    if (!appends.empty()) return absl::ResourceExhaustedError("the disk is full");
    return WrappedStore::Commit(appends, deletes, bounds, before_commit);
  }
};

TEST_CASE("committer: a full disk answers kDiskFull and still applies the batch's deletes") {
  auto store = std::make_unique<FullDiskStore>();
  const uint64_t queued = CommitOk(store->inner(), {Req("a", "r", "1")}).at(0).id;
  QueueCommitter committer(std::move(store), CommitterOptions{64, {}, 1000});
  // Hold the committer's thread in a fetch callback so that the delete and the append land in
  // one batch, the case where the deletes must be retried alone.
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  CHECK(committer.Fetch("r", 0, 1, 1024, [released](auto) { released.wait(); }));
  std::promise<absl::StatusOr<AppendResult>> answered;
  CHECK(committer.Delete(queued));
  CHECK(committer.Append(Req("a", "r", "2"),
                         [&](const absl::StatusOr<AppendResult>& r) { answered.set_value(r); }));
  release.set_value();
  const absl::StatusOr<AppendResult> r = answered.get_future().get();
  REQUIRE(r.ok());
  CHECK(r->outcome == AppendOutcome::kDiskFull);
  CHECK(committer.totals().items == 0);  // the delete went through on its own
  committer.Stop();
}

// Appends `id` for "r" through the committer and returns its queue id once committed.
uint64_t AppendAndWait(QueueCommitter& committer, const std::string& id) {
  std::promise<absl::StatusOr<AppendResult>> answered;
  REQUIRE(committer.Append(Req("a", "r", id),
                           [&](const absl::StatusOr<AppendResult>& r) { answered.set_value(r); }));
  const absl::StatusOr<AppendResult> r = answered.get_future().get();
  REQUIRE(r.ok());
  REQUIRE(r->outcome == AppendOutcome::kQueued);
  return r->id;
}

TEST_CASE("committer: a delete alone waits for the next append's transaction") {
  CommitterOptions options;
  options.maintain_interval_ms = 600'000;  // no tick in the test: only the append takes it along
  QueueCommitter committer(std::make_unique<MemoryQueueStore>(), options);
  const uint64_t first = AppendAndWait(committer, "1");
  CHECK(committer.Delete(first));
  AppendAndWait(committer, "2");
  const CommitterStats st = committer.stats();
  CHECK(st.commits == 2);
  CHECK(st.deletes == 1);
  CHECK(st.batch_histogram[0] == 0);  // no transaction of deletes alone
  CHECK(committer.totals().items == 1);
  committer.Stop();
}

TEST_CASE("committer: a batch of deletes alone wakes the thread and commits") {
  CommitterOptions options;
  options.max_batch = 4;
  options.maintain_interval_ms = 600'000;  // no tick in the test
  QueueCommitter committer(std::make_unique<MemoryQueueStore>(), options);
  std::vector<uint64_t> ids;
  for (const char* id : {"1", "2", "3", "4"}) ids.push_back(AppendAndWait(committer, id));
  for (size_t i = 0; i + 1 < ids.size(); ++i) CHECK(committer.Delete(ids[i]));
  CHECK(committer.totals().items == 4);  // three deletes are held
  CHECK(committer.Delete(ids.back()));   // the fourth makes a batch
  CHECK(process::WaitFor([&] { return committer.totals().items == 0; }, std::chrono::seconds(30)));
  CHECK(committer.stats().batch_histogram[0] == 1);
  committer.Stop();
}

TEST_CASE("committer: held deletes are committed by a fetch, by Stop and at the next tick") {
  process::TempDir dir;
  CommitterOptions options;
  options.maintain_interval_ms = 600'000;
  {
    auto store = SqliteQueueStore::Open({dir.File("queue.db")});
    REQUIRE(store.ok());
    QueueCommitter committer(*std::move(store), options);
    const uint64_t first = AppendAndWait(committer, "1");
    const uint64_t second = AppendAndWait(committer, "2");
    CHECK(committer.Delete(first));
    std::promise<size_t> fetched;  // a fetch sees every delete posted before it
    CHECK(committer.Fetch("r", 0, 10, 1ull << 20, [&](absl::StatusOr<std::vector<QueuedItem>> r) {
      fetched.set_value(r.ok() ? r->size() : 99);
    }));
    CHECK(fetched.get_future().get() == 1);
    CHECK(committer.Delete(second));
    committer.Stop();  // commits the held delete before closing the store
    CHECK(committer.totals().items == 0);
  }
  {
    auto store = SqliteQueueStore::Open({dir.File("queue.db")});
    REQUIRE(store.ok());
    CHECK(FetchAll(**store, "r").empty());  // durably gone
    options.maintain_interval_ms = 10;
    QueueCommitter committer(*std::move(store), options);
    CHECK(committer.Delete(AppendAndWait(committer, "3")));
    CHECK(process::WaitFor([&] { return committer.totals().items == 0; },
                           std::chrono::seconds(30)));  // alone, at the next tick
    CHECK(committer.stats().batch_histogram[0] == 1);
    committer.Stop();
  }
}

// Appends `id` for "r" under `turn` and records on which thread its two completions ran.
struct TurnAppend {
  std::atomic<bool> done{false};
  std::thread::id staged_on, done_on;
  void Post(QueueCommitter& committer, const std::string& id) {
    REQUIRE(committer.Append(
        Req("a", "r", id),
        [this](const absl::StatusOr<AppendResult>& r) {
          CHECK(r.ok());
          done_on = std::this_thread::get_id();
          done = true;
        },
        [this](const AppendResult&) { staged_on = std::this_thread::get_id(); }));
  }
};

CommitterOptions NoTick() {
  CommitterOptions options;
  options.maintain_interval_ms = 600'000;  // no tick in the test
  return options;
}

TEST_CASE("committer: a CallerTurn's appends wake no thread and commit where it runs the pass") {
  // The committer's thread may wake spuriously (glibc) and then take the append: every run checks
  // the guarantees, one at least the usual path.
  bool usual = false;
  for (int run = 0; run < 5 && !usual; ++run) {
    QueueCommitter committer(std::make_unique<MemoryQueueStore>(), NoTick());
    AppendAndWait(committer, "0");
    REQUIRE(process::WaitFor([&] { return committer.ThreadWaiting(); }, std::chrono::seconds(30)));
    TurnAppend a;
    {
      QueueCommitter::CallerTurn turn(committer);
      a.Post(committer, "1");
      CHECK(turn.pending());
      CHECK(turn.posted() == 1);  // the hub's completion-queue loop reads more than one as load
      REQUIRE(committer.Delete(1));
      CHECK(turn.posted() == 1);  // a delete waits for a pass to join: not counted
      turn.RunHere();
      CHECK_FALSE(turn.pending());
      CHECK(turn.posted() == 0);
    }
    CHECK(process::WaitFor([&] { return a.done.load(); }, std::chrono::seconds(30)));
    const CommitterStats st = committer.stats();
    CHECK(st.appends == 2);
    CHECK(st.posts_waking_thread == 1);  // "0" only
    usual = a.done_on == std::this_thread::get_id() && a.staged_on == a.done_on &&
            st.caller_passes == 1;
    committer.Stop();
  }
  CHECK(usual);
}

TEST_CASE("committer: a CallerTurn hands its pass to the thread, which also runs it at Stop") {
  QueueCommitter committer(std::make_unique<MemoryQueueStore>(), NoTick());
  SUBCASE("HandToThread") {
    TurnAppend a;
    QueueCommitter::CallerTurn turn(committer);
    a.Post(committer, "1");
    turn.HandToThread();
    CHECK(process::WaitFor([&] { return a.done.load(); }, std::chrono::seconds(30)));
    CHECK(a.done_on != std::this_thread::get_id());
  }
  SUBCASE("Stop") {
    TurnAppend a;
    QueueCommitter::CallerTurn turn(committer);
    a.Post(committer, "1");
    committer.Stop();  // the thread's last pass takes what the turn posted
    CHECK(a.done);
    CHECK(a.done_on != std::this_thread::get_id());
  }
  SUBCASE("caller passes off (a hub whose commits sync the disk)") {
    CommitterOptions options = NoTick();
    options.caller_passes = false;
    QueueCommitter syncing(std::make_unique<MemoryQueueStore>(), options);
    TurnAppend a;
    QueueCommitter::CallerTurn turn(syncing);
    a.Post(syncing, "1");
    turn.RunHere();  // hands the pass on
    CHECK(process::WaitFor([&] { return a.done.load(); }, std::chrono::seconds(30)));
    CHECK(a.done_on != std::this_thread::get_id());
    CHECK(syncing.stats().caller_passes == 0);
  }
}

TEST_CASE("committer: a CallerTurn leaves fetches and large bodies to the thread") {
  QueueCommitter committer(std::make_unique<MemoryQueueStore>(), NoTick());
  QueueCommitter::CallerTurn turn(committer);
  SUBCASE("a fetch (a reconnect's backlog)") {
    std::promise<std::thread::id> fetched_on;
    CHECK(committer.Fetch("r", 0, 10, 1 << 20,
                          [&](auto) { fetched_on.set_value(std::this_thread::get_id()); }));
    turn.RunHere();
    CHECK(fetched_on.get_future().get() != std::this_thread::get_id());
  }
  SUBCASE("an append of a large body, and the small one posted with it") {
    std::promise<std::thread::id> large_on;
    AppendRequest large = Req("a", "r", "large");
    large.body.assign(64 << 10 | 1, 'x');
    CHECK(committer.Append(std::move(large), [&](const absl::StatusOr<AppendResult>&) {
      large_on.set_value(std::this_thread::get_id());
    }));
    TurnAppend small;
    small.Post(committer, "small");
    turn.RunHere();
    CHECK(large_on.get_future().get() != std::this_thread::get_id());
    CHECK(process::WaitFor([&] { return small.done.load(); }, std::chrono::seconds(30)));
    CHECK(small.done_on != std::this_thread::get_id());
  }
  CHECK(committer.stats().caller_passes == 0);
  committer.Stop();
}

TEST_CASE("committer: RunHere while the thread is in a pass leaves the ops to the thread") {
  QueueCommitter committer(std::make_unique<MemoryQueueStore>(), NoTick());
  std::promise<void> entered, release;
  std::shared_future<void> released = release.get_future().share();
  CHECK(committer.Fetch("r", 0, 1, 1024, [&entered, released](auto) {
    entered.set_value();
    released.wait();  // the thread's pass is under way
  }));
  entered.get_future().wait();
  TurnAppend a;
  {
    QueueCommitter::CallerTurn turn(committer);
    a.Post(committer, "1");
    turn.RunHere();  // returns at once: a pass is running
    CHECK_FALSE(a.done);
  }
  release.set_value();
  CHECK(process::WaitFor([&] { return a.done.load(); }, std::chrono::seconds(30)));
  CHECK(a.done_on != std::this_thread::get_id());
  committer.Stop();
}

TEST_CASE("sqlite queue store: a file that is not a database is refused with a status") {
  process::TempDir dir;
  {
    std::FILE* f = std::fopen(dir.File("queue.db").c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs("this is not an SQLite database, just some text that is long enough.....", f);
    std::fclose(f);
  }
  auto s = SqliteQueueStore::Open({dir.File("queue.db")});
  CHECK_FALSE(s.ok());
}

TEST_CASE("committer: group commit batches appends and reports outcomes after commit") {
  process::TempDir dir;
  auto store = SqliteQueueStore::Open({dir.File("queue.db")});
  REQUIRE(store.ok());
  QueueCommitter committer(*std::move(store), CommitterOptions{64, {}, 1000});
  constexpr int kCount = 2000;
  std::mutex mu;
  std::vector<uint64_t> ids;
  std::condition_variable cv;
  for (int i = 0; i < kCount; ++i) {
    CHECK(committer.Append(
        Req("a", "r", std::to_string(i)), [&](const absl::StatusOr<AppendResult>& r) {
          std::lock_guard lock(mu);
          ids.push_back(r.ok() && r->outcome == AppendOutcome::kQueued ? r->id : 0);
          cv.notify_all();
        }));
  }
  {
    std::unique_lock lock(mu);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return ids.size() == kCount; }));
  }
  // Completions arrive in append order with increasing ids (FIFO).
  for (size_t i = 1; i < ids.size(); ++i) CHECK(ids[i] > ids[i - 1]);
  const CommitterStats st = committer.stats();
  CHECK(st.appends == kCount);
  CHECK(st.max_batch <= 64);
  CHECK(st.commits < kCount);  // batched: fewer transactions than envelopes
  MESSAGE("group commit: " << st.commits << " commits for " << kCount << " appends, max batch "
                           << st.max_batch);
  // A fetch posted after appends sees them.
  std::promise<size_t> fetched;
  CHECK(committer.Fetch("r", 0, 5000, 1ull << 40, [&](absl::StatusOr<std::vector<QueuedItem>> r) {
    fetched.set_value(r.ok() ? r->size() : 0);
  }));
  CHECK(fetched.get_future().get() == kCount);
  committer.Stop();
  CHECK_FALSE(committer.Delete(1));  // dropped after Stop
}

}  // namespace
}  // namespace nodelink::transport

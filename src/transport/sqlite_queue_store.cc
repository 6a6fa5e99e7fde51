#include "transport/sqlite_queue_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

#include "core/file_lock.h"
#include "core/spool_dir.h"
#include "core/status.h"
#include "core/wal_checkpointer.h"
#include "spdlog/spdlog.h"

namespace nodelink::transport {

namespace {

// Version 2 added spooled_bytes: bodies of at least SqliteQueueOptions::spool_min_bytes live in
// files named by the row id (core/spool_dir.h), the row's body is empty and spooled_bytes holds
// the file's size.
constexpr int kSchemaVersion = 2;

// Ids only grow, and are never reused after a delete: the relay's per-session cursor ("pushed up
// to id N") relies on it. The store hands them out itself (last_id_, InsertRow); AUTOINCREMENT
// keeps the largest ever used in sqlite_sequence, for the next start.
constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS queue(
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  recipient TEXT NOT NULL,
  sender TEXT NOT NULL,
  message_id BLOB NOT NULL,
  kind INTEGER NOT NULL,
  enqueued_at_ms INTEGER NOT NULL,
  expires_at_ms INTEGER NOT NULL,
  body BLOB NOT NULL,
  spooled_bytes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS queue_by_recipient ON queue(recipient, id);
CREATE INDEX IF NOT EXISTS queue_by_expiry ON queue(expires_at_ms);
CREATE TABLE IF NOT EXISTS dedup(
  sender TEXT NOT NULL,
  message_id BLOB NOT NULL,
  seen_at_ms INTEGER NOT NULL,
  PRIMARY KEY(sender, message_id)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dedup_by_time ON dedup(seen_at_ms);
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL);
)sql";

uint64_t SteadyMs() {
  using namespace std::chrono;
  return static_cast<uint64_t>(
      duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count());
}

int64_t I64(uint64_t v) { return static_cast<int64_t>(v); }

constexpr int kBusyTimeoutMs = 5000;

uint64_t FileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

absl::Status StorageError(std::string_view what, const std::exception& e) {
  // A full disk is the one storage failure a sender can do something about (retry later): the
  // committer answers it kDiskFull instead of an error (queue_committer.cc).
  const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
  if (sqlite != nullptr && sqlite->getErrorCode() == SQLITE_FULL) {
    return absl::ResourceExhaustedError(std::string("hub queue database: ") + std::string(what) +
                                        ": the disk is full; free space in the data directory");
  }
  return absl::UnavailableError(std::string("hub queue database: ") + std::string(what) + ": " +
                                e.what() + "; check the data directory (disk space, permissions)");
}

// Columns: id, recipient, sender, message_id, kind, enqueued_at_ms, expires_at_ms, body,
// spooled_bytes. A spooled body is left empty here (the caller reads its file if it needs it).
QueuedItem ReadRow(SQLite::Statement& q) {
  QueuedItem item;
  item.id = static_cast<uint64_t>(q.getColumn(0).getInt64());
  item.recipient = q.getColumn(1).getString();
  item.sender = q.getColumn(2).getString();
  item.message_id = q.getColumn(3).getString();
  item.kind = static_cast<QueuedKind>(q.getColumn(4).getInt());
  item.enqueued_at_ms = static_cast<uint64_t>(q.getColumn(5).getInt64());
  item.expires_at_ms = static_cast<uint64_t>(q.getColumn(6).getInt64());
  item.body = q.getColumn(7).getString();
  return item;
}

uint64_t SpooledBytes(SQLite::Statement& q) {
  return static_cast<uint64_t>(q.getColumn(8).getInt64());
}

std::string SpoolName(uint64_t id) { return std::to_string(id); }

}  // namespace

struct SqliteQueueStore::Statements {
  explicit Statements(SQLite::Database& db)
      : insert(db,
               "INSERT INTO queue(id, recipient, sender, message_id, kind, enqueued_at_ms, "
               "expires_at_ms, body, spooled_bytes) VALUES(?,?,?,?,?,?,?,?,?)"),
        erase(db,
              "DELETE FROM queue WHERE id = ? RETURNING recipient, kind, "
              "length(body) + spooled_bytes, spooled_bytes"),
        fetch(
            db,
            "SELECT id, recipient, sender, message_id, kind, enqueued_at_ms, expires_at_ms, body, "
            "spooled_bytes FROM queue WHERE recipient = ? AND id > ? ORDER BY id LIMIT ?"),
        dedup_find(db, "SELECT 1 FROM dedup WHERE sender = ? AND message_id = ?"),
        dedup_insert(db, "INSERT INTO dedup(sender, message_id, seen_at_ms) VALUES(?,?,?)"),
        expired(db,
                "SELECT id, recipient, sender, message_id, kind, enqueued_at_ms, expires_at_ms, "
                "body, spooled_bytes FROM queue WHERE expires_at_ms <= ? ORDER BY id"),
        dedup_forget(db, "DELETE FROM dedup WHERE seen_at_ms < ?") {}
  SQLite::Statement insert;
  SQLite::Statement erase;
  SQLite::Statement fetch;
  SQLite::Statement dedup_find;
  SQLite::Statement dedup_insert;
  SQLite::Statement expired;
  SQLite::Statement dedup_forget;
};

SqliteQueueStore::SqliteQueueStore(SqliteQueueOptions options) : options_(std::move(options)) {}

SqliteQueueStore::~SqliteQueueStore() {
  checkpointer_.reset();  // removes its hook from the database
  st_.reset();            // statements before the database
  db_.reset();
}  // lock_ last, with everything it guards closed

absl::StatusOr<std::unique_ptr<SqliteQueueStore>> SqliteQueueStore::Open(
    SqliteQueueOptions options) {
  std::unique_ptr<SqliteQueueStore> store(new SqliteQueueStore(std::move(options)));
  if (absl::Status s = store->Init(); !s.ok()) return s;
  return store;
}

// Two hubs on one queue would push and delete each other's rows, and the second's OpenSpool would
// remove body files of the first one's commits. SQLite's locks cannot keep the second out (the
// hub itself has two connections, the queue's and the checkpointer's), so the store holds a lock
// on a file of its own beside the database for as long as it is open.
absl::Status SqliteQueueStore::LockDataFile() {
  absl::StatusOr<core::FileLock> lock =
      core::FileLock::Take(options_.path + "-lock", core::FileLock::Mode::kTry);
  if (absl::IsFailedPrecondition(lock.status())) {
    return absl::FailedPreconditionError(
        "hub queue database " + options_.path +
        " is in use by another process (another nodelink-hub with this --data-dir?); stop it, "
        "or give this hub its own data directory");
  }
  if (!lock.ok()) {
    return absl::UnavailableError("hub queue: " + std::string(lock.status().message()) +
                                  "; check the data directory (permissions, disk space)");
  }
  lock_.emplace(*std::move(lock));
  return absl::OkStatus();
}

absl::Status SqliteQueueStore::Init() {
  NL_RETURN_IF_ERROR(LockDataFile());
  try {
    db_ = std::make_unique<SQLite::Database>(options_.path,
                                             SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    sqlite3_busy_timeout(db_->getHandle(), kBusyTimeoutMs);
    // Large bodies are files (spool_min_bytes), so rows are small: each commit writes the pages
    // it touched to the -wal file, six for a one-envelope append (the row, its two indexes,
    // the AUTOINCREMENT counter, the dedup record and its index) and three for its delete. With
    // 16 KiB pages (chosen when bodies were in overflow chains) that was 96 + 48 KiB per
    // envelope; with 4 KiB, 24 + 12. Round trip: p50 -10 %, p99.9 ~60 -> 21-31 ms
    // (bench/RESULTS.md). Takes effect only when the file is created (before WAL is on).
    db_->exec("PRAGMA page_size=4096");
    if (db_->execAndGet("PRAGMA journal_mode=WAL").getString() != "wal") {
      return absl::FailedPreconditionError("hub queue database " + options_.path +
                                           ": could not switch to WAL mode; use a local file "
                                           "system for the data directory");
    }
    db_->exec(options_.synchronous == SqliteSynchronous::kFull ? "PRAGMA synchronous=FULL"
                                                               : "PRAGMA synchronous=NORMAL");
    db_->exec("PRAGMA journal_size_limit=" + std::to_string(options_.journal_size_limit_bytes));
    db_->exec(kSchema);
    {
      SQLite::Statement v(*db_, "SELECT value FROM meta WHERE key = 'schema_version'");
      if (v.executeStep()) {
        const int version = v.getColumn(0).getInt();
        v.reset();
        if (version == 1) {  // a hub before spooled bodies: every body is in its row
          SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
          db_->exec("ALTER TABLE queue ADD COLUMN spooled_bytes INTEGER NOT NULL DEFAULT 0");
          db_->exec("UPDATE meta SET value = 2 WHERE key = 'schema_version'");
          tx.commit();
        } else if (version != kSchemaVersion) {
          return absl::FailedPreconditionError("hub queue database " + options_.path +
                                               " has schema version " + std::to_string(version) +
                                               ", this hub reads versions 1 and " +
                                               std::to_string(kSchemaVersion));
        }
      } else {
        db_->exec("INSERT INTO meta(key, value) VALUES('schema_version', " +
                  std::to_string(kSchemaVersion) + ")");
      }
    }
    NL_RETURN_IF_ERROR(OpenSpool());
    SQLite::Statement usage(*db_,
                            "SELECT recipient, kind, COUNT(*), SUM(length(body) + spooled_bytes) "
                            "FROM queue GROUP BY recipient, kind");
    while (usage.executeStep()) {
      const uint64_t count = static_cast<uint64_t>(usage.getColumn(2).getInt64());
      const uint64_t bytes = static_cast<uint64_t>(usage.getColumn(3).getInt64());
      totals_.items += count;
      totals_.bytes += bytes;
      if (usage.getColumn(1).getInt() == static_cast<int>(QueuedKind::kEnvelope)) {
        Usage& u = usage_[usage.getColumn(0).getString()];
        u.count += count;
        u.bytes += bytes;
      }
    }
    SQLite::Statement last(*db_,
                           "SELECT max(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = "
                           "'queue'), 0), COALESCE((SELECT max(id) FROM queue), 0))");
    if (last.executeStep()) last_id_ = static_cast<uint64_t>(last.getColumn(0).getInt64());
    st_ = std::make_unique<Statements>(*db_);
    // SQLite's automatic checkpoint would run inside the commit that crosses its threshold, on
    // the queue thread, so every `Accepted` behind it would wait for the copy and its fsyncs:
    // 10-15 ms at 256 pages, the round trip's p99 (bench/RESULTS.md, twelfth session). The
    // checkpointer's second connection is why the database is no longer in EXCLUSIVE locking
    // mode, which had saved the lock and shared-memory calls of each transaction (hub CPU per
    // round trip -5 to -8 % in the sixth session; no difference measurable in the fourteenth);
    // LockDataFile keeps out a second hub instead.
    checkpointer_ =
        std::make_unique<core::WalCheckpointer>(*db_, options_.path, "hub queue " + options_.path);
    last_checkpoint_ms_ = SteadyMs();
  } catch (const std::exception& e) {
    const auto* sqlite = dynamic_cast<const SQLite::Exception*>(&e);
    if (sqlite != nullptr && sqlite->getErrorCode() == SQLITE_BUSY) {
      return absl::FailedPreconditionError(
          "hub queue database " + options_.path +
          " is in use by another process (another nodelink-hub with this --data-dir?); stop it, "
          "or give this hub its own data directory");
    }
    return StorageError("open " + options_.path, e);
  }
  return absl::OkStatus();
}

// The body directory, and removal of the files no row names: written by a commit that did not
// happen, or left by a crash between a committed delete and its unlink.
absl::Status SqliteQueueStore::OpenSpool() {
  absl::StatusOr<core::SpoolDir> spool = core::SpoolDir::Open(options_.path + "-bodies");
  if (!spool.ok()) return spool.status();
  spool_ = std::make_unique<core::SpoolDir>(*std::move(spool));
  std::unordered_set<std::string> named;
  SQLite::Statement spooled(*db_, "SELECT id FROM queue WHERE spooled_bytes > 0");
  while (spooled.executeStep()) {
    named.insert(SpoolName(static_cast<uint64_t>(spooled.getColumn(0).getInt64())));
  }
  NL_ASSIGN_OR_RETURN(size_t removed, spool_->RemoveAllBut(named));
  if (removed > 0) {
    spdlog::info(
        "hub queue: removed {} body files no queued envelope names (an interrupted commit or "
        "delete)",
        removed);
  }
  return absl::OkStatus();
}

bool SqliteQueueStore::Spools(size_t body_bytes) const {
  return options_.spool_min_bytes != 0 && body_bytes >= options_.spool_min_bytes;
}

// Ids come from last_id_, not from SQLite: an append's is known before its row is written, and
// one shown to the relay is never handed out again, even if its transaction rolls back (the
// AUTOINCREMENT counter would step back with it). The table keeps AUTOINCREMENT so that
// sqlite_sequence still records the largest id ever used across restarts.
void SqliteQueueStore::InsertRow(uint64_t id, QueuedKind kind, const AppendRequest& a,
                                 bool spooled) {
  // Bound without copying: the request outlives the statement's execution.
  SQLite::Statement& q = st_->insert;
  q.reset();
  q.bind(1, I64(id));
  q.bindNoCopy(2, a.recipient);
  q.bindNoCopy(3, a.sender);
  q.bindNoCopy(4, a.message_id.data(), static_cast<int>(a.message_id.size()));
  q.bind(5, static_cast<int>(kind));
  q.bind(6, I64(a.now_ms));
  q.bind(7, I64(a.expires_at_ms));
  static constexpr char kEmpty[1] = {0};
  if (spooled) {
    q.bindNoCopy(8, kEmpty, 0);  // an empty blob, not NULL
  } else {
    q.bindNoCopy(8, a.body.data(), static_cast<int>(a.body.size()));
  }
  q.bind(9, I64(spooled ? a.body.size() : 0));
  q.exec();
}

uint64_t SqliteQueueStore::AppendRoom() const {
  constexpr uint64_t kUnbounded = std::numeric_limits<uint64_t>::max();
  if (options_.min_free_bytes == 0) return kUnbounded;
  struct statvfs fs {};
  if (::statvfs(options_.path.c_str(), &fs) != 0) return kUnbounded;
  const uint64_t free = static_cast<uint64_t>(fs.f_bavail) * fs.f_frsize;
  const uint64_t keep = options_.min_free_bytes + FileSize(options_.path + "-wal");
  return free > keep ? free - keep : 0;
}

bool SqliteQueueStore::BoundsNeedDeletes(std::span<const AppendRequest> appends,
                                         const QueueBounds& bounds) const {
  // A safe "no": every recipient as if the whole batch were its own and nothing were deleted.
  uint64_t bytes = 0;
  for (const AppendRequest& a : appends) bytes += a.body.size();
  for (const AppendRequest& a : appends) {
    auto it = usage_.find(a.recipient);
    const Usage u = it == usage_.end() ? Usage{} : it->second;
    if (bounds.Exceeded(u.count + appends.size(), u.bytes + bytes)) return true;
  }
  return false;
}

absl::StatusOr<std::vector<AppendResult>> SqliteQueueStore::Commit(
    std::span<const AppendRequest> appends, std::span<const uint64_t> deletes,
    const QueueBounds& bounds, const BeforeCommit& before_commit) {
  std::vector<AppendResult> results;
  results.reserve(appends.size());
  // Usage changes are applied to the members only once the transaction committed.
  std::unordered_map<std::string, Usage> touched;
  QueueTotals totals = totals_;
  auto usage_of = [&](const std::string& r) -> Usage& {
    auto it = touched.find(r);
    if (it != touched.end()) return it->second;
    auto base = usage_.find(r);
    return touched.emplace(r, base == usage_.end() ? Usage{} : base->second).first->second;
  };
  uint64_t room = appends.empty() ? 0 : AppendRoom();
  core::SpoolBatch files(*spool_);  // core/spool_dir.h: written, then removed if it fails
  const bool sync = options_.synchronous == SqliteSynchronous::kFull;
  try {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    auto run_deletes = [&] {
      for (uint64_t id : deletes) {
        SQLite::Statement& del = st_->erase;
        del.reset();
        del.bind(1, I64(id));
        if (del.executeStep()) {
          const std::string recipient = del.getColumn(0).getString();
          const bool envelope =
              del.getColumn(1).getInt() == static_cast<int>(QueuedKind::kEnvelope);
          const uint64_t size = static_cast<uint64_t>(del.getColumn(2).getInt64());
          if (del.getColumn(3).getInt64() > 0) files.RemoveOnCommit(SpoolName(id));
          --totals.items;
          totals.bytes -= size;
          if (envelope) {
            Usage& u = usage_of(recipient);
            --u.count;
            u.bytes -= size;
          }
          while (del.executeStep()) {
          }
        }
        del.reset();
      }
    };
    // Everything before before_commit is on a round trip's path (the relay pushes from it), so
    // what does not decide an outcome waits until after it: the deletes, unless what they free is
    // needed for an append's bounds (the committer holds a delete alone for the next append), and
    // the dedup records, checked meanwhile against this batch's queued ids as well.
    const bool deletes_first = !deletes.empty() && BoundsNeedDeletes(appends, bounds);
    if (deletes_first) run_deletes();
    struct Queued {
      const AppendRequest* request;
      uint64_t id;
      bool spooled;
    };
    std::vector<Queued> queued;
    for (const AppendRequest& a : appends) {
      SQLite::Statement& find = st_->dedup_find;
      find.reset();
      find.bind(1, a.sender);
      find.bindNoCopy(2, a.message_id.data(), static_cast<int>(a.message_id.size()));
      const bool duplicate =
          find.executeStep() || std::any_of(queued.begin(), queued.end(), [&](const Queued& q) {
            return q.request->sender == a.sender && q.request->message_id == a.message_id;
          });
      find.reset();
      if (duplicate) {
        results.push_back({AppendOutcome::kDuplicate, 0});
        continue;
      }
      Usage& u = usage_of(a.recipient);
      if (bounds.Exceeded(u.count + 1, u.bytes + a.body.size())) {
        results.push_back({AppendOutcome::kQueueFull, 0});
        continue;
      }
      const bool spooled = Spools(a.body.size());
      // A body in the database is in the -wal file, then in the main file; a spooled one once.
      const uint64_t needs = spooled ? a.body.size() : 2 * a.body.size();
      if (needs > room) {
        results.push_back({AppendOutcome::kDiskFull, 0});
        continue;
      }
      room -= needs;
      const uint64_t id = ++last_id_;
      if (spooled) {
        // Before the push, which reads it. Cached: it is read again soon, and unlinked after
        // delivery.
        absl::Status w = files.Write(SpoolName(id), AsBytes(a.body),
                                     sync ? core::SpoolWrite::kSynced : core::SpoolWrite::kCached);
        if (!w.ok()) {
          // The transaction rolls back. A full disk fails the batch ResourceExhausted, which the
          // committer answers kDiskFull and retries its deletes alone, as for SQLITE_FULL.
          return absl::Status(
              absl::IsResourceExhausted(w) ? w.code() : absl::StatusCode::kUnavailable,
              "hub queue: " + std::string(w.message()));
        }
      }
      results.push_back({AppendOutcome::kQueued, id});
      queued.push_back({&a, id, spooled});
      ++u.count;
      u.bytes += a.body.size();
      ++totals.items;
      totals.bytes += a.body.size();
    }
    if (sync && files.wrote_any()) {
      if (absl::Status d = spool_->SyncDirectory(); !d.ok()) {
        return absl::UnavailableError("hub queue: " + std::string(d.message()));
      }
    }
    if (before_commit) before_commit(results);
    for (const Queued& q : queued) {
      InsertRow(q.id, QueuedKind::kEnvelope, *q.request, q.spooled);
      SQLite::Statement& ins = st_->dedup_insert;
      ins.reset();
      ins.bind(1, q.request->sender);
      ins.bindNoCopy(2, q.request->message_id.data(),
                     static_cast<int>(q.request->message_id.size()));
      ins.bind(3, I64(q.request->now_ms));
      ins.exec();
    }
    if (!deletes_first) run_deletes();
    tx.commit();
  } catch (const std::exception& e) {
    return StorageError("commit", e);
  }
  files.Committed();
  for (auto& [recipient, u] : touched) {
    if (u.count == 0) {
      usage_.erase(recipient);
    } else {
      usage_[recipient] = u;
    }
  }
  totals_ = totals;
  return results;
}

absl::StatusOr<std::vector<QueuedItem>> SqliteQueueStore::Fetch(std::string_view recipient,
                                                                uint64_t after_id, size_t max_items,
                                                                uint64_t max_bytes) {
  std::vector<QueuedItem> out;
  try {
    SQLite::Statement& q = st_->fetch;
    q.reset();
    q.bind(1, std::string(recipient));
    q.bind(2, I64(after_id));
    q.bind(3, static_cast<int64_t>(max_items));
    uint64_t bytes = 0;
    while (q.executeStep()) {
      const uint64_t spooled = SpooledBytes(q);
      const uint64_t size = static_cast<uint64_t>(q.getColumn(7).getBytes()) + spooled;
      if (!out.empty() && bytes + size > max_bytes) break;
      QueuedItem item = ReadRow(q);
      if (spooled > 0) {
        absl::StatusOr<std::string> body = spool_->Read(SpoolName(item.id), spooled);
        if (body.status().code() == absl::StatusCode::kNotFound ||
            body.status().code() == absl::StatusCode::kDataLoss) {
          // Lost with the machine (a power loss under synchronous=NORMAL) or removed by hand:
          // not pushable. Its row stays until it expires, and its sender then gets EXPIRED.
          if (lost_ids_.insert(item.id).second) {
            spdlog::error("hub queue: envelope {} for {} cannot be delivered: {}", item.id,
                          item.recipient, std::string(body.status().message()));
          }
          continue;
        }
        if (!body.ok()) {
          q.reset();
          return absl::UnavailableError("hub queue: " + std::string(body.status().message()));
        }
        item.body = *std::move(body);
      }
      bytes += size;
      out.push_back(std::move(item));
    }
    q.reset();
  } catch (const std::exception& e) {
    return StorageError("fetch", e);
  }
  return out;
}

absl::StatusOr<ExpireResult> SqliteQueueStore::Expire(uint64_t now_ms, uint64_t dedup_window_ms,
                                                      uint64_t notice_ttl_ms,
                                                      const NoticeBodyBuilder& notice_body) {
  ExpireResult result;
  std::unordered_map<std::string, Usage> touched;
  QueueTotals totals = totals_;
  core::SpoolBatch files(*spool_);
  try {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    struct Expired {
      QueuedItem item;  // a spooled body is not read: the notice needs only the header
      uint64_t bytes;
      bool spooled;
    };
    std::vector<Expired> expired;
    {
      SQLite::Statement& q = st_->expired;
      q.reset();
      q.bind(1, I64(now_ms));
      while (q.executeStep()) {
        const uint64_t spooled = SpooledBytes(q);
        QueuedItem item = ReadRow(q);
        const uint64_t bytes = item.body.size() + spooled;
        expired.push_back({std::move(item), bytes, spooled > 0});
      }
      q.reset();
    }
    for (const auto& [item, bytes, spooled] : expired) {
      SQLite::Statement& del = st_->erase;
      del.reset();
      del.bind(1, I64(item.id));
      while (del.executeStep()) {
      }
      del.reset();
      if (spooled) files.RemoveOnCommit(SpoolName(item.id));
      --totals.items;
      totals.bytes -= bytes;
      if (item.kind == QueuedKind::kExpiredNotice) {
        ++result.dropped_notices;
        continue;
      }
      ++result.expired_envelopes;
      auto base = usage_.find(item.recipient);
      Usage& u = touched.contains(item.recipient)
                     ? touched[item.recipient]
                     : (touched[item.recipient] = base == usage_.end() ? Usage{} : base->second);
      --u.count;
      u.bytes -= bytes;
      QueuedItem notice{
          0,      QueuedKind::kExpiredNotice, item.sender,      item.recipient, item.message_id,
          now_ms, now_ms + notice_ttl_ms,     notice_body(item)};
      notice.id = ++last_id_;
      InsertRow(notice.id, QueuedKind::kExpiredNotice,
                AppendRequest{notice.sender, notice.recipient, notice.message_id,
                              notice.enqueued_at_ms, notice.expires_at_ms, notice.body},
                false);
      ++totals.items;
      totals.bytes += notice.body.size();
      result.notices.push_back(std::move(notice));
    }
    {
      SQLite::Statement& f = st_->dedup_forget;
      f.reset();
      f.bind(1, I64(now_ms > dedup_window_ms ? now_ms - dedup_window_ms : 0));
      result.forgotten_dedup = static_cast<uint64_t>(f.exec());
    }
    tx.commit();
  } catch (const std::exception& e) {
    return StorageError("expire", e);
  }
  files.Committed();
  for (auto& [recipient, u] : touched) {
    if (u.count == 0) {
      usage_.erase(recipient);
    } else {
      usage_[recipient] = u;
    }
  }
  totals_ = totals;
  return result;
}

absl::StatusOr<bool> SqliteQueueStore::IsDuplicate(std::string_view sender,
                                                   std::string_view message_id) {
  try {
    SQLite::Statement& find = st_->dedup_find;
    find.reset();
    find.bind(1, std::string(sender));
    find.bind(2, message_id.data(), static_cast<int>(message_id.size()));
    const bool found = find.executeStep();
    find.reset();
    return found;
  } catch (const std::exception& e) {
    return StorageError("dedup lookup", e);
  }
}

void SqliteQueueStore::Maintain() {
  const uint64_t now = SteadyMs();
  if (now - last_checkpoint_ms_ < options_.checkpoint_interval_ms) return;
  last_checkpoint_ms_ = now;
  // TRUNCATE resets the -wal to zero bytes; journal_size_limit bounds it between checkpoints.
  // Without the busy timeout: TRUNCATE would wait up to 5 s on the queue thread for a reader in
  // another process (`sqlite3 queue.db` left open). BUSY then, or when the checkpointer's thread
  // is in a pass; a later interval truncates.
  sqlite3* db = db_->getHandle();
  sqlite3_busy_timeout(db, 0);
  const int rc =
      sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  sqlite3_busy_timeout(db, kBusyTimeoutMs);
  if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
    spdlog::warn("hub queue: WAL checkpoint failed: {}", sqlite3_errmsg(db));
  }
}

}  // namespace nodelink::transport

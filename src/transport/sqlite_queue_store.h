// The hub's durable queue: SQLite in WAL mode (IMPLEMENTATION-NOTES 6.3).
//
// Durability choice: `synchronous=NORMAL` by default. In WAL mode a committed transaction is in
// the -wal file before Commit() returns, so it survives a killed process (SIGKILL, crash), which
// is what `Accepted` promises (PROTOCOL 4: "survives a hub restart"); it may be lost on power
// loss or a kernel crash, because the WAL is fsynced only at checkpoints. `synchronous=FULL`
// fsyncs every commit and survives power loss too; group commit keeps its cost per batch, not per
// envelope. Operators choose with `--sqlite-synchronous`.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "core/file_lock.h"
#include "transport/queue_store.h"

namespace SQLite {
class Database;
}

namespace nodelink::core {
class SpoolDir;
class WalCheckpointer;
}  // namespace nodelink::core

namespace nodelink::transport {

enum class SqliteSynchronous { kNormal, kFull };

struct SqliteQueueOptions {
  std::string path;  // the database file; its directory must exist
  SqliteSynchronous synchronous = SqliteSynchronous::kNormal;
  // The -wal file is truncated to this size after checkpoints (PRAGMA journal_size_limit), so that
  // a burst of 1 MiB bodies does not leave a large file behind.
  int64_t journal_size_limit_bytes = 64 << 20;
  // Maintain() runs wal_checkpoint(TRUNCATE) at most this often.
  uint64_t checkpoint_interval_ms = 10'000;
  // Appends are refused (kDiskFull) when less than this would stay free on the filesystem, on
  // top of the -wal file's size: a full disk would otherwise stop the checkpoints and deletes
  // that free space, and the queue could never drain. 0 = no check.
  uint64_t min_free_bytes = 64 << 20;
  // Bodies of at least this many bytes are kept in files of the directory `path` + "-bodies"
  // (core/spool_dir.h), written once instead of through the -wal file and the checkpoint.
  // 0 = every body in the database.
  uint64_t spool_min_bytes = 64 << 10;
};

class SqliteQueueStore final : public QueueStore {
 public:
  // Opens or creates the store, switches to WAL and checks that it took, creates the schema and
  // loads the per-recipient usage. Errors: the file cannot be opened or is not a queue store.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<SqliteQueueStore>> Open(
      SqliteQueueOptions options);
  ~SqliteQueueStore() override;

  absl::StatusOr<std::vector<AppendResult>> Commit(std::span<const AppendRequest> appends,
                                                   std::span<const uint64_t> deletes,
                                                   const QueueBounds& bounds,
                                                   const BeforeCommit& before_commit = {}) override;
  absl::StatusOr<std::vector<QueuedItem>> Fetch(std::string_view recipient, uint64_t after_id,
                                                size_t max_items, uint64_t max_bytes) override;
  absl::StatusOr<ExpireResult> Expire(uint64_t now_ms, uint64_t dedup_window_ms,
                                      uint64_t notice_ttl_ms,
                                      const NoticeBodyBuilder& notice_body) override;
  absl::StatusOr<bool> IsDuplicate(std::string_view sender, std::string_view message_id) override;
  QueueTotals Totals() const override { return totals_; }
  // Envelopes whose body file was missing or cut short when fetched (see Fetch).
  uint64_t lost_bodies() const { return lost_ids_.size(); }
  // Its WAL checkpoints and restarts so far (core/wal_checkpointer.h).
  const core::WalCheckpointer& wal_checkpointer() const { return *checkpointer_; }
  void Maintain() override;

 private:
  struct Usage {
    uint64_t count = 0;
    uint64_t bytes = 0;
  };
  struct Statements;
  explicit SqliteQueueStore(SqliteQueueOptions options);
  absl::Status LockDataFile();
  absl::Status Init();
  absl::Status OpenSpool();
  bool Spools(size_t body_bytes) const;
  // A queue row under `id` (from last_id_); a spooled body is left out of it.
  void InsertRow(uint64_t id, QueuedKind kind, const AppendRequest& a, bool spooled);
  // Bytes that appends may still use before the disk headroom (min_free_bytes); unbounded when
  // the check is off or the filesystem cannot be asked.
  uint64_t AppendRoom() const;
  // Whether an append of `appends` might pass its recipient's bounds unless the commit's deletes
  // free room first (a safe "no"; "yes" only costs the old order, deletes first).
  bool BoundsNeedDeletes(std::span<const AppendRequest> appends, const QueueBounds& bounds) const;

  SqliteQueueOptions options_;
  std::optional<core::FileLock> lock_;    // LockDataFile's; declared first, released last
  std::unique_ptr<SQLite::Database> db_;  // declared before the statements that use it
  std::unique_ptr<Statements> st_;
  std::unique_ptr<core::WalCheckpointer> checkpointer_;
  std::unique_ptr<core::SpoolDir> spool_;
  std::unordered_set<uint64_t> lost_ids_;  // envelopes whose body file is lost, logged once each
  std::unordered_map<std::string, Usage> usage_;  // envelopes only, per recipient
  QueueTotals totals_;
  uint64_t last_checkpoint_ms_ = 0;
  // The largest id handed out, committed or not: ids shown to a before_commit whose transaction
  // rolled back are not handed out again (queue_store.h).
  uint64_t last_id_ = 0;
};

}  // namespace nodelink::transport

// The channel journal on the participant's key store: the tables channels, setup_log, inbox,
// sent and answered (schema in keys/store_schema.cc). Secrets, inbox and sent messages and stored
// replies are sealed with the store key, each bound to its row by a seal context
// (keys/seal_contexts.h).
#pragma once

#include <memory>
#include <string_view>
#include <unordered_map>

#include "absl/status/statusor.h"
#include "overlay/ports.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace nodelink::core {
class SpoolBatch;
}  // namespace nodelink::core

namespace nodelink::keys {
class KeyStore;
class StoreBodies;
}  // namespace nodelink::keys

namespace nodelink::overlay {

class StoreJournal final : public ChannelJournal {
 public:
  // `store` must outlive the journal. Thread-safe (the store serializes access).
  explicit StoreJournal(keys::KeyStore& store);
  ~StoreJournal() override;

  absl::StatusOr<JournalSnapshot> Load() override;
  absl::Status Commit(JournalBatch batch) override;
  absl::StatusOr<std::optional<SentRow>> FindSent(std::string_view recipient,
                                                  ByteView message_id) override;
  absl::StatusOr<std::vector<SentRow>> SentOnChannel(std::string_view recipient,
                                                     ByteView channel_id,
                                                     uint64_t min_seq) override;
  absl::StatusOr<std::optional<Bytes>> FindAnswered(std::string_view peer,
                                                    std::string_view request_id,
                                                    uint64_t now_ms) override;
  absl::Status ForEachAnswered(
      const std::function<void(std::string_view peer, std::string_view request_id,
                               uint64_t expires_ms)>& each) override;
  absl::StatusOr<std::vector<std::string>> TakeRenewRequests() override;

  // Each commit deletes at most this many expired rows per table (sent copies, answered replies,
  // setup-log entries). A node restarted after its rows expired, or one stopped for longer than
  // the queue TTL, finds them all expired at once: deleted in one statement (secure_delete
  // overwrites each), they held the first live reply's commit for as long as that takes
  // (bench/RESULTS.md, twentieth session). The rest goes with the commits that follow.
  static constexpr int kPruneRowsPerCommit = 256;
  // Whether expired rows are left for later commits to delete (benchmarks, tests).
  bool PrunePending();

 private:
  // An expiry cutoff (JournalBatch::prune_*_before_ms), kept until its rows are gone. Rows older
  // than it are treated as deleted meanwhile. Read and written under the store's lock.
  struct Prune {
    uint64_t before_ms = 0;
    bool backlog = false;  // the last pass deleted kPruneRowsPerCommit rows: there may be more
    // Takes a batch's cutoff; whether this commit should delete rows.
    bool Due(uint64_t batch_before_ms);
  };
  // Deletes a pass's share of expired rows; sent copies' body files go with the commit.
  void PruneExpired(SQLite::Database& db, const JournalBatch& batch, core::SpoolBatch& files);

  // Statements of Commit and FindAnswered, prepared once and reused (at light load each commit
  // would otherwise spend more time preparing them than running them). Used only inside the
  // store's WithTransaction or WithDatabase, whose connection lock serializes them.
  SQLite::Statement& Prepared(SQLite::Database& db, std::string_view sql);
  // A row's inner message from its columns inner, body_key, body_bytes (from `first`): in the
  // row, or in its body file when body_key is set.
  absl::StatusOr<Bytes> InnerOf(const SQLite::Statement& row, int first, std::string_view file,
                                std::string_view context) const;
  // Removes body files no row names (a commit that failed, a crash before an unlink).
  absl::Status RemoveUnnamedBodies(SQLite::Database& db) const;

  keys::KeyStore& store_;
  // The store's body files (keys/store_bodies.h); an error here is Load's.
  absl::StatusOr<std::unique_ptr<keys::StoreBodies>> bodies_;
  const SQLite::Database* statements_db_ = nullptr;
  std::unordered_map<std::string_view, std::unique_ptr<SQLite::Statement>> statements_;
  Prune setup_log_prune_, sent_prune_, answered_prune_;
};

}  // namespace nodelink::overlay

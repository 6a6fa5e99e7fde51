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
  absl::StatusOr<std::vector<std::string>> TakeRenewRequests() override;

 private:
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
};

}  // namespace nodelink::overlay

// The journal's expiry pass deletes a backlog of expired rows a bounded share per commit, and
// treats what it has not deleted yet as gone.
#include <SQLiteCpp/SQLiteCpp.h>
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "../keys/store_test_support.h"  // CreateStore
#include "core/clock.h"
#include "keys/key_store.h"
#include "overlay/store_journal.h"
#include "process/temp_dir.h"

namespace nodelink::overlay {
namespace {

constexpr int kChunk = StoreJournal::kPruneRowsPerCommit;
const Bytes kChannel(16, 0x11);

Bytes MessageId(int serial) {
  std::string id = "m" + std::to_string(serial);
  id.resize(16, '-');
  return Bytes(id.begin(), id.end());
}

// A sent copy and an answered reply per serial, sent (and expiring) at `ms`.
JournalBatch Rows(int first, int count, uint64_t ms) {
  JournalBatch batch;
  for (int i = first; i < first + count; ++i) {
    SentRow sent;
    sent.recipient = "node-b";
    sent.message_id = MessageId(i);
    sent.channel_id = kChannel;
    sent.seq = static_cast<uint64_t>(i);
    sent.sent_at_ms = ms;
    sent.inner = std::make_shared<const Bytes>(40, 0x5a);
    batch.put_sent.push_back(std::move(sent));
    batch.put_answered.push_back(AnsweredRow{"node-b", "r" + std::to_string(i), ms, Bytes(40, 1)});
  }
  return batch;
}

// A real key store and its journal, in a temporary directory.
struct Store {
  process::TempDir dir;
  core::ManualClock clock;
  std::unique_ptr<keys::KeyStore> store = keys::testing::CreateStore(dir.File("store.db"), clock);
  std::unique_ptr<StoreJournal> journal = std::make_unique<StoreJournal>(*store);
  Store() { REQUIRE(journal->Load().ok()); }
  int64_t Count(const std::string& table) {
    int64_t n = -1;
    REQUIRE(store
                ->WithDatabase([&](SQLite::Database& db) {
                  n = db.execAndGet("SELECT count(*) FROM " + table).getInt64();
                  return absl::OkStatus();
                })
                .ok());
    return n;
  }
};

TEST_CASE("expiry pass: a backlog goes a bounded share per commit, the rest is already invisible") {
  Store s;
  const int expired = 2 * kChunk + 10, kept = 5;
  REQUIRE(s.journal->Commit(Rows(0, expired, 1'000)).ok());
  REQUIRE(s.journal->Commit(Rows(expired, kept, 50'000)).ok());
  CHECK_FALSE(s.journal->PrunePending());

  JournalBatch pass;  // what ChannelManager::Maintain sends
  pass.prune_sent_before_ms = pass.prune_answered_before_ms = 10'000;
  REQUIRE(s.journal->Commit(std::move(pass)).ok());
  CHECK(s.journal->PrunePending());
  CHECK(s.Count("sent") == expired + kept - kChunk);
  CHECK(s.Count("answered") == expired + kept - kChunk);

  // Oldest first; a copy past the cutoff is no longer found, nor resent, though still stored.
  CHECK_FALSE(s.journal->FindSent("node-b", MessageId(expired - 1)).value().has_value());
  CHECK(s.journal->FindSent("node-b", MessageId(expired)).value().has_value());
  auto resendable = s.journal->SentOnChannel("node-b", kChannel, 0);
  REQUIRE(resendable.ok());
  CHECK(resendable->size() == static_cast<size_t>(kept));
  CHECK_FALSE(s.journal->FindAnswered("node-b", "r0", 10'000).value().has_value());

  // Commits that carry no cutoff (live traffic) go on with the backlog.
  REQUIRE(s.journal->Commit(Rows(expired + kept, 1, 50'000)).ok());
  CHECK(s.Count("sent") == expired + kept + 1 - 2 * kChunk);
  REQUIRE(s.journal->Commit(Rows(expired + kept + 1, 1, 50'000)).ok());
  CHECK_FALSE(s.journal->PrunePending());
  CHECK(s.Count("sent") == kept + 2);
  CHECK(s.Count("answered") == kept + 2);
  // Once caught up, a commit without a cutoff deletes nothing more: the kept rows stay.
  REQUIRE(s.journal->Commit(Rows(expired + kept + 2, 1, 50'000)).ok());
  CHECK(s.Count("sent") == kept + 3);
}

TEST_CASE("expiry pass: a new cutoff after a restart deletes again; the journal starts caught up") {
  Store s;
  REQUIRE(s.journal->Commit(Rows(0, kChunk + 1, 1'000)).ok());
  JournalBatch pass;
  pass.prune_answered_before_ms = 10'000;
  REQUIRE(s.journal->Commit(std::move(pass)).ok());
  CHECK(s.Count("answered") == 1);
  CHECK(s.Count("sent") == kChunk + 1);  // no sent cutoff given
  // A node restarted: a new journal knows of no cutoff until the first pass.
  s.journal = std::make_unique<StoreJournal>(*s.store);
  REQUIRE(s.journal->Load().ok());
  CHECK(s.journal->FindSent("node-b", MessageId(0)).value().has_value());
  CHECK_FALSE(s.journal->PrunePending());
  JournalBatch again;
  again.prune_answered_before_ms = again.prune_sent_before_ms = 10'000;
  REQUIRE(s.journal->Commit(std::move(again)).ok());
  CHECK(s.Count("answered") == 0);
  CHECK(s.Count("sent") == 1);
  CHECK(s.journal->PrunePending());
}

}  // namespace
}  // namespace nodelink::overlay

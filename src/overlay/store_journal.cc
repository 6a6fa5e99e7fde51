#include "overlay/store_journal.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <string>
#include <unordered_set>
#include <utility>

#include "core/encoding.h"
#include "core/status.h"
#include "keys/key_store.h"
#include "keys/seal_contexts.h"
#include "keys/store_bodies.h"
#include "keys/store_sql.h"
#include "spdlog/spdlog.h"

namespace nodelink::overlay {

namespace {

// The key store's SQL conveniences: this journal is the store's extension for channel state.
using keys::BindBlob;
using keys::BlobOf;

Bytes Unsealed(const core::SecretBytes& s) {
  return Bytes(s.ExposeSecret().begin(), s.ExposeSecret().end());
}

// Body file names (keys/store_bodies.h): inbox rows by id, sent rows by their (random, unique)
// message id.
std::string InboxFile(uint64_t id) { return "inbox-" + std::to_string(id); }
std::string SentFile(ByteView message_id) { return "sent-" + core::ToHex(message_id); }

bool FileLost(const absl::Status& s) {
  return s.code() == absl::StatusCode::kNotFound || s.code() == absl::StatusCode::kDataLoss;
}

}  // namespace

absl::StatusOr<Bytes> StoreJournal::InnerOf(const SQLite::Statement& row, int first,
                                            std::string_view file, std::string_view context) const {
  if (row.getColumn(first + 1).isNull()) {
    NL_ASSIGN_OR_RETURN(core::SecretBytes inner,
                        store_.Unseal(BlobOf(row.getColumn(first)), context));
    return Unsealed(inner);
  }
  NL_RETURN_IF_ERROR(bodies_.status());
  return (*bodies_)->Read(file, BlobOf(row.getColumn(first + 1)),
                          static_cast<uint64_t>(row.getColumn(first + 2).getInt64()), context);
}

absl::Status StoreJournal::RemoveUnnamedBodies(SQLite::Database& db) const {
  std::unordered_set<std::string> named;
  SQLite::Statement inbox(db, "SELECT id FROM inbox WHERE body_key IS NOT NULL");
  while (inbox.executeStep()) {
    named.insert(InboxFile(static_cast<uint64_t>(inbox.getColumn(0).getInt64())));
  }
  SQLite::Statement sent(db, "SELECT message_id FROM sent WHERE body_key IS NOT NULL");
  while (sent.executeStep()) named.insert(SentFile(BlobOf(sent.getColumn(0))));
  return (*bodies_)->dir().RemoveAllBut(named).status();
}

absl::StatusOr<JournalSnapshot> StoreJournal::Load() {
  // At start rather than at the first large message, whose commit failing would stop the node.
  NL_RETURN_IF_ERROR(bodies_.status());
  JournalSnapshot snapshot;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement channels(
        db,
        "SELECT peer, channel_id, secret, initiator, peer_key, created_ms, confirmed, "
        "superseded_ms, erase_at_ms, drop_at_ms, send_seq, recv_highest, recv_window, "
        "renew_requested, request_digest, reply_digest FROM channels");
    while (channels.executeStep()) {
      ChannelRow row;
      row.peer = channels.getColumn(0).getString();
      row.channel_id = BlobOf(channels.getColumn(1));
      if (!channels.getColumn(2).isNull()) {
        NL_ASSIGN_OR_RETURN(core::SecretBytes secret,
                            store_.Unseal(BlobOf(channels.getColumn(2)),
                                          keys::ChannelSecretContext(row.peer, row.channel_id)));
        row.secret = std::move(secret);
      }
      row.initiator = channels.getColumn(3).getInt() != 0;
      row.peer_key_spki = BlobOf(channels.getColumn(4));
      row.created_ms = static_cast<uint64_t>(channels.getColumn(5).getInt64());
      row.confirmed = channels.getColumn(6).getInt() != 0;
      row.superseded_ms = static_cast<uint64_t>(channels.getColumn(7).getInt64());
      row.erase_at_ms = static_cast<uint64_t>(channels.getColumn(8).getInt64());
      row.drop_at_ms = static_cast<uint64_t>(channels.getColumn(9).getInt64());
      row.send_seq_reserved = static_cast<uint64_t>(channels.getColumn(10).getInt64());
      row.recv_highest = static_cast<uint64_t>(channels.getColumn(11).getInt64());
      row.recv_window = BlobOf(channels.getColumn(12));
      row.renew_requested = channels.getColumn(13).getInt() != 0;
      row.request_tbs_hash = BlobOf(channels.getColumn(14));
      row.reply_tbs_hash = BlobOf(channels.getColumn(15));
      snapshot.channels.push_back(std::move(row));
    }
    SQLite::Statement log(db, "SELECT sender, message_id, seen_ms, reply FROM setup_log");
    while (log.executeStep()) {
      SetupLogRow row{log.getColumn(0).getString(),
                      BlobOf(log.getColumn(1)),
                      static_cast<uint64_t>(log.getColumn(2).getInt64()),
                      {}};
      if (!log.getColumn(3).isNull()) row.reply = BlobOf(log.getColumn(3));
      snapshot.setup_log.push_back(std::move(row));
    }
    SQLite::Statement inbox(db,
                            "SELECT id, sender, message_id, received_ms, inner, body_key, "
                            "body_bytes FROM inbox ORDER BY id");
    while (inbox.executeStep()) {
      InboxRow row;
      row.id = static_cast<uint64_t>(inbox.getColumn(0).getInt64());
      row.sender = inbox.getColumn(1).getString();
      row.message_id = BlobOf(inbox.getColumn(2));
      row.received_ms = static_cast<uint64_t>(inbox.getColumn(3).getInt64());
      absl::StatusOr<Bytes> inner =
          InnerOf(inbox, 4, InboxFile(row.id), keys::InboxContext(row.sender, row.message_id));
      if (FileLost(inner.status())) {
        // Only a machine crash or a hand can lose a body file (it is written before its row
        // commits); the other messages are still handed out.
        spdlog::error("key store: a message from {} waiting in the inbox is lost: {}", row.sender,
                      std::string(inner.status().message()));
        continue;
      }
      if (!inner.ok()) return inner.status();
      row.inner = *std::move(inner);
      snapshot.inbox.push_back(std::move(row));
    }
    return RemoveUnnamedBodies(db);
  }));
  return snapshot;
}

StoreJournal::StoreJournal(keys::KeyStore& store)
    : store_(store), bodies_(keys::StoreBodies::Open(store)) {}
StoreJournal::~StoreJournal() = default;

SQLite::Statement& StoreJournal::Prepared(SQLite::Database& db, std::string_view sql) {
  if (statements_db_ != &db) {
    statements_.clear();
    statements_db_ = &db;
  }
  std::unique_ptr<SQLite::Statement>& slot = statements_[sql];
  if (!slot) slot = std::make_unique<SQLite::Statement>(db, std::string(sql));
  slot->reset();  // every caller binds all its parameters
  return *slot;
}

absl::Status StoreJournal::Commit(JournalBatch batch) {
  NL_RETURN_IF_ERROR(bodies_.status());
  const keys::StoreBodies& bodies = **bodies_;
  core::SpoolBatch files(bodies.dir());  // core/spool_dir.h: written, then removed if it fails
  // Binds a row's inner, body_key and body_bytes parameters from `first`: the value sealed in
  // the row, or, when large, sealed into a body file written before the row commits.
  auto bind_inner = [&](SQLite::Statement& st, int first, const Bytes& inner, std::string file,
                        const std::string& context, core::SpoolWrite how) -> absl::Status {
    if (inner.size() < keys::kBodyFileMinBytes) {
      NL_ASSIGN_OR_RETURN(Bytes sealed, store_.Seal(inner, context));
      BindBlob(st, first, sealed);
      st.bind(first + 1);  // NULL body_key
      st.bind(first + 2, 0);
      return absl::OkStatus();
    }
    NL_ASSIGN_OR_RETURN(keys::StoreBodies::Stored stored,
                        bodies.Write(files, std::move(file), inner, context, how));
    BindBlob(st, first, {});
    BindBlob(st, first + 1, stored.key_sealed);
    st.bind(first + 2, static_cast<int64_t>(stored.file_bytes));
    return absl::OkStatus();
  };
  absl::Status committed = store_.WithTransaction([&](SQLite::Database& db) -> absl::Status {
    if (!batch.put_channels.empty()) {
      SQLite::Statement& put =
          Prepared(db,
                   "INSERT OR REPLACE INTO channels(peer, channel_id, secret, initiator, peer_key, "
                   "created_ms, confirmed, superseded_ms, erase_at_ms, drop_at_ms, send_seq, "
                   "recv_highest, recv_window, renew_requested, request_digest, reply_digest) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
      for (const ChannelRow& row : batch.put_channels) {
        put.reset();
        put.bind(1, row.peer);
        BindBlob(put, 2, row.channel_id);
        if (row.secret) {
          NL_ASSIGN_OR_RETURN(Bytes sealed,
                              store_.Seal(row.secret->ExposeSecret(),
                                          keys::ChannelSecretContext(row.peer, row.channel_id)));
          BindBlob(put, 3, sealed);
        } else {
          put.bind(3);  // NULL: a tombstone
        }
        put.bind(4, row.initiator ? 1 : 0);
        BindBlob(put, 5, row.peer_key_spki);
        put.bind(6, static_cast<int64_t>(row.created_ms));
        put.bind(7, row.confirmed ? 1 : 0);
        put.bind(8, static_cast<int64_t>(row.superseded_ms));
        put.bind(9, static_cast<int64_t>(row.erase_at_ms));
        put.bind(10, static_cast<int64_t>(row.drop_at_ms));
        put.bind(11, static_cast<int64_t>(row.send_seq_reserved));
        put.bind(12, static_cast<int64_t>(row.recv_highest));
        BindBlob(put, 13, row.recv_window);
        put.bind(14, row.renew_requested ? 1 : 0);
        for (const auto& [column, digest] :
             {std::pair{15, &row.request_tbs_hash}, std::pair{16, &row.reply_tbs_hash}}) {
          if (digest->empty()) {
            put.bind(column);  // NULL: not initiated here, or from before schema version 4
          } else {
            BindBlob(put, column, *digest);
          }
        }
        put.exec();
      }
    }
    if (!batch.windows.empty()) {
      SQLite::Statement& update = Prepared(db,
                                           "UPDATE channels SET recv_highest = ?, recv_window = ?, "
                                           "confirmed = ? WHERE peer = ? AND channel_id = ?");
      for (const auto& [key, window] : batch.windows) {
        update.reset();
        update.bind(1, static_cast<int64_t>(window.highest));
        BindBlob(update, 2, window.bitmap);
        update.bind(3, window.confirmed ? 1 : 0);
        update.bind(4, key.first);
        BindBlob(update, 5, key.second);
        update.exec();
      }
    }
    if (!batch.send_seqs.empty()) {
      SQLite::Statement& update =
          Prepared(db, "UPDATE channels SET send_seq = ? WHERE peer = ? AND channel_id = ?");
      for (const auto& [key, seq] : batch.send_seqs) {
        update.reset();
        update.bind(1, static_cast<int64_t>(seq));
        update.bind(2, key.first);
        BindBlob(update, 3, key.second);
        update.exec();
      }
    }
    if (!batch.delete_channels.empty()) {
      SQLite::Statement& del =
          Prepared(db, "DELETE FROM channels WHERE peer = ? AND channel_id = ?");
      for (const ChannelKey& key : batch.delete_channels) {
        del.reset();
        del.bind(1, key.first);
        BindBlob(del, 2, key.second);
        del.exec();
      }
    }
    if (!batch.put_setup_log.empty()) {
      SQLite::Statement& put =
          Prepared(db,
                   "INSERT OR REPLACE INTO setup_log(sender, message_id, seen_ms, reply) "
                   "VALUES(?, ?, ?, ?)");
      for (const SetupLogRow& row : batch.put_setup_log) {
        put.reset();
        put.bind(1, row.sender);
        BindBlob(put, 2, row.message_id);
        put.bind(3, static_cast<int64_t>(row.seen_ms));
        if (row.reply.empty()) {
          put.bind(4);
        } else {
          BindBlob(put, 4, row.reply);
        }
        put.exec();
      }
    }
    if (!batch.put_inbox.empty()) {
      SQLite::Statement& put =
          Prepared(db,
                   "INSERT INTO inbox(id, sender, message_id, received_ms, inner, body_key, "
                   "body_bytes) VALUES(?, ?, ?, ?, ?, ?, ?)");
      for (const InboxRow& row : batch.put_inbox) {
        put.reset();
        put.bind(1, static_cast<int64_t>(row.id));
        put.bind(2, row.sender);
        BindBlob(put, 3, row.message_id);
        put.bind(4, static_cast<int64_t>(row.received_ms));
        NL_RETURN_IF_ERROR(bind_inner(put, 5, row.inner, InboxFile(row.id),
                                      keys::InboxContext(row.sender, row.message_id),
                                      core::SpoolWrite::kCached));  // deleted once handled
        put.exec();
      }
    }
    if (!batch.delete_inbox.empty()) {
      SQLite::Statement& del =
          Prepared(db, "DELETE FROM inbox WHERE id = ? RETURNING body_key IS NOT NULL");
      for (uint64_t id : batch.delete_inbox) {
        del.reset();
        del.bind(1, static_cast<int64_t>(id));
        while (del.executeStep()) {
          if (del.getColumn(0).getInt() != 0) files.RemoveOnCommit(InboxFile(id));
        }
      }
    }
    if (!batch.put_sent.empty()) {
      SQLite::Statement& put =
          Prepared(db,
                   "INSERT OR REPLACE INTO sent(recipient, message_id, channel_id, seq, "
                   "sent_at_ms, resent, inner, body_key, body_bytes) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)");
      for (const SentRow& row : batch.put_sent) {
        put.reset();
        put.bind(1, row.recipient);
        BindBlob(put, 2, row.message_id);
        BindBlob(put, 3, row.channel_id);
        put.bind(4, static_cast<int64_t>(row.seq));
        put.bind(5, static_cast<int64_t>(row.sent_at_ms));
        put.bind(6, row.resent ? 1 : 0);
        NL_RETURN_IF_ERROR(bind_inner(put, 7, row.inner ? *row.inner : Bytes{},
                                      SentFile(row.message_id),
                                      keys::SentContext(row.recipient, row.message_id),
                                      core::SpoolWrite::kUncached));  // kept for the queue TTL
        put.exec();
      }
    }
    if (!batch.mark_resent.empty()) {
      SQLite::Statement& mark =
          Prepared(db, "UPDATE sent SET resent = 1 WHERE recipient = ? AND message_id = ?");
      for (const auto& [recipient, message_id] : batch.mark_resent) {
        mark.reset();
        mark.bind(1, recipient);
        BindBlob(mark, 2, message_id);
        mark.exec();
      }
    }
    if (!batch.put_answered.empty()) {
      SQLite::Statement& put =
          Prepared(db,
                   "INSERT OR REPLACE INTO answered(peer, request_id, expires_ms, reply) "
                   "VALUES(?, ?, ?, ?)");
      for (const AnsweredRow& row : batch.put_answered) {
        NL_ASSIGN_OR_RETURN(
            Bytes sealed, store_.Seal(row.reply, keys::AnsweredContext(row.peer, row.request_id)));
        put.reset();
        put.bind(1, row.peer);
        put.bind(2, row.request_id);
        put.bind(3, static_cast<int64_t>(row.expires_ms));
        BindBlob(put, 4, sealed);
        put.exec();
      }
    }
    PruneExpired(db, batch, files);
    return absl::OkStatus();
  });
  NL_RETURN_IF_ERROR(committed);
  files.Committed();
  if (batch.erased_secrets) {
    // PROTOCOL 5: erased secrets leave the WAL too. If another process holds a reader open the
    // checkpoint cannot finish now; the next erasure's checkpoint (or the next open) completes it.
    (void)store_.CheckpointErased();
  }
  return absl::OkStatus();
}

bool StoreJournal::Prune::Due(uint64_t batch_before_ms) {
  if (batch_before_ms <= before_ms) return backlog;
  before_ms = batch_before_ms;
  return true;
}

void StoreJournal::PruneExpired(SQLite::Database& db, const JournalBatch& batch,
                                core::SpoolBatch& files) {
  // Oldest first, by the tables' time indexes (schema version 3). Each statement returns a row
  // per deleted row; for sent copies, whether a body file goes with it.
  auto prune = [&](Prune& p, uint64_t batch_before_ms, const char* sql, bool body_files) {
    if (!p.Due(batch_before_ms)) return;
    SQLite::Statement& del = Prepared(db, sql);
    del.bind(1, static_cast<int64_t>(p.before_ms));
    del.bind(2, kPruneRowsPerCommit);
    int deleted = 0;
    while (del.executeStep()) {
      ++deleted;
      if (body_files && del.getColumn(1).getInt() != 0) {
        files.RemoveOnCommit(SentFile(BlobOf(del.getColumn(0))));
      }
    }
    p.backlog = deleted == kPruneRowsPerCommit;
  };
  prune(setup_log_prune_, batch.prune_setup_log_before_ms,
        "DELETE FROM setup_log WHERE rowid IN (SELECT rowid FROM setup_log WHERE seen_ms < ? "
        "ORDER BY seen_ms LIMIT ?) RETURNING 1",
        false);
  prune(answered_prune_, batch.prune_answered_before_ms,
        "DELETE FROM answered WHERE rowid IN (SELECT rowid FROM answered WHERE expires_ms < ? "
        "ORDER BY expires_ms LIMIT ?) RETURNING 1",
        false);
  prune(sent_prune_, batch.prune_sent_before_ms,
        "DELETE FROM sent WHERE rowid IN (SELECT rowid FROM sent WHERE sent_at_ms < ? "
        "ORDER BY sent_at_ms LIMIT ?) RETURNING message_id, body_key IS NOT NULL",
        true);
}

bool StoreJournal::PrunePending() {
  bool pending = false;
  (void)store_.WithDatabase([&](SQLite::Database&) {  // the lock the passes run under
    pending = setup_log_prune_.backlog || answered_prune_.backlog || sent_prune_.backlog;
    return absl::OkStatus();
  });
  return pending;
}

absl::StatusOr<std::optional<SentRow>> StoreJournal::FindSent(std::string_view recipient,
                                                              ByteView message_id) {
  std::optional<SentRow> found;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement q(db,
                        "SELECT channel_id, seq, sent_at_ms, resent, inner, body_key, body_bytes "
                        "FROM sent WHERE recipient = ? AND message_id = ? AND sent_at_ms >= ?");
    q.bind(1, std::string(recipient));
    BindBlob(q, 2, message_id);
    q.bind(3, static_cast<int64_t>(sent_prune_.before_ms));  // expired, if not yet deleted
    if (!q.executeStep()) return absl::OkStatus();
    SentRow row;
    row.recipient = std::string(recipient);
    row.message_id = Bytes(message_id.begin(), message_id.end());
    row.channel_id = BlobOf(q.getColumn(0));
    row.seq = static_cast<uint64_t>(q.getColumn(1).getInt64());
    row.sent_at_ms = static_cast<uint64_t>(q.getColumn(2).getInt64());
    row.resent = q.getColumn(3).getInt() != 0;
    NL_ASSIGN_OR_RETURN(
        Bytes inner, InnerOf(q, 4, SentFile(message_id), keys::SentContext(recipient, message_id)));
    row.inner = std::make_shared<const Bytes>(std::move(inner));
    found = std::move(row);
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<std::vector<SentRow>> StoreJournal::SentOnChannel(std::string_view recipient,
                                                                 ByteView channel_id,
                                                                 uint64_t min_seq) {
  std::vector<SentRow> rows;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement q(db,
                        "SELECT message_id, seq, sent_at_ms, inner, body_key, body_bytes FROM "
                        "sent WHERE recipient = ? AND channel_id = ? AND seq >= ? AND resent = 0 "
                        "AND sent_at_ms >= ? ORDER BY seq");
    q.bind(1, std::string(recipient));
    BindBlob(q, 2, channel_id);
    q.bind(3, static_cast<int64_t>(min_seq));
    q.bind(4, static_cast<int64_t>(sent_prune_.before_ms));  // expired, if not yet deleted
    while (q.executeStep()) {
      SentRow row;
      row.recipient = std::string(recipient);
      row.message_id = BlobOf(q.getColumn(0));
      row.channel_id = Bytes(channel_id.begin(), channel_id.end());
      row.seq = static_cast<uint64_t>(q.getColumn(1).getInt64());
      row.sent_at_ms = static_cast<uint64_t>(q.getColumn(2).getInt64());
      absl::StatusOr<Bytes> inner =
          InnerOf(q, 3, SentFile(row.message_id), keys::SentContext(recipient, row.message_id));
      if (FileLost(inner.status())) {  // not resendable; the others still are
        spdlog::error("key store: a message sent to {} cannot be resent: {}", recipient,
                      std::string(inner.status().message()));
        continue;
      }
      if (!inner.ok()) return inner.status();
      row.inner = std::make_shared<const Bytes>(*std::move(inner));
      rows.push_back(std::move(row));
    }
    return absl::OkStatus();
  }));
  return rows;
}

absl::StatusOr<std::optional<Bytes>> StoreJournal::FindAnswered(std::string_view peer,
                                                                std::string_view request_id,
                                                                uint64_t now_ms) {
  std::optional<Bytes> reply;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) -> absl::Status {
    // Once per request handled: prepared once (the connection lock guards the cache, as in
    // Commit), and reset before the lock goes so that no read stays open.
    SQLite::Statement& q = Prepared(db,
                                    "SELECT reply FROM answered WHERE peer = ? AND request_id = ? "
                                    "AND expires_ms >= ?");
    q.bind(1, std::string(peer));
    q.bind(2, std::string(request_id));
    q.bind(3, static_cast<int64_t>(now_ms));
    const bool found = q.executeStep();
    Bytes sealed = found ? BlobOf(q.getColumn(0)) : Bytes{};
    q.reset();
    if (!found) return absl::OkStatus();
    NL_ASSIGN_OR_RETURN(core::SecretBytes plain,
                        store_.Unseal(sealed, keys::AnsweredContext(peer, request_id)));
    reply = Unsealed(plain);
    return absl::OkStatus();
  }));
  return reply;
}

absl::Status StoreJournal::ForEachAnswered(
    const std::function<void(std::string_view peer, std::string_view request_id,
                             uint64_t expires_ms)>& each) {
  return store_.WithDatabase([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement q(db, "SELECT peer, request_id, expires_ms FROM answered");
    while (q.executeStep()) {
      each(q.getColumn(0).getString(), q.getColumn(1).getString(),  // all bytes, NULs too
           static_cast<uint64_t>(q.getColumn(2).getInt64()));
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<std::string>> StoreJournal::TakeRenewRequests() {
  std::vector<std::string> peers;
  // Read first without a write transaction: the common case has nothing to take.
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement q(db, "SELECT DISTINCT peer FROM channels WHERE renew_requested = 1");
    while (q.executeStep()) peers.push_back(q.getColumn(0).getString());
    return absl::OkStatus();
  }));
  if (peers.empty()) return peers;
  NL_RETURN_IF_ERROR(store_.WithTransaction([&](SQLite::Database& db) -> absl::Status {
    db.exec("UPDATE channels SET renew_requested = 0 WHERE renew_requested = 1");
    return absl::OkStatus();
  }));
  return peers;
}

}  // namespace nodelink::overlay

#include "overlay/store_journal.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include <utility>

#include "core/status.h"
#include "keys/key_store.h"
#include "keys/seal_contexts.h"
#include "keys/store_sql.h"

namespace nodelink::overlay {

namespace {

// The key store's SQL conveniences: this journal is the store's extension for channel state.
using keys::BindBlob;
using keys::BlobOf;

Bytes Unsealed(const core::SecretBytes& s) {
  return Bytes(s.ExposeSecret().begin(), s.ExposeSecret().end());
}

}  // namespace

absl::StatusOr<JournalSnapshot> StoreJournal::Load() {
  JournalSnapshot snapshot;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement channels(
        db,
        "SELECT peer, channel_id, secret, initiator, peer_key, created_ms, confirmed, "
        "superseded_ms, erase_at_ms, drop_at_ms, send_seq, recv_highest, recv_window, "
        "renew_requested FROM channels");
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
    SQLite::Statement inbox(
        db, "SELECT id, sender, message_id, received_ms, inner FROM inbox ORDER BY id");
    while (inbox.executeStep()) {
      InboxRow row;
      row.id = static_cast<uint64_t>(inbox.getColumn(0).getInt64());
      row.sender = inbox.getColumn(1).getString();
      row.message_id = BlobOf(inbox.getColumn(2));
      row.received_ms = static_cast<uint64_t>(inbox.getColumn(3).getInt64());
      NL_ASSIGN_OR_RETURN(core::SecretBytes inner,
                          store_.Unseal(BlobOf(inbox.getColumn(4)),
                                        keys::InboxContext(row.sender, row.message_id)));
      row.inner = Unsealed(inner);
      snapshot.inbox.push_back(std::move(row));
    }
    return absl::OkStatus();
  }));
  return snapshot;
}

StoreJournal::StoreJournal(keys::KeyStore& store) : store_(store) {}
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
  NL_RETURN_IF_ERROR(store_.WithTransaction([&](SQLite::Database& db) -> absl::Status {
    if (!batch.put_channels.empty()) {
      SQLite::Statement& put =
          Prepared(db,
                   "INSERT OR REPLACE INTO channels(peer, channel_id, secret, initiator, peer_key, "
                   "created_ms, confirmed, superseded_ms, erase_at_ms, drop_at_ms, send_seq, "
                   "recv_highest, recv_window, renew_requested) "
                   "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
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
      SQLite::Statement& put = Prepared(
          db,
          "INSERT INTO inbox(id, sender, message_id, received_ms, inner) VALUES(?, ?, ?, ?, ?)");
      for (const InboxRow& row : batch.put_inbox) {
        NL_ASSIGN_OR_RETURN(Bytes sealed,
                            store_.Seal(row.inner, keys::InboxContext(row.sender, row.message_id)));
        put.reset();
        put.bind(1, static_cast<int64_t>(row.id));
        put.bind(2, row.sender);
        BindBlob(put, 3, row.message_id);
        put.bind(4, static_cast<int64_t>(row.received_ms));
        BindBlob(put, 5, sealed);
        put.exec();
      }
    }
    if (!batch.delete_inbox.empty()) {
      SQLite::Statement& del = Prepared(db, "DELETE FROM inbox WHERE id = ?");
      for (uint64_t id : batch.delete_inbox) {
        del.reset();
        del.bind(1, static_cast<int64_t>(id));
        del.exec();
      }
    }
    if (!batch.put_sent.empty()) {
      SQLite::Statement& put =
          Prepared(db,
                   "INSERT OR REPLACE INTO sent(recipient, message_id, channel_id, seq, "
                   "sent_at_ms, inner, resent) VALUES(?, ?, ?, ?, ?, ?, ?)");
      for (const SentRow& row : batch.put_sent) {
        NL_ASSIGN_OR_RETURN(
            Bytes sealed, store_.Seal(row.inner, keys::SentContext(row.recipient, row.message_id)));
        put.reset();
        put.bind(1, row.recipient);
        BindBlob(put, 2, row.message_id);
        BindBlob(put, 3, row.channel_id);
        put.bind(4, static_cast<int64_t>(row.seq));
        put.bind(5, static_cast<int64_t>(row.sent_at_ms));
        BindBlob(put, 6, sealed);
        put.bind(7, row.resent ? 1 : 0);
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
    auto prune = [&](const char* sql, uint64_t before) {
      if (before == 0) return;
      SQLite::Statement& del = Prepared(db, sql);
      del.bind(1, static_cast<int64_t>(before));
      del.exec();
    };
    prune("DELETE FROM setup_log WHERE seen_ms < ?", batch.prune_setup_log_before_ms);
    prune("DELETE FROM sent WHERE sent_at_ms < ?", batch.prune_sent_before_ms);
    prune("DELETE FROM answered WHERE expires_ms < ?", batch.prune_answered_before_ms);
    return absl::OkStatus();
  }));
  if (batch.erased_secrets) {
    // PROTOCOL 5: erased secrets leave the WAL too. If another process holds a reader open the
    // checkpoint cannot finish now; the next erasure's checkpoint (or the next open) completes it.
    (void)store_.CheckpointErased();
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<SentRow>> StoreJournal::FindSent(std::string_view recipient,
                                                              ByteView message_id) {
  std::optional<SentRow> found;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement q(db,
                        "SELECT channel_id, seq, sent_at_ms, inner, resent FROM sent "
                        "WHERE recipient = ? AND message_id = ?");
    q.bind(1, std::string(recipient));
    BindBlob(q, 2, message_id);
    if (!q.executeStep()) return absl::OkStatus();
    SentRow row;
    row.recipient = std::string(recipient);
    row.message_id = Bytes(message_id.begin(), message_id.end());
    row.channel_id = BlobOf(q.getColumn(0));
    row.seq = static_cast<uint64_t>(q.getColumn(1).getInt64());
    row.sent_at_ms = static_cast<uint64_t>(q.getColumn(2).getInt64());
    NL_ASSIGN_OR_RETURN(
        core::SecretBytes inner,
        store_.Unseal(BlobOf(q.getColumn(3)), keys::SentContext(recipient, message_id)));
    row.inner = Unsealed(inner);
    row.resent = q.getColumn(4).getInt() != 0;
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
                        "SELECT message_id, seq, sent_at_ms, inner FROM sent WHERE recipient = ? "
                        "AND channel_id = ? AND seq >= ? AND resent = 0 ORDER BY seq");
    q.bind(1, std::string(recipient));
    BindBlob(q, 2, channel_id);
    q.bind(3, static_cast<int64_t>(min_seq));
    while (q.executeStep()) {
      SentRow row;
      row.recipient = std::string(recipient);
      row.message_id = BlobOf(q.getColumn(0));
      row.channel_id = Bytes(channel_id.begin(), channel_id.end());
      row.seq = static_cast<uint64_t>(q.getColumn(1).getInt64());
      row.sent_at_ms = static_cast<uint64_t>(q.getColumn(2).getInt64());
      NL_ASSIGN_OR_RETURN(
          core::SecretBytes inner,
          store_.Unseal(BlobOf(q.getColumn(3)), keys::SentContext(recipient, row.message_id)));
      row.inner = Unsealed(inner);
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
    SQLite::Statement q(db,
                        "SELECT reply FROM answered WHERE peer = ? AND request_id = ? "
                        "AND expires_ms >= ?");
    q.bind(1, std::string(peer));
    q.bind(2, std::string(request_id));
    q.bind(3, static_cast<int64_t>(now_ms));
    if (!q.executeStep()) return absl::OkStatus();
    NL_ASSIGN_OR_RETURN(
        core::SecretBytes plain,
        store_.Unseal(BlobOf(q.getColumn(0)), keys::AnsweredContext(peer, request_id)));
    reply = Unsealed(plain);
    return absl::OkStatus();
  }));
  return reply;
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

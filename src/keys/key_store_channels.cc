// KeyStore: the operator's view of channels (PROTOCOL.md section 5). The overlay's channel store
// writes them; these list, flag for renewal and drop.
#include "core/sha256.h"
#include "core/status.h"
#include "keys/key_store.h"
#include "keys/store_sql.h"

namespace nodelink::keys {

absl::StatusOr<std::vector<ChannelInfo>> KeyStore::ListChannels() const {
  std::vector<ChannelInfo> out;
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement query(
        db,
        "SELECT peer, channel_id, secret IS NOT NULL, initiator, peer_key, created_ms, confirmed, "
        "superseded_ms, erase_at_ms, drop_at_ms, send_seq, recv_highest, renew_requested "
        "FROM channels ORDER BY peer, created_ms DESC, channel_id");
    while (query.executeStep()) {
      ChannelInfo c;
      c.peer = query.getColumn(0).getString();
      c.channel_id = BlobOf(query.getColumn(1));
      bool live = query.getColumn(2).getInt() != 0;
      c.initiator = query.getColumn(3).getInt() != 0;
      c.peer_fingerprint = core::Sha256Bytes(BlobOf(query.getColumn(4)));
      c.created_ms = static_cast<uint64_t>(query.getColumn(5).getInt64());
      c.confirmed = query.getColumn(6).getInt() != 0;
      c.superseded_ms = static_cast<uint64_t>(query.getColumn(7).getInt64());
      c.erase_at_ms = static_cast<uint64_t>(query.getColumn(8).getInt64());
      c.drop_at_ms = static_cast<uint64_t>(query.getColumn(9).getInt64());
      c.send_seq = static_cast<uint64_t>(query.getColumn(10).getInt64());
      c.recv_highest = static_cast<uint64_t>(query.getColumn(11).getInt64());
      c.renew_requested = query.getColumn(12).getInt() != 0;
      c.state = !live                 ? ChannelState::kTombstone
                : c.superseded_ms > 0 ? ChannelState::kLiveGrace
                                      : ChannelState::kLiveCurrent;
      out.push_back(std::move(c));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::Status KeyStore::RequestRenewal(std::string_view peer) {
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement update(
        db,
        "UPDATE channels SET renew_requested = 1 WHERE rowid = (SELECT rowid FROM channels "
        "WHERE peer = ? AND secret IS NOT NULL ORDER BY created_ms DESC, rowid DESC LIMIT 1)");
    BindText(update, 1, peer);
    if (update.exec() == 0) {
      return absl::NotFoundError("no live channel with \"" + std::string(peer) +
                                 "\"; one is set up on the next message to it");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<int> KeyStore::DropChannels(std::string_view peer) {
  int removed = 0;
  NL_RETURN_IF_ERROR(WithTransaction([&](SQLite::Database& db) -> absl::Status {
    if (peer.empty()) {
      removed = db.exec("DELETE FROM channels");
    } else {
      SQLite::Statement del(db, "DELETE FROM channels WHERE peer = ?");
      BindText(del, 1, peer);
      removed = del.exec();
    }
    return absl::OkStatus();
  }));
  // secure_delete zeroed the rows in the new pages; the checkpoint moves those pages into the
  // file and empties the WAL, where the old ones still were (PROTOCOL.md section 5).
  NL_RETURN_IF_ERROR(CheckpointErased());
  return removed;
}

}  // namespace nodelink::keys

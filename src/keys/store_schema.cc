#include "keys/store_schema.h"

#include <SQLiteCpp/SQLiteCpp.h>

#include "core/status.h"

namespace nodelink::keys {

namespace {

// Version 1. The channel, setup-log, inbox, sent and answered tables are shared with the overlay
// (PROTOCOL.md sections 5-7); the contexts and pairwise_keys tables with secagg (section 8).
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE identity(
  id INTEGER PRIMARY KEY CHECK(id = 1),
  federation TEXT NOT NULL,
  node_id TEXT NOT NULL,
  public_key BLOB NOT NULL,              -- DER SPKI of the identity key
  key_sealed BLOB NOT NULL,              -- sealed private scalar (context "identity-key")
  created_ms INTEGER NOT NULL);
CREATE TABLE identity_chain(
  position INTEGER PRIMARY KEY,          -- 0 = leaf
  der BLOB NOT NULL,
  imported_ms INTEGER NOT NULL);
CREATE TABLE anchors(
  role TEXT NOT NULL CHECK(role IN ('federation', 'hub')),
  fingerprint BLOB NOT NULL,             -- SHA-256 of the certificate DER
  der BLOB NOT NULL,
  added_ms INTEGER NOT NULL,
  PRIMARY KEY(role, fingerprint));
CREATE TABLE crls(
  issuer BLOB PRIMARY KEY,               -- DER of the issuer name
  der BLOB NOT NULL,
  this_update_ms INTEGER NOT NULL,
  imported_ms INTEGER NOT NULL);
CREATE TABLE settings(key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE tofu(
  node_id TEXT PRIMARY KEY,
  public_key BLOB NOT NULL,              -- DER SPKI recorded on first use
  fingerprint BLOB NOT NULL,
  first_seen_ms INTEGER NOT NULL);
CREATE TABLE pins(
  node_id TEXT NOT NULL,
  fingerprint BLOB NOT NULL,             -- SHA-256 of the DER SPKI
  added_ms INTEGER NOT NULL,
  PRIMARY KEY(node_id, fingerprint));
CREATE TABLE approvals(
  node_id TEXT NOT NULL,                 -- a node id, or '*' (any member) for co-party
  role TEXT NOT NULL CHECK(role IN ('co-party', 'researcher')),
  added_ms INTEGER NOT NULL,
  PRIMARY KEY(node_id, role));

CREATE TABLE channels(
  peer TEXT NOT NULL, channel_id BLOB NOT NULL,
  secret BLOB,                           -- sealed ("channel:" || peer || ":" || hex(channel_id)); NULL = tombstone
  initiator INTEGER NOT NULL,            -- 1 if this participant sent the SetupRequest
  peer_key BLOB NOT NULL,                -- DER SPKI of the peer identity key that authenticated the setup
  created_ms INTEGER NOT NULL,
  confirmed INTEGER NOT NULL DEFAULT 0,  -- 1 once the peer is known to hold it
  superseded_ms INTEGER NOT NULL DEFAULT 0,
  erase_at_ms INTEGER NOT NULL DEFAULT 0,
  drop_at_ms INTEGER NOT NULL DEFAULT 0,
  send_seq INTEGER NOT NULL DEFAULT 0,
  recv_highest INTEGER NOT NULL DEFAULT 0,
  recv_window BLOB NOT NULL DEFAULT x'',
  renew_requested INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY(peer, channel_id));
CREATE TABLE setup_log(sender TEXT NOT NULL, message_id BLOB NOT NULL, seen_ms INTEGER NOT NULL,
  reply BLOB, PRIMARY KEY(sender, message_id));
CREATE TABLE inbox(id INTEGER PRIMARY KEY AUTOINCREMENT, sender TEXT NOT NULL,
  message_id BLOB NOT NULL, received_ms INTEGER NOT NULL,
  inner BLOB NOT NULL);                  -- sealed ("inbox:" || sender || ":" || hex(message_id))
CREATE TABLE sent(recipient TEXT NOT NULL, message_id BLOB NOT NULL, channel_id BLOB NOT NULL,
  seq INTEGER NOT NULL, sent_at_ms INTEGER NOT NULL,
  inner BLOB NOT NULL,                   -- sealed ("sent:" || recipient || ":" || hex(message_id))
  resent INTEGER NOT NULL DEFAULT 0, PRIMARY KEY(recipient, message_id));
CREATE TABLE answered(peer TEXT NOT NULL, request_id TEXT NOT NULL, expires_ms INTEGER NOT NULL,
  reply BLOB NOT NULL,                   -- sealed ("answered:" || peer || ":" || request_id)
  PRIMARY KEY(peer, request_id));

CREATE TABLE contexts(
  researcher TEXT NOT NULL,
  context_id TEXT NOT NULL,
  scheme INTEGER NOT NULL,               -- nodelink.v1.Scheme
  state TEXT NOT NULL CHECK(state IN ('started', 'finished', 'refused')),
  created_ms INTEGER NOT NULL,
  updated_ms INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL DEFAULT 0, -- 0 = no expiry
  params_digest BLOB NOT NULL,           -- PROTOCOL.md section 8
  parties TEXT NOT NULL DEFAULT '',      -- ascending node ids, comma-separated
  input_digest BLOB,                     -- the input this context consumed (one input per context)
  state_sealed BLOB,                     -- sealed ("context:" || researcher || ":" || context_id)
  PRIMARY KEY(researcher, context_id));
-- A party contributes a given input to at most one context (PROTOCOL.md section 8).
CREATE UNIQUE INDEX contexts_by_input ON contexts(input_digest) WHERE input_digest IS NOT NULL;
CREATE TABLE pairwise_keys(
  researcher TEXT NOT NULL,
  context_id TEXT NOT NULL,
  peer TEXT NOT NULL,
  key_sealed BLOB NOT NULL,              -- sealed ("pairwise:" || researcher || ":" || context_id || ":" || peer)
  created_ms INTEGER NOT NULL,
  PRIMARY KEY(researcher, context_id, peer),
  FOREIGN KEY(researcher, context_id) REFERENCES contexts(researcher, context_id) ON DELETE CASCADE);
)sql";

// Version 2: inbox and sent messages of at least kBodyFileMinBytes live in body files
// (keys/store_bodies.h). Then `inner` is empty, body_key holds the file's key sealed under the
// row's context and body_bytes the file's size.
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE inbox ADD COLUMN body_key BLOB;
ALTER TABLE inbox ADD COLUMN body_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sent ADD COLUMN body_key BLOB;
ALTER TABLE sent ADD COLUMN body_bytes INTEGER NOT NULL DEFAULT 0;
)sql";

// Version 3: the expiry pass (ChannelManager::Maintain, every second) deletes sent copies, answered
// replies and setup-log entries by time. Without these indexes each pass scanned whole tables
// that hold an hour of traffic, inside a commit (measured: ~100 ms stalls of the receive path
// with 400,000 sent rows, bench/RESULTS.md).
constexpr const char* kSchemaV3 = R"sql(
CREATE INDEX sent_by_time ON sent(sent_at_ms);
CREATE INDEX answered_by_expiry ON answered(expires_ms);
CREATE INDEX setup_log_by_time ON setup_log(seen_ms);
)sql";

// Version 4: for a channel this participant initiated, SHA-256 of the req_tbs of its SetupRequest
// and of the rep_tbs of the reply that completed it. A peer restored from a backup may be handed
// that request again by the hub and answer it a second time (same channel id, another secret):
// the first digest lets the initiator verify that second reply, the second tells it from the
// first reply replayed, and it sets up anew (PROTOCOL.md section 5;
// ChannelManager::OpenReplyAnsweredAgain). Not secret.
constexpr const char* kSchemaV4 = R"sql(
ALTER TABLE channels ADD COLUMN request_digest BLOB;
ALTER TABLE channels ADD COLUMN reply_digest BLOB;
)sql";

// A step that only runs SQL.
Migration SqlStep(int from, std::string description, const char* sql) {
  return {from, from + 1, std::move(description), [sql](SQLite::Database& db, const StoreSealer&) {
            db.exec(sql);
            return absl::OkStatus();
          }};
}

}  // namespace

const std::vector<Migration>& DefaultMigrations() {
  static const std::vector<Migration> migrations = {
      SqlStep(0, "identity, trust, channels, replay logs, secagg contexts", kSchemaV1),
      SqlStep(1, "large inbox and sent messages in body files", kSchemaV2),
      SqlStep(2, "indexes for the expiry of sent copies, answered replies and the setup log",
              kSchemaV3),
      SqlStep(3, "the request and reply digests of initiated channels", kSchemaV4),
  };
  return migrations;
}

int TargetSchemaVersion(const std::vector<Migration>& migrations) {
  int version = 0;
  for (const Migration& m : migrations) {
    if (m.from != version || m.to != version + 1 || !m.apply) {
      core::Die("store migrations must form a chain 0 -> 1 -> ... -> n");
    }
    version = m.to;
  }
  return version;
}

absl::Status RunMigrations(SQLite::Database& db, const StoreSealer& sealer, int from,
                           const std::vector<Migration>& migrations) {
  int target = TargetSchemaVersion(migrations);
  for (int version = from; version < target; ++version) {
    const Migration& step = migrations[static_cast<size_t>(version)];
    absl::Status status = step.apply(db, sealer);
    if (!status.ok()) {
      return absl::Status(status.code(), "migrating the key store from schema version " +
                                             std::to_string(step.from) + " to " +
                                             std::to_string(step.to) + " (" + step.description +
                                             ") failed: " + std::string(status.message()));
    }
  }
  SQLite::Statement update(db, "UPDATE meta SET value = ? WHERE key = 'schema_version'");
  update.bind(1, target);
  update.exec();
  return absl::OkStatus();
}

const std::vector<SealedColumn>& SealedColumns() {
  static const std::vector<SealedColumn> columns = {
      {"identity", "key_sealed", "'identity-key'"},
      {"channels", "secret", "'channel:' || peer || ':' || lower(hex(channel_id))"},
      {"inbox", "inner", "'inbox:' || sender || ':' || lower(hex(message_id))"},
      {"inbox", "body_key", "'inbox:' || sender || ':' || lower(hex(message_id))"},
      {"sent", "inner", "'sent:' || recipient || ':' || lower(hex(message_id))"},
      {"sent", "body_key", "'sent:' || recipient || ':' || lower(hex(message_id))"},
      {"answered", "reply", "'answered:' || peer || ':' || request_id"},
      {"contexts", "state_sealed", "'context:' || researcher || ':' || context_id"},
      {"pairwise_keys", "key_sealed",
       "'pairwise:' || researcher || ':' || context_id || ':' || peer"},
  };
  return columns;
}

}  // namespace nodelink::keys

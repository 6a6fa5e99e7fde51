// The participant's key store: one SQLite file (WAL, secure_delete always on) holding the identity
// key and certificate chain, trust anchors and CRLs, trust records (PROTOCOL.md section 3),
// channels with their counters and anti-replay windows (sections 5-7), the setup replay log, and
// secure-aggregation contexts (section 8). Every secret in it is sealed with the store key
// (keys/store_key.h); nothing secret is ever written in clear.
//
// Opening checks, in this order and before writing anything: the file exists and is an SQLite
// database with nodelink's application id and header, its schema version is not newer than this
// build, the store key opens the sealed check value, and `PRAGMA quick_check` passes. Only then
// does it switch to WAL (a header write), take the write lock and run migrations. So a wrong
// passphrase, a garbage or truncated file, a newer schema or a locked database each give a clear
// error and leave the file as it was (a WAL left by a crashed process is not applied either
// until the key is verified).
//
// Inbox and sent messages of 64 KiB and more are files in `<path>-bodies/`, each sealed under a
// key kept (sealed) in its row (keys/store_bodies.h); a copy or backup of a store takes that
// directory with it.
//
// Durability: synchronous=NORMAL in WAL mode. A commit survives the process being killed
// (SIGKILL), not a power loss in the following moments; the store's writes are small and
// frequent (anti-replay windows), and FULL costs ~4x per commit (IMPLEMENTATION-NOTES 6.3).
// WAL checkpoints run on a thread and connection of their own (core/wal_checkpointer.h).
//
// Thread safety: every method is thread-safe. One SQLite connection, guarded by a mutex; the
// store key by a reader/writer lock. Several processes may use one store (a daemon and the
// nodelink-keys CLI): SQLite's locks serialize their writes, and a busy timeout absorbs short
// waits.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "core/ec.h"
#include "core/secret_bytes.h"
#include "keys/participant_verifier.h"
#include "keys/pin_policy.h"
#include "keys/store_key.h"
#include "keys/store_schema.h"

namespace SQLite {
class Database;
class Statement;
}  // namespace SQLite

namespace nodelink::core {
class WalCheckpointer;
}

namespace nodelink::keys {

struct StoreOptions {
  // How long an operation waits for another process's write lock before failing with
  // Unavailable ("locked").
  int busy_timeout_ms = 5000;
  // Time source for created/first-seen stamps. Not owned; must outlive the store.
  const core::Clock* clock = nullptr;  // null: the system clock
  // The schema migrations; null: DefaultMigrations(). Tests pass their own to exercise the path.
  const std::vector<Migration>* migrations = nullptr;
  // SQLite synchronous=FULL: every commit is fsynced, so it survives power loss and kernel
  // crashes too. Off (NORMAL, in WAL mode), a commit survives a killed or crashed process, which
  // is what the reliability tests check, and the last ones can be lost on power loss: a message
  // the hub then deleted on this node's receipt with them.
  bool sync_every_commit = false;
};

// The participant's own identity.
struct Identity {
  std::string federation;
  std::string node_id;
  core::EcPrivateKey key;
  std::vector<Bytes> cert_chain_der;  // leaf first; empty until a certificate is imported
};

// What the gRPC client needs for mutual TLS with the hub.
struct TlsMaterial {
  std::string ca_pem;          // roots for the hub's certificate (hub anchors, else federation)
  std::string cert_chain_pem;  // our certificate chain, leaf first
  core::SecretBytes key_pem;   // our identity key, PKCS#8 PEM
  std::string crl_pem;         // loaded CRLs (may be empty)
};

enum class AnchorRole {
  kFederation,  // the federation CA: anchors for participant certificates (and the hub's, when
                // no hub anchor is set)
  kHub,         // a separate CA that issued the hub's TLS certificate; never trusted for peers
};

// The outcome of a pin check (PROTOCOL.md section 3). kKeyChanged and kNotPinned are both
// refused with KEY_CHANGED on the wire.
struct PinVerdict {
  enum class Kind {
    kAccepted,    // known key, pinned key, or policy `ca`
    kFirstUse,    // `tofu` and no record yet: accept, then RecordFirstUse once the setup verified
    kKeyChanged,  // `tofu` record holds another key
    kNotPinned,   // listed pins do not include this key, or `pinned` and none listed
  };
  Kind kind = Kind::kAccepted;
  std::string message;  // for logs and operators; empty when accepted
  bool accepted() const { return kind == Kind::kAccepted || kind == Kind::kFirstUse; }
};

// One node's trust state, for `trust list`.
struct TrustEntry {
  std::string node_id;  // or "*" (approvals only)
  std::optional<Bytes> tofu_fingerprint;
  uint64_t first_seen_ms = 0;
  std::vector<Bytes> pins;
  bool approved_co_party = false;  // explicitly approved (pins also approve, see IsApprovedCoParty)
  bool researcher = false;
};

enum class ApprovalRole { kCoParty, kResearcher };

// A channel row, for `channels list` (PROTOCOL.md section 5).
enum class ChannelState {
  kLiveCurrent,  // secret held, not superseded
  kLiveGrace,    // secret held, superseded by a newer channel
  kTombstone,    // secret erased; anti-replay window kept
};
std::string_view ChannelStateName(ChannelState state);  // "live-current", "live-grace", "tombstone"

struct ChannelInfo {
  std::string peer;
  Bytes channel_id;
  ChannelState state = ChannelState::kLiveCurrent;
  bool initiator = false;
  Bytes peer_fingerprint;  // SHA-256 of peer_key
  uint64_t created_ms = 0;
  bool confirmed = false;
  uint64_t superseded_ms = 0;
  uint64_t erase_at_ms = 0;
  uint64_t drop_at_ms = 0;
  uint64_t send_seq = 0;
  uint64_t recv_highest = 0;
  bool renew_requested = false;
};

class KeyStore {
 public:
  // Creates a new store at `path` (AlreadyExists if anything is there), mode 0600, sealed with a
  // key from `source` (Argon2id with `profile` for a passphrase). The store has no identity yet.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KeyStore>> Create(
      const std::string& path, const StoreKeySource& source, KdfProfile profile,
      const StoreOptions& options = {});
  // Opens an existing store (see the file comment for the checks). Errors, none of which change
  // the file: NotFound (no file), InvalidArgument (not a nodelink store, or the wrong kind of key
  // source), DataLoss (corrupt or truncated), FailedPrecondition (newer schema), PermissionDenied
  // (wrong passphrase or key file), Unavailable (locked by another process).
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<KeyStore>> Open(
      const std::string& path, const StoreKeySource& source, const StoreOptions& options = {});

  ~KeyStore();
  KeyStore(const KeyStore&) = delete;
  KeyStore& operator=(const KeyStore&) = delete;

  const std::string& path() const { return path_; }
  int schema_version() const { return schema_version_; }
  KdfParams kdf_params() const;
  std::string_view key_source_kind() const;  // "passphrase" or "key-file"

  // ---- Low-level access (the overlay's channel store and secagg build on these) ----

  // Seals with the store key (libsodium crypto_aead_xchacha20poly1305_ietf, random nonce);
  // `context` is bound as AD so a sealed value cannot be moved to another row/column. Use the
  // contexts of keys/seal_contexts.h. May be called inside WithTransaction.
  [[nodiscard]] absl::StatusOr<Bytes> Seal(ByteView plain, std::string_view context) const;
  [[nodiscard]] absl::StatusOr<core::SecretBytes> Unseal(ByteView sealed,
                                                         std::string_view context) const;
  // Runs fn inside one BEGIN IMMEDIATE transaction on the store's connection, under the store's
  // mutex; commits if fn returns OK, rolls back otherwise; SQLite exceptions become statuses
  // (Unavailable when locked by another process). fn must not call KeyStore methods other than
  // Seal/Unseal (re-entry aborts). Fails with FailedPrecondition, before fn runs, if another
  // process changed the store key since this one opened it (restart to pick up the new key).
  [[nodiscard]] absl::Status WithTransaction(
      const std::function<absl::Status(SQLite::Database&)>& fn);
  // Read-only access under the mutex (no transaction is opened; fn may open a read one).
  [[nodiscard]] absl::Status WithDatabase(
      const std::function<absl::Status(SQLite::Database&)>& fn) const;
  // After erasing secrets: wal_checkpoint(TRUNCATE), so deleted bytes leave the WAL as well
  // (secure_delete is always on, so the main file holds zeros where they were). Unavailable if a
  // reader in another process kept the WAL from being reset; erased bytes then stay in the WAL
  // until the next successful checkpoint.
  [[nodiscard]] absl::Status CheckpointErased();
  // Its WAL checkpoints and restarts so far (core/wal_checkpointer.h).
  const core::WalCheckpointer& wal_checkpointer() const { return *checkpointer_; }

  // ---- Identity ----

  // Stores the identity (once; AlreadyExists after). The scalar is sealed.
  [[nodiscard]] absl::Status SetIdentity(std::string_view federation, std::string_view node_id,
                                         const core::EcPrivateKey& key);
  [[nodiscard]] bool HasIdentity() const;
  // NotFound before SetIdentity.
  [[nodiscard]] absl::StatusOr<Identity> LoadIdentity() const;
  // A fresh CSR for the stored identity key (the key never leaves the store).
  [[nodiscard]] absl::StatusOr<Bytes> CreateIdentityCsr() const;
  // Verifies `chain_der` (leaf first) against the federation anchors and CRLs at `now_ms`, for
  // this identity's federation, node id and key, then replaces the stored chain.
  [[nodiscard]] absl::Status ImportCertificateChain(const std::vector<Bytes>& chain_der,
                                                    uint64_t now_ms);

  // ---- Anchors, CRLs, hub certificate ----

  // Adds a self-signed CA certificate as an anchor (idempotent).
  [[nodiscard]] absl::Status AddAnchor(AnchorRole role, ByteView cert_der);
  [[nodiscard]] absl::StatusOr<std::vector<Bytes>> Anchors(AnchorRole role) const;
  // Stores a CRL signed by a federation anchor, replacing that issuer's previous CRL; refuses one
  // older than the loaded one (FailedPrecondition), so a revocation cannot be rolled back.
  [[nodiscard]] absl::Status ImportCrl(ByteView crl_der);
  [[nodiscard]] absl::StatusOr<std::vector<Bytes>> Crls() const;
  // The hub's certificate, as the operator gave it, for the same-issuer warning.
  [[nodiscard]] absl::Status SetHubCertificate(ByteView cert_der);
  [[nodiscard]] absl::StatusOr<std::optional<Bytes>> HubCertificate() const;
  // A verifier from the federation anchors and CRLs (FailedPrecondition without anchors).
  [[nodiscard]] absl::StatusOr<ParticipantVerifier> MakeParticipantVerifier() const;
  // FailedPrecondition without identity, certificate or anchors.
  [[nodiscard]] absl::StatusOr<TlsMaterial> ExportTlsMaterial() const;
  // PROTOCOL.md section 3: the warning for `hub_cert_der` (or the stored hub certificate when
  // null), this participant's chain and the current policy; nullopt when there is nothing to say
  // or not enough to tell.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> SameIssuerWarningFor(
      const Bytes* hub_cert_der = nullptr) const;

  // ---- Trust (PROTOCOL.md sections 3 and 8) ----

  [[nodiscard]] absl::StatusOr<PinPolicy> GetPinPolicy() const;
  [[nodiscard]] absl::Status SetPinPolicy(PinPolicy policy);
  // Read-only: whether `key` is acceptable for `node_id` under the policy. Pins listed for a node
  // apply under every policy. Changes nothing, so a forged setup cannot alter trust state
  // (PROTOCOL.md section 7, check 5).
  [[nodiscard]] absl::StatusOr<PinVerdict> CheckPin(std::string_view node_id,
                                                    const core::EcPublicKey& key) const;
  // Under `tofu`, records `key` for `node_id` if no record exists (call only after the setup's
  // signature verified). No-op under `ca` and `pinned`.
  [[nodiscard]] absl::Status RecordFirstUse(std::string_view node_id, const core::EcPublicKey& key);
  // The same three inside a caller's WithTransaction/WithDatabase, so the overlay can check the
  // pin again and record first use in the transaction that stores the new channel. They only use
  // `db` (no lock); SQLite exceptions propagate to the enclosing WithTransaction.
  [[nodiscard]] static absl::StatusOr<PinPolicy> GetPinPolicyIn(SQLite::Database& db);
  [[nodiscard]] static absl::StatusOr<PinVerdict> CheckPinIn(SQLite::Database& db,
                                                             std::string_view node_id,
                                                             const core::EcPublicKey& key);
  [[nodiscard]] static absl::Status RecordFirstUseIn(SQLite::Database& db, std::string_view node_id,
                                                     const core::EcPublicKey& key, uint64_t now_ms);
  // Forgets the TOFU record of `node_id`; false if there was none.
  [[nodiscard]] absl::StatusOr<bool> ResetTrust(std::string_view node_id);
  // Lists a SHA-256 SPKI fingerprint for `node_id` (several may be listed, for key rollover).
  [[nodiscard]] absl::Status AddPin(std::string_view node_id, ByteView fingerprint);
  // Removes one pin, or all pins of the node when `fingerprint` is empty; the number removed.
  [[nodiscard]] absl::StatusOr<int> RemovePins(std::string_view node_id, ByteView fingerprint);
  // Approves (or withdraws) `node_id` as a co-party or researcher. "*" is accepted for co-party
  // only (any member; a deliberate risk, PROTOCOL.md section 8).
  [[nodiscard]] absl::Status SetApproval(std::string_view node_id, ApprovalRole role,
                                         bool approved);
  [[nodiscard]] absl::StatusOr<std::vector<TrustEntry>> ListTrust() const;
  // PROTOCOL.md section 8. Fail closed: false on a store error.
  bool IsResearcher(std::string_view node_id) const;
  // Approved explicitly, or by "*", or has a pinned key.
  bool IsApprovedCoParty(std::string_view node_id) const;

  // ---- Channels (PROTOCOL.md section 5; the overlay writes them) ----

  [[nodiscard]] absl::StatusOr<std::vector<ChannelInfo>> ListChannels() const;
  // Marks the newest live channel with `peer` for renewal; a running daemon renews it before its
  // next send to that peer. NotFound if there is no live channel.
  [[nodiscard]] absl::Status RequestRenewal(std::string_view peer);
  // Deletes every channel row (secrets, tombstones, windows) with `peer`, or with everyone when
  // `peer` is empty, then CheckpointErased. Returns the number of rows deleted.
  [[nodiscard]] absl::StatusOr<int> DropChannels(std::string_view peer);

  // ---- Store key ----

  // Re-seals every sealed value (SealedColumns) and the check value under a key from
  // `new_source` with a new salt, in one transaction, then checkpoints so the old sealed bytes
  // leave the WAL. The old passphrase or key file no longer opens the store. No other process may
  // use the store meanwhile (their next transaction fails with FailedPrecondition).
  [[nodiscard]] absl::Status ChangeStoreKey(const StoreKeySource& new_source, KdfProfile profile);

 private:
  KeyStore(std::string path, std::unique_ptr<SQLite::Database> db, const core::Clock& clock);
  uint64_t NowMs() const { return clock_->NowMs(); }

  // Guards the connection against re-entry from the same thread (which would deadlock).
  class ConnectionLock;

  std::string path_;
  const core::Clock* clock_;
  int schema_version_ = 0;

  mutable std::mutex db_mu_;
  mutable std::atomic<std::thread::id> db_owner_{};
  std::unique_ptr<SQLite::Database> db_;  // guarded by db_mu_
  // Declared after db_, so it is destroyed first (it removes its hook from db_).
  std::unique_ptr<core::WalCheckpointer> checkpointer_;
  // Prepared once (preparing costs more than running it): the salt check of every transaction.
  // Guarded by db_mu_; declared after db_, so it is finalized first.
  std::unique_ptr<SQLite::Statement> salt_query_;

  mutable std::shared_mutex key_mu_;
  std::unique_ptr<StoreSealer> sealer_;  // guarded by key_mu_
  Bytes salt_;                           // guarded by key_mu_; identifies the store key
  KdfParams kdf_params_;                 // guarded by key_mu_
  std::string key_source_kind_;          // guarded by key_mu_
};

}  // namespace nodelink::keys

// What the channel manager needs from the world around it, as narrow interfaces: a way to hand
// envelopes to the hub (the transport), a way to authenticate a peer's certificate chain under the
// pin policy (the key store), and a journal that persists channel state (the key store). The node
// wires the real implementations; keeping them apart lets the manager be driven deterministically
// in tests with a real store and an in-process relay.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/ec.h"
#include "core/secret_bytes.h"
#include "messages/codes.h"
#include "nodelink/v1/hub.pb.h"

namespace nodelink::overlay {

// ---- the transport side ----

struct HubAnswer {
  bool accepted = false;
  v1::Code code = v1::CODE_UNSPECIFIED;  // when rejected
  std::string detail;
};

class EnvelopeSink {
 public:
  virtual ~EnvelopeSink() = default;
  // Hands an envelope to the hub; `done` runs exactly once with the hub's answer (or a local
  // refusal). Never blocks on the network. Thread-safe.
  virtual void Send(v1::Envelope envelope, std::function<void(HubAnswer)> done) = 0;
};

// ---- the trust side ----

class PeerAuthenticator {
 public:
  virtual ~PeerAuthenticator() = default;
  // Check 6 of PROTOCOL.md section 7 for a setup message's chain: the certificate chain names
  // `node_id` in `federation` and verifies at `now_ms` (else kBadCertificate), and the pin policy
  // accepts its key (else kKeyChanged). Changes no state. On success, sets `identity_key`.
  virtual messages::ReceiveCode CheckChain(const std::vector<Bytes>& chain_der,
                                           std::string_view federation, std::string_view node_id,
                                           uint64_t now_ms,
                                           std::optional<core::EcPublicKey>& identity_key) = 0;
  // Called once the setup's signature verified: records the key under TOFU (first use).
  virtual void RecordAccepted(std::string_view node_id, const core::EcPublicKey& identity_key) = 0;
};

// ---- the persistence side ----

// One channel or tombstone (PROTOCOL.md section 5), as persisted.
struct ChannelRow {
  std::string peer;
  Bytes channel_id;
  std::optional<core::SecretBytes> secret;  // nullopt: a tombstone
  bool initiator = false;
  Bytes peer_key_spki;  // the identity key that authenticated the setup
  Bytes request_tbs_hash;  // initiated channels: SHA-256(req_tbs) of the request (empty: unknown)
  Bytes reply_tbs_hash;    // initiated channels: SHA-256(rep_tbs) of the reply that completed it
  uint64_t created_ms = 0;
  bool confirmed = false;
  uint64_t superseded_ms = 0;
  uint64_t erase_at_ms = 0;
  uint64_t drop_at_ms = 0;
  uint64_t send_seq_reserved = 0;
  uint64_t recv_highest = 0;
  Bytes recv_window;
  bool renew_requested = false;
};

struct SetupLogRow {
  std::string sender;
  Bytes message_id;
  uint64_t seen_ms = 0;
  Bytes reply;  // for an answered SetupRequest: the serialized SetupReply envelope sent back
};

struct InboxRow {
  uint64_t id = 0;
  std::string sender;
  Bytes message_id;
  uint64_t received_ms = 0;
  Bytes inner;  // serialized Inner (sealed at rest by the journal)
};

// An inner message shared by a queued send and its sent copy while both need it: the copy is kept
// without copying the bytes (up to 16 MiB) under the manager's lock.
using SharedBytes = std::shared_ptr<const Bytes>;

struct SentRow {
  std::string recipient;
  Bytes message_id;
  Bytes channel_id;
  uint64_t seq = 0;
  uint64_t sent_at_ms = 0;
  SharedBytes inner;  // sealed at rest by the journal
  bool resent = false;
};

struct AnsweredRow {
  std::string peer;
  std::string request_id;
  uint64_t expires_ms = 0;
  Bytes reply;  // serialized Inner (sealed at rest by the journal)
};

using ChannelKey = std::pair<std::string, Bytes>;  // (peer, channel id)

// Changes applied in one store transaction, in this order: put_channels, windows, send_seqs,
// delete_channels, setup log, inbox puts then deletes, sent, answered, pruning.
struct JournalBatch {
  std::vector<ChannelRow> put_channels;  // insert or replace whole rows
  std::vector<ChannelKey> delete_channels;
  struct Window {
    uint64_t highest = 0;
    Bytes bitmap;
    bool confirmed = false;
  };
  std::map<ChannelKey, Window> windows;        // recv_highest, recv_window, confirmed
  std::map<ChannelKey, uint64_t> send_seqs;    // send_seq_reserved
  std::vector<SetupLogRow> put_setup_log;
  std::vector<InboxRow> put_inbox;
  std::vector<uint64_t> delete_inbox;
  std::vector<SentRow> put_sent;
  std::vector<std::pair<std::string, Bytes>> mark_resent;  // (recipient, message id)
  std::vector<AnsweredRow> put_answered;
  uint64_t prune_setup_log_before_ms = 0;  // seen_ms older than this (0 = keep all)
  uint64_t prune_sent_before_ms = 0;       // sent_at_ms older than this
  uint64_t prune_answered_before_ms = 0;   // expires_ms older than this
  bool erased_secrets = false;             // run the erasing checkpoint after the commit

  bool empty() const;
  // Moves everything of `other` into this batch (later writes win). An inbox row removed in the
  // batch that puts it is never written (a message handled before its record committed).
  void Absorb(JournalBatch&& other);
};

// What the manager keeps in memory. Sent messages and answered replies stay in the store only:
// they can be large (an hour of 1 MiB messages) and are read only on rare recovery paths.
struct JournalSnapshot {
  std::vector<ChannelRow> channels;
  std::vector<SetupLogRow> setup_log;
  std::vector<InboxRow> inbox;  // rows left from before a restart, oldest first
};

class ChannelJournal {
 public:
  virtual ~ChannelJournal() = default;
  virtual absl::StatusOr<JournalSnapshot> Load() = 0;
  // Applies the whole batch in one transaction, or nothing. Thread-safe.
  virtual absl::Status Commit(JournalBatch batch) = 0;
  // The sent message `message_id` to `recipient`, if kept.
  virtual absl::StatusOr<std::optional<SentRow>> FindSent(std::string_view recipient,
                                                          ByteView message_id) = 0;
  // Sent messages on one channel with seq >= min_seq that were not resent yet, in seq order.
  virtual absl::StatusOr<std::vector<SentRow>> SentOnChannel(std::string_view recipient,
                                                             ByteView channel_id,
                                                             uint64_t min_seq) = 0;
  // The stored reply to (peer, request_id) if it has not expired at now_ms.
  virtual absl::StatusOr<std::optional<Bytes>> FindAnswered(std::string_view peer,
                                                            std::string_view request_id,
                                                            uint64_t now_ms) = 0;
  // Calls `each` with the key and expiry of every answered-log row (at start, for the channel
  // manager's AnsweredFilter).
  virtual absl::Status ForEachAnswered(
      const std::function<void(std::string_view peer, std::string_view request_id,
                               uint64_t expires_ms)>& each) = 0;
  // Peers an operator asked to renew channels with (nodelink-keys channels renew); clears the
  // requests it returns.
  virtual absl::StatusOr<std::vector<std::string>> TakeRenewRequests() = 0;
};

}  // namespace nodelink::overlay

// The channel manager: PROTOCOL.md sections 5 (setup, matching, simultaneous setups, which
// channel to use, renewal, grace and tombstones), 6 (sealing, sequence numbers, replay windows,
// lost channels) and 7 (the receiver's checks, in order). It implements the router's seam
// (EnvelopeOpener, InnerSender) on top of three ports: the hub (EnvelopeSink), the trust policy
// (PeerAuthenticator) and the store (ChannelJournal, through a group-committing CommitQueue).
//
// Threading: every public method is thread-safe. State lives under one mutex; signatures, ECDH and
// AEAD run outside it, so peers proceed in parallel. Callbacks (`done`) and envelopes to the hub
// are never invoked with the mutex held.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ec.h"
#include "core/secret_bytes.h"
#include "messages/codes.h"
#include "messages/envelope_check.h"
#include "overlay/answered_filter.h"
#include "overlay/commit_queue.h"
#include "overlay/delivery.h"
#include "overlay/ports.h"
#include "overlay/replay_window.h"

namespace nodelink::overlay {

struct LocalIdentity {
  std::string federation;
  std::string node_id;
  core::EcPrivateKey key;
  std::vector<Bytes> cert_chain_der;  // own certificate first
};

struct ChannelManagerOptions {
  uint64_t queue_ttl_ms = 3'600'000;          // the hub's, from Welcome (PROTOCOL 9)
  uint64_t max_skew_ms = messages::kMaxClockSkewMs;
  uint64_t max_channel_age_ms = 86'400'000;   // 24 hours
  uint64_t setup_timeout_ms = 30'000;         // waiters fail after this; the request lives on
  uint64_t window_size = 1024;                // max(1024, max_in_flight)
  uint64_t setup_answer_interval_ms = 10'000;      // per peer, beyond the first (PROTOCOL 9)
  uint64_t channel_unknown_interval_ms = 60'000;   // per (peer, channel id)
  uint64_t seq_reserve_block = 1024;          // send numbers persisted ahead in blocks
};

// Snapshot of what happened, for metrics and tests.
struct ChannelCounters {
  std::array<uint64_t, messages::kReceiveCodeCount> received{};  // by outcome code
  uint64_t setups_started = 0;
  uint64_t setups_completed = 0;       // as initiator
  uint64_t setups_answered = 0;        // as responder
  uint64_t setups_failed = 0;          // waiters failed (timeout or hub rejection)
  uint64_t simultaneous_ignored = 0;   // the loser's request, ignored by the smaller side
  uint64_t simultaneous_abandoned = 0; // own request abandoned by the larger side
  uint64_t channel_unknown_sent = 0;
  uint64_t channel_unknown_acted = 0;
  uint64_t channel_unknown_ignored = 0;  // named no message we sent, or no known key
  uint64_t setups_answered_again = 0;    // a verified second reply: the peer lost its state
  uint64_t messages_sealed = 0;
  uint64_t messages_opened = 0;        // sealed messages that passed every check
  uint64_t messages_resent = 0;
  uint64_t renewals = 0;
  uint64_t secrets_erased = 0;
  uint64_t commit_transactions = 0;
  uint64_t commit_items = 0;
  // Answered-log lookups (FindAnswered), and those the AnsweredFilter spared the store.
  uint64_t answered_lookups = 0;
  uint64_t answered_lookups_skipped = 0;
};

// One channel as operators and tests see it.
struct ChannelInfo {
  std::string peer;
  Bytes channel_id;
  bool live = false;  // false: tombstone
  bool initiator = false;
  bool confirmed = false;
  bool current = false;  // the one Send uses for this peer
  uint64_t created_ms = 0;
  uint64_t superseded_ms = 0;
  uint64_t next_send_seq = 0;
  uint64_t recv_highest = 0;
};

class ChannelManager final : public EnvelopeOpener, public InnerSender {
 public:
  // Loads channel state from the journal (ephemeral keys never persist: pending setups of a
  // previous run are abandoned). `on_fatal` runs if the store cannot commit: the manager then
  // stops acknowledging anything (fail-stop), and the daemon should exit.
  static absl::StatusOr<std::unique_ptr<ChannelManager>> Create(
      LocalIdentity identity, ChannelManagerOptions options, core::Clock& clock,
      EnvelopeSink& sink, PeerAuthenticator& authenticator, ChannelJournal& journal,
      std::function<void(absl::Status)> on_fatal = nullptr);
  ~ChannelManager() override;

  // EnvelopeOpener (see delivery.h).
  void Open(v1::Envelope envelope, std::function<void(OpenOutcome)> done) override;
  void OpenAlone(v1::Envelope envelope, std::function<void(OpenOutcome)> done) override;
  void OpenAndHandle(v1::Envelope envelope,
                     std::function<void(InboxMessage, std::function<void()>)> handle,
                     std::function<void(OpenOutcome)> done) override;
  void Complete(uint64_t inbox_id, std::function<void()> durable = nullptr) override;
  std::vector<InboxMessage> PendingInbox() override;

  // InnerSender (see delivery.h). Messages to one peer leave in the order Send was called.
  void Send(const std::string& peer, v1::Inner inner,
            std::function<void(absl::Status)> done) override;

  // Starts a new channel with `peer` (operator demand); the current one is used until it is up.
  void Renew(const std::string& peer);

  // Periodic work, every second or so (tests call it after moving a ManualClock): fails setup
  // waiters past setup_timeout_ms, ends pending setups past TTL + skew, erases secrets whose grace
  // ended (tombstones), drops expired tombstones, prunes replay and sent logs, picks up renewal
  // requests left in the store by nodelink-keys.
  void Maintain();

  // The hub's queue time to live, from its Welcome. Clamped to [1 minute, 7 days]: it drives the
  // freshness check and every retention, and the hub is not trusted with those.
  void SetQueueTtl(uint64_t ttl_ms);

  // The answered log (PROTOCOL 6): replies kept per (peer, request id) until `expires_ms`, so that
  // a repeated request is answered from the record. Written with the next group commit; expired
  // records are pruned by Maintain().
  void RecordAnswered(const std::string& peer, const std::string& request_id,
                      const v1::Inner& reply, uint64_t expires_ms);
  absl::StatusOr<std::optional<v1::Inner>> FindAnswered(const std::string& peer,
                                                        const std::string& request_id,
                                                        uint64_t now_ms);

  // Blocks until every state change so far is durable.
  void Flush();

  ChannelCounters counters() const;
  std::vector<ChannelInfo> Channels() const;
  const std::string& node_id() const { return identity_.node_id; }
  const std::string& federation() const { return identity_.federation; }

 private:
  struct Channel;
  struct PendingSetup;
  struct QueuedSend;
  struct PeerState;
  using Deferred = std::vector<std::function<void()>>;

  ChannelManager(LocalIdentity identity, ChannelManagerOptions options, core::Clock& clock,
                 EnvelopeSink& sink, PeerAuthenticator& authenticator, ChannelJournal& journal,
                 std::function<void(absl::Status)> on_fatal);
  absl::Status LoadState();

  // ---- receiving (channel_receive.cc) ----
  // Open without the commit: every path ends in Finish or FinishLocked. With `to_handle` given,
  // a sealed message opened goes there, once its record is queued, instead of into the outcome.
  void OpenChecked(v1::Envelope envelope, std::function<void(OpenOutcome)>& done,
                   std::optional<InboxMessage>* to_handle = nullptr);
  messages::ReceiveCode CheckHeader(const v1::Envelope& e, uint64_t now) const;
  void Finish(messages::ReceiveCode code, std::function<void(OpenOutcome)>& done,
              JournalBatch changes = {}, std::optional<InboxMessage> message = std::nullopt,
              std::function<void()> also = nullptr);
  void FinishLocked(messages::ReceiveCode code, std::function<void(OpenOutcome)>& done,
                    JournalBatch changes = {}, std::optional<InboxMessage> message = std::nullopt,
                    std::function<void()> also = nullptr);
  void OpenSealed(v1::Envelope& e, std::function<void(OpenOutcome)>& done,
                  std::optional<InboxMessage>* to_handle);
  void OpenChannelUnknown(v1::Envelope& e, std::function<void(OpenOutcome)>& done);
  void MaybeSendChannelUnknownLocked(const v1::Envelope& sealed, Deferred& deferred);
  // PROTOCOL 6, "Lost channels": `peer` does not hold `channel_id` as this node does (it said
  // ChannelUnknown, or answered again the request that set the channel up). Records `log_key`
  // (the ChannelUnknown, against replays; a second answer needs none: the channel it names is
  // gone after this); drops the channel, and sets up a new one if it was the current
  // sending one; resends what was sent on it from `from_seq` on; counts `counter` and finishes
  // with `code`.
  void RecoverLostChannel(const std::string& peer, const Bytes& channel_id, uint64_t from_seq,
                          std::optional<std::pair<std::string, Bytes>> log_key,
                          messages::ReceiveCode code, uint64_t ChannelCounters::*counter,
                          std::function<void(OpenOutcome)>& done);

  // ---- setup (channel_setup.cc) ----
  void OpenSetupRequest(v1::Envelope& e, std::function<void(OpenOutcome)>& done);
  void OpenSetupReply(v1::Envelope& e, std::function<void(OpenOutcome)>& done);
  void OpenReplyAnsweredAgain(v1::Envelope& e, const Bytes& request_tbs_hash,
                              const Bytes& first_reply_tbs_hash,
                              std::function<void(OpenOutcome)>& done);
  void EnsureSetupLocked(const std::string& peer, PeerState& ps, Deferred& deferred);
  void OnSetupRequestAnswered(const std::string& peer, const Bytes& setup_id, HubAnswer answer);
  Channel& AddChannelLocked(const std::string& peer, PeerState& ps, Channel channel,
                            JournalBatch& changes);
  void FailQueueLocked(PeerState& ps, const absl::Status& why, Deferred& deferred);

  // ---- sending (channel_manager.cc) ----
  void Drain(const std::string& peer);
  Channel* SendingChannelLocked(PeerState& ps);
  bool RenewalDueLocked(const std::string& peer, const Channel& channel, uint64_t now) const;
  void EraseSecretLocked(const std::string& peer, Channel& channel, uint64_t now,
                         JournalBatch& changes);
  ChannelRow RowOf(const std::string& peer, const Channel& channel) const;

  // An envelope from this participant to `recipient`: version, ids, a fresh message id, `now`.
  v1::Envelope NewEnvelope(const std::string& recipient, uint64_t now) const;
  void RunDeferred(Deferred& deferred);
  uint64_t ReplayRetentionMs() const;  // TTL + 2 x skew

  LocalIdentity identity_;
  ChannelManagerOptions options_;
  core::Clock& clock_;
  EnvelopeSink& sink_;
  PeerAuthenticator& authenticator_;
  ChannelJournal& journal_;
  std::function<void(absl::Status)> on_fatal_;
  std::unique_ptr<CommitQueue> commits_;
  std::atomic<bool> stopping_{false};

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<PeerState>> peers_;
  // ChannelUnknown sent per (peer, channel id), for the once-a-minute rate; kept a minute.
  std::map<std::pair<std::string, Bytes>, uint64_t> channel_unknown_sent_;
  static constexpr size_t kChannelUnknownBudget = 1000;  // per minute, across all peers
  std::map<std::pair<std::string, Bytes>, uint64_t> setup_log_;  // (sender, message id) -> seen
  std::map<std::pair<std::string, Bytes>, Bytes> stored_replies_;  // answered SetupRequests
  uint64_t next_channel_order_ = 1;
  uint64_t next_inbox_id_ = 1;
  std::vector<InboxRow> pending_inbox_;
  ChannelCounters counters_;
  std::atomic<bool> failed_{false};
  // Keys of the answered log, so that a request never answered is not looked up (its own lock).
  AnsweredFilter answered_filter_;
  std::atomic<uint64_t> answered_lookups_{0}, answered_lookups_skipped_{0};

  // The peer's state, created if absent (send paths and verified setups only).
  PeerState& PeerLocked(const std::string& peer);
  // The peer's state or null: receive paths create nothing for an unauthenticated sender.
  PeerState* FindPeerLocked(const std::string& peer);
};

}  // namespace nodelink::overlay

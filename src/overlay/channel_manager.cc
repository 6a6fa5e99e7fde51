// Construction, loading, sending and maintenance. Receiving is in channel_receive.cc, setup in
// channel_setup.cc.
#include "overlay/channel_manager.h"

#include <algorithm>
#include <utility>

#include "core/random.h"
#include "core/status.h"
#include "messages/names.h"
#include "overlay/channel_state.h"
#include "overlay/hub_answer.h"
#include "overlay/sealing.h"

namespace nodelink::overlay {

absl::StatusOr<std::unique_ptr<ChannelManager>> ChannelManager::Create(
    LocalIdentity identity, ChannelManagerOptions options, core::Clock& clock, EnvelopeSink& sink,
    PeerAuthenticator& authenticator, ChannelJournal& journal,
    std::function<void(absl::Status)> on_fatal) {
  if (!messages::IsValidName(identity.federation) || !messages::IsValidName(identity.node_id)) {
    return absl::InvalidArgumentError("identity has an invalid federation or node id");
  }
  options.window_size = std::max<uint64_t>(options.window_size, 1024);
  options.seq_reserve_block = std::max<uint64_t>(options.seq_reserve_block, 1);
  std::unique_ptr<ChannelManager> manager(new ChannelManager(
      std::move(identity), options, clock, sink, authenticator, journal, std::move(on_fatal)));
  NL_RETURN_IF_ERROR(manager->LoadState());
  return manager;
}

ChannelManager::ChannelManager(LocalIdentity identity, ChannelManagerOptions options,
                               core::Clock& clock, EnvelopeSink& sink,
                               PeerAuthenticator& authenticator, ChannelJournal& journal,
                               std::function<void(absl::Status)> on_fatal)
    : identity_(std::move(identity)),
      options_(options),
      clock_(clock),
      sink_(sink),
      authenticator_(authenticator),
      journal_(journal),
      on_fatal_(std::move(on_fatal)) {
  commits_ = std::make_unique<CommitQueue>(journal_, [this](absl::Status status) {
    failed_.store(true);
    if (on_fatal_) on_fatal_(status);
  });
}

ChannelManager::~ChannelManager() {
  // Commits what is queued, while every member is still valid; callbacks that run meanwhile see
  // stopping_ and start nothing new.
  stopping_.store(true);
  commits_->Shutdown();
}

absl::Status ChannelManager::LoadState() {
  NL_ASSIGN_OR_RETURN(JournalSnapshot snapshot, journal_.Load());
  NL_RETURN_IF_ERROR(journal_.ForEachAnswered(
      [this](std::string_view peer, std::string_view request_id, uint64_t expires_ms) {
        answered_filter_.Add(peer, request_id, expires_ms);
      }));
  std::lock_guard lock(mu_);
  std::vector<ChannelRow>& rows = snapshot.channels;
  // Creation order decides which channel is "newest"; restore it from the creation times.
  std::sort(rows.begin(), rows.end(), [](const ChannelRow& a, const ChannelRow& b) {
    return a.created_ms < b.created_ms;
  });
  for (ChannelRow& row : rows) {
    Channel c;
    c.id = row.channel_id;
    c.secret = std::move(row.secret);
    c.initiator = row.initiator;
    auto key = core::EcPublicKey::FromSpkiDer(row.peer_key_spki);
    if (!key.ok()) {
      return absl::DataLossError("stored channel with " + row.peer +
                                 " has an unreadable peer key; drop its channels "
                                 "(nodelink-keys channels drop " + row.peer + ")");
    }
    c.peer_key = *key;
    c.peer_key_spki = row.peer_key_spki;
    c.request_tbs_hash = row.request_tbs_hash;
    c.reply_tbs_hash = row.reply_tbs_hash;
    c.created_ms = row.created_ms;
    c.order = next_channel_order_++;
    c.confirmed = row.confirmed;
    c.superseded_ms = row.superseded_ms;
    c.erase_at_ms = row.erase_at_ms;
    c.drop_at_ms = row.drop_at_ms;
    // Numbers up to the reservation may have been used before the restart: skip them all.
    c.send_seq_reserved = row.send_seq_reserved;
    c.send_seq_durable = row.send_seq_reserved;
    c.next_send_seq = row.send_seq_reserved + 1;
    NL_ASSIGN_OR_RETURN(c.window, ReplayWindow::Restore(row.recv_highest, row.recv_window,
                                                        options_.window_size));
    c.renew_requested = row.renew_requested;
    PeerLocked(row.peer).channels.push_back(std::move(c));
  }
  for (const SetupLogRow& row : snapshot.setup_log) {
    setup_log_[{row.sender, row.message_id}] = row.seen_ms;
    if (!row.reply.empty()) stored_replies_[{row.sender, row.message_id}] = row.reply;
  }
  for (const InboxRow& row : snapshot.inbox) next_inbox_id_ = std::max(next_inbox_id_, row.id + 1);
  pending_inbox_ = std::move(snapshot.inbox);
  return absl::OkStatus();
}

ChannelManager::PeerState& ChannelManager::PeerLocked(const std::string& peer) {
  std::unique_ptr<PeerState>& slot = peers_[peer];
  if (!slot) slot = std::make_unique<PeerState>();
  return *slot;
}

ChannelManager::PeerState* ChannelManager::FindPeerLocked(const std::string& peer) {
  auto it = peers_.find(peer);
  return it == peers_.end() ? nullptr : it->second.get();
}

void ChannelManager::RunDeferred(Deferred& deferred) {
  for (auto& action : deferred) action();
  deferred.clear();
}

uint64_t ChannelManager::ReplayRetentionMs() const {
  return options_.queue_ttl_ms + 2 * options_.max_skew_ms;
}

// ---------------------------------------------------------------- sending

void ChannelManager::Send(const std::string& peer, v1::Inner inner,
                          std::function<void(absl::Status)> done) {
  if (!messages::IsValidName(peer) || peer == identity_.node_id) {
    if (done) done(absl::InvalidArgumentError("cannot send to \"" + peer + "\": not a valid peer"));
    return;
  }
  if (failed_.load()) {
    if (done) done(absl::UnavailableError("the key store failed; this node has stopped"));
    return;
  }
  QueuedSend item{std::make_shared<const Bytes>(ToBytes(inner.SerializeAsString())),
                  std::move(done),
                  clock_.NowMs() + options_.setup_timeout_ms,
                  {}};
  {
    std::lock_guard lock(mu_);
    PeerLocked(peer).queue.push_back(std::move(item));
  }
  Drain(peer);
}

// PROTOCOL 5, "Which channel to use": the newest channel the peer is known to hold; failing that,
// the newest one this node answered.
ChannelManager::Channel* ChannelManager::SendingChannelLocked(PeerState& ps) {
  Channel* confirmed = nullptr;
  Channel* answered = nullptr;
  for (Channel& c : ps.channels) {
    if (!c.live() || !c.sendable) continue;
    Channel*& best = c.confirmed ? confirmed : answered;
    if (best == nullptr || c.order > best->order) best = &c;
  }
  return confirmed != nullptr ? confirmed : answered;
}

// PROTOCOL 5, "Renewal": after the maximum age the side with the smaller id renews; the other
// side only after max age + 2 x max skew (so both rarely renew at once).
bool ChannelManager::RenewalDueLocked(const std::string& peer, const Channel& channel,
                                      uint64_t now) const {
  uint64_t limit = options_.max_channel_age_ms;
  if (!messages::IdLess(identity_.node_id, peer)) limit += 2 * options_.max_skew_ms;
  return now >= channel.created_ms && now - channel.created_ms >= limit;
}

void ChannelManager::Drain(const std::string& peer) {
  if (stopping_.load()) return;
  Deferred deferred;
  std::unique_lock lock(mu_);
  // Maintain never prunes a draining peer, so the reference stays valid across the unlocks.
  PeerState& ps = PeerLocked(peer);
  if (ps.draining) return;  // the thread draining will take what was just queued
  ps.draining = true;
  while (!ps.queue.empty() && !failed_.load()) {
    uint64_t now = clock_.NowMs();
    Channel* ch = SendingChannelLocked(ps);
    if (ch == nullptr) {
      EnsureSetupLocked(peer, ps, deferred);
      break;  // the setup's completion drains again
    }
    // Renewal age is that of the newest live channel (answered ones included): once either side
    // renewed, the other does not renew again on the old channel's age.
    const Channel* newest = ch;
    for (const Channel& c : ps.channels) {
      if (c.live() && c.order > newest->order) newest = &c;
    }
    if (ch->renew_requested || ps.renew_wanted || RenewalDueLocked(peer, *newest, now)) {
      if (!ps.pending) counters_.renewals += 1;
      ch->renew_requested = false;
      ps.renew_wanted = false;
      EnsureSetupLocked(peer, ps, deferred);  // keep sending on `ch` until the new one is up
    }
    // PROTOCOL 6: no number is ever used twice on a channel, restarts included: numbers are
    // reserved in blocks, and a block is durable before its first number leaves. The next block
    // is reserved when half of the current one is used, so a busy channel does not pause; if it
    // is not durable yet, sending resumes when it commits (this may run on the commit thread, so
    // it must not wait).
    uint64_t seq = ch->next_send_seq;
    if (!ch->reservation_in_flight &&
        seq + options_.seq_reserve_block / 2 > ch->send_seq_durable) {
      ch->reservation_in_flight = true;
      ch->send_seq_reserved =
          std::max(ch->send_seq_reserved, seq - 1) + options_.seq_reserve_block;
      JournalBatch reservation;
      reservation.send_seqs[{peer, ch->id}] = ch->send_seq_reserved;
      commits_->Enqueue(std::move(reservation),
                        [this, peer, id = ch->id, target = ch->send_seq_reserved] {
                          {
                            std::lock_guard relock(mu_);
                            if (Channel* c = PeerLocked(peer).Find(id)) {
                              c->send_seq_durable = std::max(c->send_seq_durable, target);
                              c->reservation_in_flight = false;
                            }
                          }
                          Drain(peer);
                        });
    }
    if (seq > ch->send_seq_durable) break;
    ch->next_send_seq += 1;
    QueuedSend item = std::move(ps.queue.front());
    ps.queue.pop_front();
    Bytes channel_id = ch->id;
    core::SecretBytes secret = ch->secret->Clone();
    counters_.messages_sealed += 1;
    uint64_t sent_at = clock_.NowMs();
    v1::Envelope envelope = NewEnvelope(peer, sent_at);
    Bytes message_id = ToBytes(envelope.message_id());
    // PROTOCOL 6, "Lost channels": keep what was sent, sealed under the store key, for resending
    // after a ChannelUnknown. Queued for the next group commit together with taking the number,
    // under the lock: a ChannelUnknown erases the channel under it too, then reads the sent
    // copies, so every number taken on the channel is among them (queued after sealing, one being
    // sealed meanwhile was missed, then refused by the peer and never resent; that reading
    // flushes the queue first). The copy shares the inner bytes with `item`. Held: it commits with
    // the next transaction, such as a reply's record, or within CommitQueue::kDefaultHold.
    JournalBatch sent;
    sent.put_sent.push_back(SentRow{peer, message_id, channel_id, seq, sent_at, item.inner, false});
    commits_->Enqueue(std::move(sent), nullptr, CommitQueue::CommitBy::kHeld);
    lock.unlock();
    RunDeferred(deferred);

    v1::Sealed* sealed = envelope.mutable_sealed();
    sealed->set_channel_id(ToString(channel_id));
    sealed->set_salt(ToString(core::RandomBytes(32)));
    sealed->set_nonce(ToString(core::RandomBytes(12)));
    sealed->set_seq(seq);
    absl::StatusOr<Bytes> ciphertext =
        failed_.load() ? absl::UnavailableError("the key store failed; this node has stopped")
                       : SealInner(SealedHeaderOf(envelope), secret, identity_.key, *item.inner);
    if (!ciphertext.ok()) {
      if (item.done) item.done(ciphertext.status());
      // A later ChannelUnknown must not resend this copy; a resend's original stays resendable.
      JournalBatch never_sent;
      never_sent.mark_resent.push_back({peer, message_id});
      lock.lock();
      commits_->Enqueue(std::move(never_sent));
      continue;
    }
    sealed->set_ciphertext(ToString(*ciphertext));
    if (!item.resend_of.empty()) {  // the original is resent once, by this copy
      JournalBatch resent;
      resent.mark_resent.push_back({peer, item.resend_of});
      commits_->Enqueue(std::move(resent));
    }
    sink_.Send(std::move(envelope), [done = std::move(item.done)](HubAnswer answer) {
      if (done) done(answer.accepted ? absl::OkStatus() : HubRejectionStatus(answer));
    });
    lock.lock();
  }
  ps.draining = false;
  lock.unlock();
  RunDeferred(deferred);
}

void ChannelManager::Renew(const std::string& peer) {
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    PeerState& ps = PeerLocked(peer);
    if (!ps.pending) counters_.renewals += 1;
    EnsureSetupLocked(peer, ps, deferred);
  }
  RunDeferred(deferred);
}

// ---------------------------------------------------------------- channel bookkeeping

ChannelRow ChannelManager::RowOf(const std::string& peer, const Channel& c) const {
  ChannelRow row;
  row.peer = peer;
  row.channel_id = c.id;
  if (c.secret) row.secret = c.secret->Clone();
  row.initiator = c.initiator;
  row.peer_key_spki = c.peer_key_spki;
  row.request_tbs_hash = c.request_tbs_hash;
  row.reply_tbs_hash = c.reply_tbs_hash;
  row.created_ms = c.created_ms;
  row.confirmed = c.confirmed;
  row.superseded_ms = c.superseded_ms;
  row.erase_at_ms = c.erase_at_ms;
  row.drop_at_ms = c.drop_at_ms;
  row.send_seq_reserved = c.send_seq_reserved;
  row.recv_highest = c.window.highest();
  row.recv_window = c.window.SerializeBitmap();
  row.renew_requested = c.renew_requested;
  return row;
}

// PROTOCOL 5: the secret is overwritten (SecretBytes wipes it; the store runs secure_delete and a
// truncating checkpoint), and a tombstone keeps the replay window for another TTL + 2 x skew.
void ChannelManager::EraseSecretLocked(const std::string& peer, Channel& channel, uint64_t now,
                                       JournalBatch& changes) {
  if (!channel.live()) return;
  channel.secret.reset();
  channel.erase_at_ms = 0;
  channel.drop_at_ms = now + ReplayRetentionMs();
  counters_.secrets_erased += 1;
  changes.put_channels.push_back(RowOf(peer, channel));
  changes.erased_secrets = true;
}

void ChannelManager::FailQueueLocked(PeerState& ps, const absl::Status& why, Deferred& deferred) {
  for (QueuedSend& item : ps.queue) {
    if (item.done) deferred.push_back([done = std::move(item.done), why] { done(why); });
  }
  ps.queue.clear();
}

// ---------------------------------------------------------------- maintenance

void ChannelManager::Maintain() {
  if (failed_.load()) return;
  auto renew = journal_.TakeRenewRequests();
  Deferred deferred;
  JournalBatch changes;
  uint64_t now = clock_.NowMs();
  answered_filter_.Rotate(now);
  {
    std::lock_guard lock(mu_);
    if (renew.ok()) {
      for (const std::string& peer : *renew) {
        PeerState& ps = PeerLocked(peer);
        if (!ps.pending) counters_.renewals += 1;
        EnsureSetupLocked(peer, ps, deferred);
      }
    }
    for (auto& entry : peers_) {
      // (No structured binding: clang 14 cannot capture one in the lambdas below.)
      const std::string& peer = entry.first;
      PeerState& ps = *entry.second;
      if (ps.pending && now >= ps.pending->expires_ms) ps.pending.reset();
      // Sends that waited too long for a channel fail with a clear reason.
      if (SendingChannelLocked(ps) == nullptr) {
        bool any_failed = false;
        std::deque<QueuedSend> keep;
        for (QueuedSend& item : ps.queue) {
          if (now < item.deadline_ms) {
            keep.push_back(std::move(item));
            continue;
          }
          any_failed = true;
          if (item.done) {
            deferred.push_back([done = std::move(item.done), peer] {
              done(absl::DeadlineExceededError(
                  "channel setup with " + peer +
                  " got no reply in time; is the peer connected to the hub and does it trust "
                  "this node's certificate?"));
            });
          }
        }
        ps.queue.swap(keep);
        if (any_failed) counters_.setups_failed += 1;
      }
      for (Channel& c : ps.channels) {
        if (c.live() && c.erase_at_ms != 0 && now >= c.erase_at_ms) {
          EraseSecretLocked(peer, c, now, changes);
        }
      }
      auto dropped = std::remove_if(ps.channels.begin(), ps.channels.end(), [&](Channel& c) {
        bool drop = !c.live() && c.drop_at_ms != 0 && now >= c.drop_at_ms;
        if (drop) changes.delete_channels.push_back({peer, c.id});
        return drop;
      });
      ps.channels.erase(dropped, ps.channels.end());
    }
    // Peers with nothing left (a sender that never set up a channel, a peer whose tombstones
    // expired) are forgotten, so that made-up sender names cannot grow memory.
    for (auto it = peers_.begin(); it != peers_.end();) {
      it = it->second->Idle() ? peers_.erase(it) : std::next(it);
    }
    for (auto it = channel_unknown_sent_.begin(); it != channel_unknown_sent_.end();) {
      it = now - it->second >= options_.channel_unknown_interval_ms
               ? channel_unknown_sent_.erase(it)
               : std::next(it);
    }
    uint64_t retention = ReplayRetentionMs();
    if (now > retention) {
      uint64_t cutoff = now - retention;
      for (auto it = setup_log_.begin(); it != setup_log_.end();) {
        if (it->second < cutoff) {
          stored_replies_.erase(it->first);
          it = setup_log_.erase(it);
        } else {
          ++it;
        }
      }
      changes.prune_setup_log_before_ms = cutoff;
    }
    uint64_t sent_retention = options_.queue_ttl_ms + options_.max_skew_ms;
    if (now > sent_retention) changes.prune_sent_before_ms = now - sent_retention;
    changes.prune_answered_before_ms = now;
    commits_->Enqueue(std::move(changes));  // under the lock: in order with other snapshots
  }
  RunDeferred(deferred);
}

void ChannelManager::SetQueueTtl(uint64_t ttl_ms) {
  constexpr uint64_t kMinTtlMs = 60'000, kMaxTtlMs = 7ull * 24 * 3'600'000;
  std::lock_guard lock(mu_);
  options_.queue_ttl_ms = std::clamp(ttl_ms, kMinTtlMs, kMaxTtlMs);
}

// ---------------------------------------------------------------- inbox, answered log

void ChannelManager::Complete(uint64_t inbox_id, std::function<void()> durable) {
  if (inbox_id == 0) {
    if (durable) durable();
    return;
  }
  JournalBatch changes;
  changes.delete_inbox.push_back(inbox_id);
  commits_->Enqueue(std::move(changes), std::move(durable));
}

std::vector<InboxMessage> ChannelManager::PendingInbox() {
  std::vector<InboxRow> rows;
  {
    std::lock_guard lock(mu_);
    rows.swap(pending_inbox_);
  }
  std::vector<InboxMessage> messages;
  for (InboxRow& row : rows) {
    InboxMessage m;
    m.inbox_id = row.id;
    m.sender = row.sender;
    m.message_id = row.message_id;
    m.received_ms = row.received_ms;
    if (!ParseKnownInner(row.inner, m.inner)) {
      Complete(row.id);  // cannot happen for rows we wrote; do not keep a poison row
      continue;
    }
    messages.push_back(std::move(m));
  }
  return messages;
}

void ChannelManager::RecordAnswered(const std::string& peer, const std::string& request_id,
                                    const v1::Inner& reply, uint64_t expires_ms) {
  if (request_id.empty()) return;
  answered_filter_.Add(peer, request_id, expires_ms);  // before a lookup can look for it
  JournalBatch changes;
  changes.put_answered.push_back(
      AnsweredRow{peer, request_id, expires_ms, ToBytes(reply.SerializeAsString())});
  commits_->Enqueue(std::move(changes));
}

absl::StatusOr<std::optional<v1::Inner>> ChannelManager::FindAnswered(
    const std::string& peer, const std::string& request_id, uint64_t now_ms) {
  answered_lookups_.fetch_add(1, std::memory_order_relaxed);
  if (!answered_filter_.MayContain(peer, request_id)) {
    answered_lookups_skipped_.fetch_add(1, std::memory_order_relaxed);
    return std::nullopt;
  }
  NL_ASSIGN_OR_RETURN(std::optional<Bytes> found,
                      journal_.FindAnswered(peer, request_id, now_ms));
  if (!found) return std::nullopt;
  v1::Inner reply;
  if (!reply.ParseFromArray(found->data(), static_cast<int>(found->size()))) {
    return absl::DataLossError("stored reply is unreadable");
  }
  return reply;
}

void ChannelManager::Flush() { commits_->Flush(); }

ChannelCounters ChannelManager::counters() const {
  CommitQueue::Stats stats = commits_->stats();
  std::lock_guard lock(mu_);
  ChannelCounters c = counters_;
  c.commit_transactions = stats.transactions;
  c.commit_items = stats.items;
  c.answered_lookups = answered_lookups_.load(std::memory_order_relaxed);
  c.answered_lookups_skipped = answered_lookups_skipped_.load(std::memory_order_relaxed);
  return c;
}

std::vector<ChannelInfo> ChannelManager::Channels() const {
  std::lock_guard lock(mu_);
  std::vector<ChannelInfo> out;
  for (const auto& [peer, ps_ptr] : peers_) {
    const Channel* current = const_cast<ChannelManager*>(this)->SendingChannelLocked(*ps_ptr);
    for (const Channel& c : ps_ptr->channels) {
      out.push_back(ChannelInfo{peer, c.id, c.live(), c.initiator, c.confirmed, &c == current,
                                c.created_ms, c.superseded_ms, c.next_send_seq,
                                c.window.highest()});
    }
  }
  return out;
}

}  // namespace nodelink::overlay

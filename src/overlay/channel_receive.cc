// Receiving: the checks of PROTOCOL.md section 7 in order, sealed messages (section 6) and
// ChannelUnknown (section 6, "Lost channels").
#include <utility>

#include "core/random.h"
#include "core/status.h"
#include "messages/canonical.h"
#include "messages/envelope_check.h"
#include "overlay/channel_manager.h"
#include "overlay/channel_state.h"
#include "overlay/sealing.h"

namespace nodelink::overlay {

using messages::ReceiveCode;

// Every path of OpenChecked queues its outcome for the caller to place (FinishLocked): Open hands
// it to the commit thread, which batches it with others; OpenAlone commits it here when nothing
// else is queued, so `done` runs before it returns, sparing two thread hand-offs at light load;
// OpenAndHandle leaves a sealed message's record to be placed after its handler's first step.
void ChannelManager::Open(v1::Envelope envelope, std::function<void(OpenOutcome)> done) {
  if (failed_.load() || stopping_.load()) return;  // fail-stop: nothing more is acknowledged
  OpenChecked(std::move(envelope), done);
  commits_->CommitOnThread();
}

void ChannelManager::OpenAlone(v1::Envelope envelope, std::function<void(OpenOutcome)> done) {
  if (failed_.load() || stopping_.load()) return;
  OpenChecked(std::move(envelope), done);
  commits_->CommitHereIfIdle();
}

void ChannelManager::OpenAndHandle(v1::Envelope envelope,
                                   std::function<void(InboxMessage, std::function<void()>)> handle,
                                   std::function<void(OpenOutcome)> done) {
  if (failed_.load() || stopping_.load()) return;
  std::optional<InboxMessage> to_handle;
  OpenChecked(std::move(envelope), done, &to_handle);
  if (!to_handle) {
    commits_->CommitHereIfIdle();
    return;
  }
  handle(std::move(*to_handle), [this] { commits_->PlaceHere(); });
}

void ChannelManager::OpenChecked(v1::Envelope envelope, std::function<void(OpenOutcome)>& done,
                                 std::optional<InboxMessage>* to_handle) {
  ReceiveCode code = CheckHeader(envelope, clock_.NowMs());
  if (code != ReceiveCode::kOk) {
    Finish(code, done);
    return;
  }
  switch (envelope.body_case()) {
    case v1::Envelope::kSetupRequest:
      OpenSetupRequest(envelope, done);
      return;
    case v1::Envelope::kSetupReply:
      OpenSetupReply(envelope, done);
      return;
    case v1::Envelope::kSealed:
      OpenSealed(envelope, done, to_handle);
      return;
    case v1::Envelope::kChannelUnknown:
      OpenChannelUnknown(envelope, done);
      return;
    case v1::Envelope::BODY_NOT_SET:
      break;
  }
  Finish(ReceiveCode::kMalformed, done);  // unreachable: check 1 requires a body
}

// Checks 1 to 4, which need no channel state.
ReceiveCode ChannelManager::CheckHeader(const v1::Envelope& e, uint64_t now) const {
  if (!messages::CheckWellFormed(e).ok()) return ReceiveCode::kMalformed;
  if (e.recipient() != identity_.node_id) return ReceiveCode::kMisrouted;
  if (e.federation() != identity_.federation) return ReceiveCode::kWrongFederation;
  uint64_t ttl, skew;
  {
    std::lock_guard lock(mu_);
    ttl = options_.queue_ttl_ms;
    skew = options_.max_skew_ms;
  }
  if (e.sent_at_ms() > now + skew) return ReceiveCode::kStale;  // from the future
  if (now > ttl + skew && e.sent_at_ms() < now - ttl - skew) return ReceiveCode::kStale;  // too old
  return ReceiveCode::kOk;
}

void ChannelManager::Finish(ReceiveCode code, std::function<void(OpenOutcome)>& done,
                            JournalBatch changes, std::optional<InboxMessage> message,
                            std::function<void()> also) {
  std::lock_guard lock(mu_);
  FinishLocked(code, done, std::move(changes), std::move(message), std::move(also));
}

// Every outcome, refusals included, goes through the commit queue: the outcomes of one sender
// then complete in the order its envelopes were opened, and none is acknowledged before the state
// change that records it is durable. Called with mu_ held, so that changes reach the queue in
// the order the state they record was made (a later snapshot never lands before an earlier one).
void ChannelManager::FinishLocked(ReceiveCode code, std::function<void(OpenOutcome)>& done,
                                  JournalBatch changes, std::optional<InboxMessage> message,
                                  std::function<void()> also) {
  counters_.received[static_cast<size_t>(code)] += 1;
  commits_->Enqueue(
      std::move(changes),
      [done = std::move(done), code, message = std::move(message),
       also = std::move(also)]() mutable {
        if (also) also();
        done(OpenOutcome{code, std::move(message)});
      },
      CommitQueue::CommitBy::kCaller);  // placed by the Open* call, or its handler (PlaceHere)
}

void ChannelManager::OpenSealed(v1::Envelope& e, std::function<void(OpenOutcome)>& done,
                                std::optional<InboxMessage>* to_handle) {
  const std::string sender = e.sender();
  const Bytes channel_id = ToBytes(e.sealed().channel_id());
  const uint64_t seq = e.sealed().seq();
  std::optional<core::SecretBytes> secret;
  std::optional<core::EcPublicKey> sender_key;
  {
    Deferred deferred;
    std::unique_lock lock(mu_);
    PeerState* ps = FindPeerLocked(sender);
    Channel* ch = ps != nullptr ? ps->Find(channel_id) : nullptr;
    ReceiveCode refused = ReceiveCode::kOk;
    if (ch != nullptr) {  // check 5: the replay window, kept in tombstones too
      ReplayWindow::Verdict verdict = ch->window.Check(seq);
      if (verdict == ReplayWindow::Verdict::kDuplicate) refused = ReceiveCode::kDuplicate;
      if (verdict == ReplayWindow::Verdict::kTooOld) refused = ReceiveCode::kStale;
    }
    if (refused == ReceiveCode::kOk && (ch == nullptr || !ch->live())) {  // check 7
      refused = ReceiveCode::kUnknownChannel;
      MaybeSendChannelUnknownLocked(e, deferred);
    }
    if (refused != ReceiveCode::kOk) {
      FinishLocked(refused, done);
      lock.unlock();
      RunDeferred(deferred);
      return;
    }
    secret = ch->secret->Clone();
    sender_key = ch->peer_key;
  }

  // Checks 8 to 11, outside the lock: other peers proceed meanwhile.
  OpenedInner opened = OpenSealedCiphertext(SealedHeaderOf(e), AsBytes(e.sealed().ciphertext()),
                                            *secret, *sender_key);
  secret.reset();
  if (opened.code != ReceiveCode::kOk) {
    Finish(opened.code, done);
    return;
  }

  uint64_t now = clock_.NowMs();
  std::lock_guard lock(mu_);
  PeerState* ps = FindPeerLocked(sender);
  Channel* ch = ps != nullptr ? ps->Find(channel_id) : nullptr;
  // The router opens one sender's envelopes one at a time, so nothing marked this number
  // meanwhile; but maintenance may have erased the channel.
  if (ch == nullptr || !ch->live()) {
    FinishLocked(ReceiveCode::kUnknownChannel, done);
    return;
  }
  if (ch->window.Check(seq) != ReplayWindow::Verdict::kNew) {
    FinishLocked(ReceiveCode::kDuplicate, done);
    return;
  }
  ch->window.Mark(seq);
  ch->confirmed = true;
  counters_.messages_opened += 1;
  JournalBatch changes;
  changes.windows[{sender, channel_id}] =
      JournalBatch::Window{ch->window.highest(), ch->window.SerializeBitmap(), true};
  // PROTOCOL 5: an older channel stays open for receiving until a message from the peer has been
  // opened on a newer one (by per-pair order nothing older follows it).
  uint64_t order = ch->order;
  for (Channel& other : ps->channels) {
    if (other.live() && other.order < order) EraseSecretLocked(sender, other, now, changes);
  }
  InboxMessage message;
  message.inbox_id = next_inbox_id_++;
  message.sender = sender;
  message.message_id = ToBytes(e.message_id());
  message.sent_at_ms = e.sent_at_ms();
  message.received_ms = now;
  message.inner = std::move(opened.inner);
  // PROTOCOL 6: the number is marked and the inner message stored in one transaction.
  changes.put_inbox.push_back(InboxRow{message.inbox_id, sender, message.message_id, now,
                                       std::move(opened.inner_bytes)});
  if (to_handle != nullptr) {
    FinishLocked(ReceiveCode::kOk, done, std::move(changes));
    *to_handle = std::move(message);  // handled after the lock is released (OpenAndHandle)
    return;
  }
  FinishLocked(ReceiveCode::kOk, done, std::move(changes), std::move(message));
}

// PROTOCOL 6: sent back for a Sealed on a channel this node neither holds nor keeps a tombstone
// for, or an unmarked number on a tombstone; at most once per (peer, channel id) per minute. The
// check comes before any authentication (the channel is unknown), so a hub could name endless
// made-up channels: a budget across all peers bounds the signatures that costs.
void ChannelManager::MaybeSendChannelUnknownLocked(const v1::Envelope& sealed, Deferred& deferred) {
  uint64_t now = clock_.NowMs();
  std::pair<std::string, Bytes> key{sealed.sender(), ToBytes(sealed.sealed().channel_id())};
  auto it = channel_unknown_sent_.find(key);
  if (it != channel_unknown_sent_.end() &&
      now - it->second < options_.channel_unknown_interval_ms) {
    return;
  }
  if (channel_unknown_sent_.size() >= kChannelUnknownBudget) return;  // counted as refused only
  channel_unknown_sent_[key] = now;
  counters_.channel_unknown_sent += 1;
  deferred.push_back([this, peer = key.first, channel_id = key.second,
                      about = sealed.message_id(), about_seq = sealed.sealed().seq(), now] {
    v1::Envelope e = NewEnvelope(peer, now);
    v1::ChannelUnknown* cu = e.mutable_channel_unknown();
    cu->set_channel_id(ToString(channel_id));
    cu->set_about_message_id(about);
    cu->set_about_seq(about_seq);
    Bytes tbs = messages::ChannelUnknownTbs({identity_.federation, identity_.node_id, peer,
                                             AsBytes(e.message_id()), now, channel_id,
                                             AsBytes(about), about_seq});
    auto sig = identity_.key.SignSha256(tbs);
    if (!sig.ok()) return;
    cu->set_signature(ToString(*sig));
    sink_.Send(std::move(e), [](HubAnswer) {});
  });
}

void ChannelManager::OpenChannelUnknown(v1::Envelope& e, std::function<void(OpenOutcome)>& done) {
  const std::string sender = e.sender();
  const v1::ChannelUnknown& cu = e.channel_unknown();
  const std::pair<std::string, Bytes> log_key{sender, ToBytes(e.message_id())};
  const Bytes channel_id = ToBytes(cu.channel_id());
  std::optional<core::EcPublicKey> key;
  {
    std::lock_guard lock(mu_);
    if (setup_log_.count(log_key) != 0) {  // check 5
      FinishLocked(ReceiveCode::kDuplicate, done);
      return;
    }
    PeerState* ps = FindPeerLocked(sender);
    Channel* ch = ps != nullptr ? ps->Find(channel_id) : nullptr;
    if (ch != nullptr) key = ch->peer_key;
    if (!key) {  // no channel of ours: nothing we could have sent on it
      counters_.channel_unknown_ignored += 1;
      FinishLocked(ReceiveCode::kOk, done);
      return;
    }
  }
  // PROTOCOL 6: first look the message up among those sent, and ignore one that names none.
  // Sent records are written by the group commit: make sure the one named is in the store
  // (ChannelUnknown is rare; Open never runs on the commit thread).
  commits_->Flush();
  auto sent = journal_.FindSent(sender, AsBytes(cu.about_message_id()));
  bool names_ours = sent.ok() && sent->has_value() && (*sent)->channel_id == channel_id &&
                    (*sent)->seq == cu.about_seq();
  if (!names_ours) {
    std::lock_guard lock(mu_);
    counters_.channel_unknown_ignored += 1;
    FinishLocked(ReceiveCode::kOk, done);
    return;
  }
  // Then verify it with the identity key that authenticated that channel's setup.
  Bytes tbs = messages::ChannelUnknownTbs({e.federation(), sender, identity_.node_id,
                                           AsBytes(e.message_id()), e.sent_at_ms(), channel_id,
                                           AsBytes(cu.about_message_id()), cu.about_seq()});
  if (!key->VerifySha256(tbs, AsBytes(cu.signature()))) {
    Finish(ReceiveCode::kBadSignature, done);
    return;
  }
  RecoverLostChannel(sender, channel_id, cu.about_seq(), log_key, ReceiveCode::kOk,
                     &ChannelCounters::channel_unknown_acted, done);
}

void ChannelManager::RecoverLostChannel(const std::string& peer, const Bytes& channel_id,
                                        uint64_t from_seq,
                                        std::optional<std::pair<std::string, Bytes>> log_key,
                                        ReceiveCode code, uint64_t ChannelCounters::*counter,
                                        std::function<void(OpenOutcome)>& done) {
  Deferred deferred;  // the new setup goes out once the lost messages are queued before it
  uint64_t now = clock_.NowMs();
  {
    std::lock_guard lock(mu_);
    JournalBatch changes;
    if (log_key) {
      setup_log_[*log_key] = now;
      changes.put_setup_log.push_back(SetupLogRow{peer, log_key->second, now, {}});
    }
    counters_.*counter += 1;
    PeerState& ps = PeerLocked(peer);
    // The peer holds no such channel (or holds the id under another secret): nothing more can
    // arrive on it, so it goes even when it is no longer the current one.
    Channel* current = SendingChannelLocked(ps);
    const bool was_current = current != nullptr && current->id == channel_id;
    Channel* named = ps.Find(channel_id);
    if (named != nullptr && named->live()) EraseSecretLocked(peer, *named, now, changes);
    if (was_current) EnsureSetupLocked(peer, ps, deferred);
    commits_->Enqueue(std::move(changes));
  }
  // Messages sent on that channel from `from_seq` on may not have been opened by the peer (after
  // a ChannelUnknown, by per-pair order, those before the one it names were): resend those, once
  // each, under new message ids. Drain queues a sent copy with each number it takes, under the
  // lock, only on the current channel, and on this one no longer once erased above: after this
  // flush the store holds every one of them. They stay resendable until sealed again (marked then,
  // in Drain) and for as long as the protocol keeps sent messages (TTL + skew after their first
  // sending).
  commits_->Flush();
  auto lost = journal_.SentOnChannel(peer, channel_id, from_seq);
  {
    std::lock_guard lock(mu_);
    PeerState& ps = PeerLocked(peer);
    if (lost.ok()) {
      // Front of the queue, in their original order: they are older than anything queued.
      for (auto it = lost->rbegin(); it != lost->rend(); ++it) {
        uint64_t keep_until = it->sent_at_ms + options_.queue_ttl_ms + options_.max_skew_ms;
        ps.queue.push_front(QueuedSend{std::move(it->inner), nullptr, keep_until, it->message_id});
        counters_.messages_resent += 1;
      }
    }
    FinishLocked(code, done, {}, std::nullopt, [this, peer] { Drain(peer); });
  }
  RunDeferred(deferred);
}

}  // namespace nodelink::overlay

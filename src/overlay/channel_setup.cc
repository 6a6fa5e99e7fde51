// Channel setup, PROTOCOL.md section 5: one signed round trip, the matching of replies, the
// simultaneous-setup rule, at most two live channels per peer, and the responder's rate limit.
#include <algorithm>
#include <utility>

#include "core/random.h"
#include "core/sha256.h"
#include "core/status.h"
#include "messages/envelope_check.h"
#include "messages/names.h"
#include "overlay/channel_manager.h"
#include "overlay/channel_state.h"
#include "overlay/hub_answer.h"
#include "overlay/setup_crypto.h"

namespace nodelink::overlay {

using messages::ReceiveCode;

namespace {

std::vector<Bytes> ChainOf(const google::protobuf::RepeatedPtrField<std::string>& chain) {
  std::vector<Bytes> out;
  for (const std::string& cert : chain) out.push_back(ToBytes(cert));
  return out;
}

// PROTOCOL 9: at most 4 certificates of at most 8 KiB each; a longer chain is not a certificate
// we can accept (check 6).
bool ChainWithinLimits(const google::protobuf::RepeatedPtrField<std::string>& chain) {
  if (chain.empty() || static_cast<size_t>(chain.size()) > messages::kMaxCertChain) return false;
  return std::all_of(chain.begin(), chain.end(), [](const std::string& c) {
    return !c.empty() && c.size() <= messages::kMaxCertBytes;
  });
}

// What check 6 of PROTOCOL 7 establishes for a setup message (request or reply).
struct SetupProof {
  std::optional<core::EcPublicKey> ephemeral;
  std::optional<core::EcPublicKey> identity;
};

// Check 6 for a setup message: the ephemeral key is a valid P-256 point (MALFORMED); the chain
// names the sender under the pin policy (BAD_CERTIFICATE, KEY_CHANGED); the signature verifies
// over `tbs` with the chain's key (BAD_SIGNATURE). Changes no state.
template <typename Setup>
ReceiveCode CheckSetupProof(PeerAuthenticator& authenticator, const v1::Envelope& e,
                            const Setup& body, ByteView tbs, uint64_t now, SetupProof& proof) {
  auto ephemeral = core::EcPublicKey::FromPoint(AsBytes(body.ephemeral_key()));
  if (!ephemeral.ok()) return ReceiveCode::kMalformed;
  if (!ChainWithinLimits(body.cert_chain())) return ReceiveCode::kBadCertificate;
  ReceiveCode chain = authenticator.CheckChain(ChainOf(body.cert_chain()), e.federation(),
                                               e.sender(), now, proof.identity);
  if (chain != ReceiveCode::kOk) return chain;
  if (!proof.identity->VerifySha256(tbs, AsBytes(body.signature()))) {
    return ReceiveCode::kBadSignature;
  }
  proof.ephemeral = std::move(*ephemeral);
  return ReceiveCode::kOk;
}

}  // namespace

v1::Envelope ChannelManager::NewEnvelope(const std::string& recipient, uint64_t now) const {
  v1::Envelope e;
  e.set_version(1);
  e.set_federation(identity_.federation);
  e.set_sender(identity_.node_id);
  e.set_recipient(recipient);
  e.set_message_id(ToString(core::RandomBytes(16)));
  e.set_sent_at_ms(now);
  return e;
}

// Starts a setup with `peer` unless one is pending. The key generation and signature run outside
// the lock (in `deferred`); the placeholder makes concurrent senders share this one setup.
void ChannelManager::EnsureSetupLocked(const std::string& peer, PeerState& ps,
                                       Deferred& deferred) {
  uint64_t now = clock_.NowMs();
  if (ps.pending && now < ps.pending->expires_ms) return;
  PendingSetup pending;
  pending.setup_id = core::RandomBytes(16);
  pending.sent_at_ms = now;
  pending.expires_ms = now + options_.queue_ttl_ms + options_.max_skew_ms;
  ps.pending = std::move(pending);
  counters_.setups_started += 1;
  deferred.push_back([this, peer, setup_id = ps.pending->setup_id, now] {
    auto ephemeral = core::EcPrivateKey::Generate();
    v1::Envelope e = NewEnvelope(peer, now);
    v1::SetupRequest* r = e.mutable_setup_request();
    r->set_setup_id(ToString(setup_id));
    absl::StatusOr<Bytes> signature = absl::InternalError("ephemeral key generation failed");
    Bytes tbs;
    if (ephemeral.ok()) {
      r->set_ephemeral_key(ToString(ephemeral->PublicKey().Point()));
      for (const Bytes& cert : identity_.cert_chain_der) r->add_cert_chain(ToString(cert));
      tbs = RequestTbsOf(e);
      signature = identity_.key.SignSha256(tbs);
    }
    Deferred failed;
    {
      std::lock_guard lock(mu_);
      PeerState& state = PeerLocked(peer);
      if (!state.pending || state.pending->setup_id != setup_id) return;  // abandoned meanwhile
      if (!signature.ok()) {
        state.pending.reset();
        FailQueueLocked(state, signature.status(), failed);
      } else {
        state.pending->ephemeral =
            std::make_shared<const core::EcPrivateKey>(std::move(*ephemeral));
        core::Sha256Digest hash = core::Sha256(tbs);
        state.pending->request_tbs_hash.assign(hash.begin(), hash.end());
      }
    }
    if (!signature.ok()) {
      RunDeferred(failed);
      return;
    }
    r->set_signature(ToString(*signature));
    sink_.Send(std::move(e), [this, peer, setup_id](HubAnswer answer) {
      OnSetupRequestAnswered(peer, setup_id, std::move(answer));
    });
  });
}

// A SetupRequest the hub refused ends the pending setup: its waiters learn why at once.
void ChannelManager::OnSetupRequestAnswered(const std::string& peer, const Bytes& setup_id,
                                            HubAnswer answer) {
  if (answer.accepted) return;
  Deferred deferred;
  {
    std::lock_guard lock(mu_);
    PeerState& ps = PeerLocked(peer);
    if (!ps.pending || ps.pending->setup_id != setup_id) return;
    ps.pending.reset();
    counters_.setups_failed += 1;
    FailQueueLocked(ps, HubRejectionStatus(answer), deferred);
  }
  RunDeferred(deferred);
}

// Adds a new channel as the newest; the previous ones enter their grace period, and beyond two
// live channels the oldest is erased now (PROTOCOL 5, "Matching and state").
ChannelManager::Channel& ChannelManager::AddChannelLocked(const std::string& peer, PeerState& ps,
                                                          Channel channel,
                                                          JournalBatch& changes) {
  uint64_t now = channel.created_ms;
  uint64_t grace_end = now + options_.queue_ttl_ms + 2 * options_.max_skew_ms;
  for (Channel& c : ps.channels) {
    if (!c.live() || c.superseded_ms != 0) continue;
    c.superseded_ms = now;
    c.erase_at_ms = c.erase_at_ms == 0 ? grace_end : std::min(c.erase_at_ms, grace_end);
    changes.put_channels.push_back(RowOf(peer, c));
  }
  channel.order = next_channel_order_++;
  // The first block of send numbers is reserved in the row that creates the channel: a channel
  // that is not durable cannot outlive a crash, so no number of it can be reused.
  channel.send_seq_reserved = options_.seq_reserve_block;
  channel.send_seq_durable = options_.seq_reserve_block;
  ps.channels.push_back(std::move(channel));
  for (;;) {
    size_t live = std::count_if(ps.channels.begin(), ps.channels.end(),
                                [](const Channel& c) { return c.live(); });
    if (live <= 2) break;
    Channel* oldest = nullptr;
    for (Channel& c : ps.channels) {
      if (c.live() && (oldest == nullptr || c.order < oldest->order)) oldest = &c;
    }
    EraseSecretLocked(peer, *oldest, now, changes);
  }
  Channel& added = ps.channels.back();
  changes.put_channels.push_back(RowOf(peer, added));
  return added;
}

void ChannelManager::OpenSetupRequest(v1::Envelope& e, std::function<void(OpenOutcome)>& done) {
  const std::string sender = e.sender();
  const v1::SetupRequest& r = e.setup_request();
  const std::pair<std::string, Bytes> log_key{sender, ToBytes(e.message_id())};
  const Bytes setup_id = ToBytes(r.setup_id());
  const uint64_t now = clock_.NowMs();
  const bool i_am_smaller = messages::IdLess(identity_.node_id, sender);

  // Check 5 and the rules that need no cryptography. No state is created for the sender yet: a
  // hub can name any sender, and nothing is kept for one until its setup verified.
  {
    std::unique_lock lock(mu_);
    if (setup_log_.count(log_key) != 0) {
      // A duplicate of a request already answered gets the stored reply again.
      std::function<void()> resend;
      auto stored = stored_replies_.find(log_key);
      if (stored != stored_replies_.end()) {
        v1::Envelope reply;
        if (reply.ParseFromString(ToString(stored->second))) {
          resend = [this, reply = std::move(reply)]() mutable {
            sink_.Send(std::move(reply), [](HubAnswer) {});
          };
        }
      }
      FinishLocked(ReceiveCode::kDuplicate, done, {}, std::nullopt, std::move(resend));
      return;
    }
    if (PeerState* ps = FindPeerLocked(sender)) {
      if (ps->Find(setup_id) != nullptr) {
        // A channel (or tombstone) with this id exists.
        FinishLocked(ReceiveCode::kDuplicate, done);
        return;
      }
      // PROTOCOL 5: beyond two live channels, one answered setup per peer per 10 seconds.
      if (ps->answered_any && now - ps->last_answer_ms < options_.setup_answer_interval_ms &&
          std::count_if(ps->channels.begin(), ps->channels.end(),
                        [](const Channel& c) { return c.live(); }) >= 2) {
        FinishLocked(ReceiveCode::kRateLimited, done);
        return;
      }
    }
  }

  // Check 6, outside the lock.
  Bytes req_tbs = RequestTbsOf(e);
  SetupProof proof;
  ReceiveCode checked = CheckSetupProof(authenticator_, e, r, req_tbs, now, proof);
  if (checked != ReceiveCode::kOk) {
    Finish(checked, done);
    return;
  }
  const core::EcPublicKey& e_a = *proof.ephemeral;
  const core::EcPublicKey& identity_key = *proof.identity;

  // Simultaneous setups (PROTOCOL 5): the smaller side ignores the loser's request. It is
  // recorded once verified, so that a replay of it later cannot create an orphan channel.
  {
    std::lock_guard lock(mu_);
    PeerState* ps = FindPeerLocked(sender);
    if (i_am_smaller && ps != nullptr && ps->pending && now < ps->pending->expires_ms) {
      counters_.simultaneous_ignored += 1;
      setup_log_[log_key] = now;
      JournalBatch changes;
      changes.put_setup_log.push_back(SetupLogRow{sender, log_key.second, now, {}});
      FinishLocked(ReceiveCode::kOk, done, std::move(changes));
      return;
    }
  }

  // The reply: a fresh ephemeral key, signed over rep_tbs; the secret from both.
  auto b = core::EcPrivateKey::Generate();
  v1::Envelope reply = NewEnvelope(sender, now);
  v1::SetupReply* rep = reply.mutable_setup_reply();
  rep->set_setup_id(r.setup_id());
  absl::StatusOr<core::SecretBytes> secret = absl::InternalError("key generation failed");
  absl::StatusOr<Bytes> signature = absl::InternalError("key generation failed");
  if (b.ok()) {
    rep->set_ephemeral_key(ToString(b->PublicKey().Point()));
    for (const Bytes& cert : identity_.cert_chain_der) rep->add_cert_chain(ToString(cert));
    Bytes rep_tbs = ReplyTbsOf(reply, core::Sha256(req_tbs));
    signature = identity_.key.SignSha256(rep_tbs);
    secret = DeriveChannelSecret(*b, e_a, rep_tbs);
  }
  b = absl::InternalError("erased");  // the ephemeral private key is not needed any more
  if (!signature.ok() || !secret.ok()) {
    // Our own failure, not the peer's: nothing to record; the peer's setup times out and retries.
    Finish(ReceiveCode::kOk, done);
    return;
  }
  rep->set_signature(ToString(*signature));
  authenticator_.RecordAccepted(sender, identity_key);  // TOFU: the key verified

  std::lock_guard lock(mu_);
  if (setup_log_.count(log_key) != 0) {
    FinishLocked(ReceiveCode::kDuplicate, done);
    return;
  }
  PeerState& ps = PeerLocked(sender);
  if (ps.Find(setup_id) != nullptr) {
    FinishLocked(ReceiveCode::kDuplicate, done);
    return;
  }
  if (ps.pending && now < ps.pending->expires_ms) {
    if (i_am_smaller) {  // our own setup started meanwhile
      counters_.simultaneous_ignored += 1;
      FinishLocked(ReceiveCode::kOk, done);
      return;
    }
    // The larger side answers the winner's request and abandons its own; its queued sends go
    // out on the channel being answered.
    ps.pending.reset();
    counters_.simultaneous_abandoned += 1;
  }
  Channel channel;
  channel.id = setup_id;
  channel.secret = std::move(*secret);
  channel.initiator = false;
  channel.peer_key = identity_key;
  channel.peer_key_spki = identity_key.SpkiDer();
  channel.created_ms = now;
  channel.window = ReplayWindow(options_.window_size);
  // Nothing may be sealed on it before the reply has left: the initiator opens it only once it
  // has the reply, and by per-pair order the reply must come first.
  channel.sendable = false;
  JournalBatch changes;
  AddChannelLocked(sender, ps, std::move(channel), changes);
  std::string reply_bytes = reply.SerializeAsString();
  setup_log_[log_key] = now;
  stored_replies_[log_key] = ToBytes(reply_bytes);
  changes.put_setup_log.push_back(SetupLogRow{sender, log_key.second, now, ToBytes(reply_bytes)});
  ps.answered_any = true;
  ps.last_answer_ms = now;
  counters_.setups_answered += 1;
  // Once the channel is durable: the reply leaves first, then the channel becomes usable and
  // whatever waited for it goes out.
  FinishLocked(ReceiveCode::kOk, done, std::move(changes), std::nullopt,
               [this, sender, setup_id, reply = std::move(reply)]() mutable {
                 sink_.Send(std::move(reply), [](HubAnswer) {});
                 {
                   std::lock_guard relock(mu_);
                   if (Channel* c = PeerLocked(sender).Find(setup_id)) c->sendable = true;
                 }
                 Drain(sender);
               });
}

void ChannelManager::OpenSetupReply(v1::Envelope& e, std::function<void(OpenOutcome)>& done) {
  const std::string sender = e.sender();
  const v1::SetupReply& r = e.setup_reply();
  const Bytes setup_id = ToBytes(r.setup_id());
  std::shared_ptr<const core::EcPrivateKey> ephemeral;
  Bytes request_tbs_hash;
  Bytes completed_request, completed_reply;  // digests of the completed channel a reply names
  {
    std::lock_guard lock(mu_);
    PeerState* ps = FindPeerLocked(sender);
    // Check 5: a reply matches a pending request only from that request's recipient and with its
    // setup id; rep_tbs is built from the pending request's own values.
    if (ps == nullptr || !ps->pending || ps->pending->setup_id != setup_id ||
        !ps->pending->ephemeral || clock_.NowMs() >= ps->pending->expires_ms) {
      const Channel* c = ps != nullptr ? ps->Find(setup_id) : nullptr;
      if (c == nullptr || !c->live() || !c->initiator || c->request_tbs_hash.empty()) {
        FinishLocked(ReceiveCode::kUnmatchedReply, done);
        return;
      }
      completed_request = c->request_tbs_hash;
      completed_reply = c->reply_tbs_hash;
    } else {
      ephemeral = ps->pending->ephemeral;
      request_tbs_hash = ps->pending->request_tbs_hash;
    }
  }
  if (!completed_request.empty()) {
    OpenReplyAnsweredAgain(e, completed_request, completed_reply, done);
    return;
  }

  uint64_t now = clock_.NowMs();
  Bytes rep_tbs = ReplyTbsOf(e, request_tbs_hash);
  SetupProof proof;
  ReceiveCode checked = CheckSetupProof(authenticator_, e, r, rep_tbs, now, proof);
  if (checked != ReceiveCode::kOk) {
    Finish(checked, done);
    return;
  }
  const core::EcPublicKey& identity_key = *proof.identity;
  auto secret = DeriveChannelSecret(*ephemeral, *proof.ephemeral, rep_tbs);
  ephemeral.reset();
  if (!secret.ok()) {
    Finish(ReceiveCode::kMalformed, done);
    return;
  }
  authenticator_.RecordAccepted(sender, identity_key);  // TOFU: the key verified

  std::lock_guard lock(mu_);
  PeerState& ps = PeerLocked(sender);
  if (!ps.pending || ps.pending->setup_id != setup_id) {  // abandoned meanwhile
    FinishLocked(ReceiveCode::kUnmatchedReply, done);
    return;
  }
  ps.pending.reset();  // drops the last reference to the ephemeral key
  Channel channel;
  channel.id = setup_id;
  channel.secret = std::move(*secret);
  channel.initiator = true;
  channel.confirmed = true;  // initiated and completed: the peer holds it
  channel.peer_key = identity_key;
  channel.peer_key_spki = identity_key.SpkiDer();
  channel.request_tbs_hash = std::move(request_tbs_hash);
  channel.reply_tbs_hash = core::Sha256Bytes(rep_tbs);
  channel.created_ms = now;
  channel.window = ReplayWindow(options_.window_size);
  JournalBatch changes;
  AddChannelLocked(sender, ps, std::move(channel), changes);
  counters_.setups_completed += 1;
  FinishLocked(ReceiveCode::kOk, done, std::move(changes), std::nullopt,
               [this, sender] { Drain(sender); });
}

// A SetupReply for a channel this node initiated and completed, from the same peer under a new
// message id. The peer signs one only after losing its state: the hub handed it our request again
// (its receipt was lost when the peer stopped) and it no longer remembered answering, since it
// refuses a setup id it holds and answers a repeat it remembers with the stored reply (PROTOCOL 5).
// It now holds the channel id with another secret, so what we seal on it fails to decrypt there
// and no ChannelUnknown comes back: verified like a reply to the original request, it is treated
// as one, and everything kept that was sent on the channel goes again on a new one (at least
// once, as after any loss of state). PROTOCOL.md says nothing of this case: its rules only make
// the second answer impossible without a loss of state, which is what makes acting on it safe.
void ChannelManager::OpenReplyAnsweredAgain(v1::Envelope& e, const Bytes& request_tbs_hash,
                                            const Bytes& first_reply_tbs_hash,
                                            std::function<void(OpenOutcome)>& done) {
  const std::string sender = e.sender();
  const v1::SetupReply& r = e.setup_reply();
  const Bytes setup_id = ToBytes(r.setup_id());
  const Bytes rep_tbs = ReplyTbsOf(e, request_tbs_hash);
  // The first reply replayed, at any time while the channel lives (a record in the setup log
  // would not do: its retention follows the TTL the hub announces, which a hub can shorten and
  // lengthen again).
  if (core::Sha256Bytes(rep_tbs) == first_reply_tbs_hash) {
    Finish(ReceiveCode::kDuplicate, done);
    return;
  }
  // Otherwise it is counted UNMATCHED_REPLY, whatever the outcome: by section 7 it fails check 5
  // (it matches no pending request), before any check of its certificate or signature.
  SetupProof proof;
  if (CheckSetupProof(authenticator_, e, r, rep_tbs, clock_.NowMs(), proof) != ReceiveCode::kOk) {
    Finish(ReceiveCode::kUnmatchedReply, done);
    return;
  }
  {
    std::lock_guard lock(mu_);
    PeerState* ps = FindPeerLocked(sender);
    const Channel* c = ps != nullptr ? ps->Find(setup_id) : nullptr;
    if (c == nullptr || !c->live() || c->peer_key_spki != proof.identity->SpkiDer()) {
      FinishLocked(ReceiveCode::kUnmatchedReply, done);  // gone meanwhile, or another key
      return;
    }
  }
  RecoverLostChannel(sender, setup_id, 1, std::nullopt, ReceiveCode::kUnmatchedReply,
                     &ChannelCounters::setups_answered_again, done);
}

}  // namespace nodelink::overlay

// The in-memory records of the channel manager (private to src/overlay).
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/ec.h"
#include "core/secret_bytes.h"
#include "overlay/channel_manager.h"
#include "overlay/replay_window.h"

namespace nodelink::overlay {

struct ChannelManager::Channel {
  Bytes id;
  std::optional<core::SecretBytes> secret;  // nullopt: tombstone
  bool initiator = false;
  std::optional<core::EcPublicKey> peer_key;  // authenticated this channel's setup
  Bytes peer_key_spki;
  // For a channel this node initiated: SHA-256 of its SetupRequest's req_tbs, to verify a second
  // SetupReply to it, which only a peer that lost its state sends (OpenReplyAnsweredAgain), and
  // of the completing reply's rep_tbs, to tell that reply replayed from a second one.
  Bytes request_tbs_hash;
  Bytes reply_tbs_hash;
  uint64_t created_ms = 0;
  uint64_t order = 0;  // creation order: "newest" means the largest
  bool confirmed = false;  // the peer is known to hold it
  uint64_t superseded_ms = 0;
  uint64_t erase_at_ms = 0;
  uint64_t drop_at_ms = 0;
  uint64_t next_send_seq = 1;
  uint64_t send_seq_reserved = 0;   // the reservation asked for (what the row says)
  uint64_t send_seq_durable = 0;    // the reservation known to be committed
  bool reservation_in_flight = false;
  ReplayWindow window;
  bool renew_requested = false;
  // False for a channel this node answered until its SetupReply has been handed to the hub:
  // nothing sealed on it may overtake the reply (PROTOCOL 4 per-pair order).
  bool sendable = true;

  bool live() const { return secret.has_value(); }
};

struct ChannelManager::PendingSetup {
  Bytes setup_id;
  std::shared_ptr<const core::EcPrivateKey> ephemeral;  // never written to disk
  Bytes request_tbs_hash;                               // SHA-256(req_tbs)
  uint64_t sent_at_ms = 0;
  uint64_t expires_ms = 0;  // TTL + skew after sent_at: the request is no longer pending
};

struct ChannelManager::QueuedSend {
  SharedBytes inner;
  std::function<void(absl::Status)> done;  // null for resends after ChannelUnknown
  uint64_t deadline_ms = 0;  // fails if no channel is up by then
  Bytes resend_of;           // a resend: the message id it repeats (marked resent when sealed)
};

struct ChannelManager::PeerState {
  std::vector<Channel> channels;  // live ones and tombstones
  std::optional<PendingSetup> pending;
  std::deque<QueuedSend> queue;   // sends waiting, in Send order
  bool draining = false;          // one thread seals this peer's queue at a time (keeps order)
  uint64_t last_answer_ms = 0;    // last SetupRequest answered (rate limit)
  bool answered_any = false;
  bool renew_wanted = false;

  // Nothing worth keeping: no channel, no setup, no queued send (pruned by Maintain).
  bool Idle() const { return channels.empty() && !pending && queue.empty() && !draining; }

  Channel* Find(ByteView channel_id) {
    for (Channel& c : channels) {
      if (c.id.size() == channel_id.size() &&
          std::equal(c.id.begin(), c.id.end(), channel_id.begin())) {
        return &c;
      }
    }
    return nullptr;
  }
};

}  // namespace nodelink::overlay

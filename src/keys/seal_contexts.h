// The seal contexts (AD) of every sealed column of the key store, in one place. Writers of a
// table MUST seal with these, because passphrase change recomputes them in SQL
// (store_schema.cc: SealedColumns) to re-seal every value.
#pragma once

#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/encoding.h"

namespace nodelink::keys {

// The header's check value that proves the store key is right.
inline constexpr std::string_view kCheckValueContext = "store-check";
// identity.key_sealed: the identity private scalar.
inline constexpr std::string_view kIdentityKeyContext = "identity-key";

// channels.secret: "channel:" || peer || ":" || lowercase hex(channel_id).
inline std::string ChannelSecretContext(std::string_view peer, ByteView channel_id) {
  return "channel:" + std::string(peer) + ":" + core::ToHex(channel_id);
}
// inbox.inner: "inbox:" || sender || ":" || hex(message_id).
inline std::string InboxContext(std::string_view sender, ByteView message_id) {
  return "inbox:" + std::string(sender) + ":" + core::ToHex(message_id);
}
// sent.inner: "sent:" || recipient || ":" || hex(message_id).
inline std::string SentContext(std::string_view recipient, ByteView message_id) {
  return "sent:" + std::string(recipient) + ":" + core::ToHex(message_id);
}
// answered.reply: "answered:" || peer || ":" || request_id.
inline std::string AnsweredContext(std::string_view peer, std::string_view request_id) {
  return "answered:" + std::string(peer) + ":" + std::string(request_id);
}
// contexts.state_sealed: "context:" || researcher || ":" || context_id.
inline std::string SecaggStateContext(std::string_view researcher, std::string_view context_id) {
  return "context:" + std::string(researcher) + ":" + std::string(context_id);
}
// pairwise_keys.key_sealed: "pairwise:" || researcher || ":" || context_id || ":" || peer.
inline std::string PairwiseKeyContext(std::string_view researcher, std::string_view context_id,
                                      std::string_view peer) {
  return "pairwise:" + std::string(researcher) + ":" + std::string(context_id) + ":" +
         std::string(peer);
}

}  // namespace nodelink::keys

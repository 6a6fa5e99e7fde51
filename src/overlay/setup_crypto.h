// The cryptography of channel setup, PROTOCOL.md section 5: the signed byte strings taken from
// envelopes, and the derivation of the channel secret. Stateless.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/ec.h"
#include "core/secret_bytes.h"

namespace nodelink::v1 {
class Envelope;
}

namespace nodelink::overlay {

inline constexpr size_t kChannelSecretBytes = 32;

// req_tbs of a SetupRequest envelope (initiator = sender, responder = recipient).
Bytes RequestTbsOf(const v1::Envelope& request);

// rep_tbs of a SetupReply envelope, given SHA-256(req_tbs) of the request it answers. The
// responder is the reply's sender, the initiator its recipient; the reply's own message id and
// time. (A receiver builds req_tbs from its pending request's values, never from the reply.)
Bytes ReplyTbsOf(const v1::Envelope& reply, ByteView request_tbs_hash);

// Z = ECDH(my ephemeral, peer ephemeral); channel_secret = HKDF-SHA256(IKM = Z, salt =
// SHA-256(rep_tbs), info = "nodelink/1 channel", L = 32). Z is wiped before returning.
[[nodiscard]] absl::StatusOr<core::SecretBytes> DeriveChannelSecret(
    const core::EcPrivateKey& my_ephemeral, const core::EcPublicKey& peer_ephemeral,
    ByteView reply_tbs);

}  // namespace nodelink::overlay

#include "overlay/setup_crypto.h"

#include "core/hkdf.h"
#include "core/sha256.h"
#include "core/status.h"
#include "messages/canonical.h"
#include "nodelink/v1/hub.pb.h"

namespace nodelink::overlay {

Bytes RequestTbsOf(const v1::Envelope& e) {
  const v1::SetupRequest& r = e.setup_request();
  return messages::SetupRequestTbs({e.federation(), e.sender(), e.recipient(),
                                    AsBytes(e.message_id()), e.sent_at_ms(),
                                    AsBytes(r.setup_id()), AsBytes(r.ephemeral_key())});
}

Bytes ReplyTbsOf(const v1::Envelope& e, ByteView request_tbs_hash) {
  const v1::SetupReply& r = e.setup_reply();
  return messages::SetupReplyTbs({e.federation(), e.sender(), e.recipient(),
                                  AsBytes(e.message_id()), e.sent_at_ms(), AsBytes(r.setup_id()),
                                  request_tbs_hash, AsBytes(r.ephemeral_key())});
}

absl::StatusOr<core::SecretBytes> DeriveChannelSecret(const core::EcPrivateKey& my_ephemeral,
                                                      const core::EcPublicKey& peer_ephemeral,
                                                      ByteView reply_tbs) {
  NL_ASSIGN_OR_RETURN(core::SecretBytes z, core::EcdhP256(my_ephemeral, peer_ephemeral));
  // z is a SecretBytes: wiped when it goes out of scope, on every path.
  return core::HkdfSha256(z, core::Sha256(reply_tbs), messages::ChannelSecretInfo(),
                          kChannelSecretBytes);
}

}  // namespace nodelink::overlay

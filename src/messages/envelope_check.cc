#include "messages/envelope_check.h"

#include <string>

#include "messages/names.h"
#include "nodelink/v1/hub.pb.h"

namespace nodelink::messages {

namespace {

EnvelopeVerdict Malformed(std::string detail) {
  return EnvelopeVerdict{ReceiveCode::kMalformed, false, std::move(detail)};
}

template <typename Setup>
EnvelopeVerdict CheckSetup(const Setup& s) {
  if (s.setup_id().size() != kIdBytes) return Malformed("setup_id must be 16 bytes");
  // Only the size here: whether the point is on the curve is check 6 (also MALFORMED).
  if (s.ephemeral_key().size() != kEphemeralKeyBytes) {
    return Malformed("ephemeral_key must be 65 bytes");
  }
  return {};
}

}  // namespace

EnvelopeVerdict CheckWellFormed(const v1::Envelope& e) {
  if (e.version() != kProtocolVersion) {
    EnvelopeVerdict v = Malformed("unsupported envelope version " + std::to_string(e.version()));
    v.unsupported_version = true;
    return v;
  }
  if (!IsValidName(e.federation())) return Malformed("federation is not a valid name");
  if (!IsValidName(e.sender())) return Malformed("sender is not a valid node id");
  if (!IsValidName(e.recipient())) return Malformed("recipient is not a valid node id");
  if (e.message_id().size() != kIdBytes) return Malformed("message_id must be 16 bytes");
  if (e.sent_at_ms() == 0) return Malformed("sent_at_ms must be > 0");
  switch (e.body_case()) {
    case v1::Envelope::kSetupRequest:
      return CheckSetup(e.setup_request());
    case v1::Envelope::kSetupReply:
      return CheckSetup(e.setup_reply());
    case v1::Envelope::kSealed: {
      const v1::Sealed& s = e.sealed();
      if (s.channel_id().size() != kIdBytes) return Malformed("channel_id must be 16 bytes");
      if (s.salt().size() != kSaltBytes) return Malformed("salt must be 32 bytes");
      if (s.nonce().size() != kNonceBytes) return Malformed("nonce must be 12 bytes");
      if (s.seq() == 0) return Malformed("seq must be > 0");
      return {};
    }
    case v1::Envelope::kChannelUnknown: {
      const v1::ChannelUnknown& c = e.channel_unknown();
      if (c.channel_id().size() != kIdBytes) return Malformed("channel_id must be 16 bytes");
      if (c.about_message_id().size() != kIdBytes) {
        return Malformed("about_message_id must be 16 bytes");
      }
      return {};
    }
    case v1::Envelope::BODY_NOT_SET:
      break;
  }
  return Malformed("envelope has no body");
}

}  // namespace nodelink::messages

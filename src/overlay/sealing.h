// Sealing and opening one message on a channel: PROTOCOL.md section 6, and checks 8 to 11 of
// section 7. Stateless: the caller supplies the channel secret and the sender's identity key.
#pragma once

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/ec.h"
#include "core/secret_bytes.h"
#include "messages/codes.h"
#include "nodelink/v1/inner.pb.h"

namespace nodelink::v1 {
class Envelope;
}

namespace nodelink::overlay {

// The header fields that the AEAD authenticates (they make up `aad`).
struct SealedHeader {
  std::string_view federation;
  std::string_view sender;
  std::string_view recipient;
  ByteView message_id;
  uint64_t sent_at_ms = 0;
  ByteView channel_id;
  uint64_t seq = 0;
  ByteView salt;   // 32 random bytes, fresh per message
  ByteView nonce;  // 12 random bytes, fresh per message
};

// Views into a sealed envelope's fields; valid while the envelope lives.
SealedHeader SealedHeaderOf(const v1::Envelope& envelope);

// ciphertext = ChaCha20-Poly1305(msg_key, nonce, aad, lp(inner) || lp(sig)), where sig is the
// sender's ECDSA signature over "nodelink/1 inner" || lp(SHA-256(aad)) || lp(inner). Thread-safe.
[[nodiscard]] absl::StatusOr<Bytes> SealInner(const SealedHeader& header,
                                              const core::SecretBytes& channel_secret,
                                              const core::EcPrivateKey& sender_identity,
                                              ByteView inner);

// The encryption step alone, for a caller that already holds plain = lp(inner) || lp(sig) (the
// conformance tool re-encrypts to compare byte for byte).
[[nodiscard]] absl::StatusOr<Bytes> EncryptSealedPlaintext(const SealedHeader& header,
                                                           const core::SecretBytes& channel_secret,
                                                           ByteView plain);

struct OpenedInner {
  messages::ReceiveCode code = messages::ReceiveCode::kOk;
  Bytes inner_bytes;  // exactly as sent (the signature covers these bytes, never a re-encoding)
  Bytes signature;
  v1::Inner inner;    // parsed; set when code is kOk
};

// Checks 8 (AEAD), 9 (plain = lp(inner) || lp(sig), nothing left over), 10 (signature by the
// sender's identity key) and 11 (inner parses, body type known), stopping at the first failure.
// Never allocates more than the ciphertext's size. Thread-safe.
OpenedInner OpenSealedCiphertext(const SealedHeader& header, ByteView ciphertext,
                                 const core::SecretBytes& channel_secret,
                                 const core::EcPublicKey& sender_identity);

// Parses serialized Inner bytes (check 11): false on a parse failure (invalid UTF-8 included) or
// an unknown body type.
[[nodiscard]] bool ParseKnownInner(ByteView bytes, v1::Inner& out);

}  // namespace nodelink::overlay

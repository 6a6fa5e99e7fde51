// Check 1 of PROTOCOL.md section 7 (well-formedness), shared by the hub (section 4 acceptance
// rules) and receivers.
#pragma once

#include <cstdint>
#include <string>

#include "messages/codes.h"

namespace nodelink::v1 {
class Envelope;
}

namespace nodelink::messages {

inline constexpr uint32_t kProtocolVersion = 1;
inline constexpr uint64_t kMaxClockSkewMs = 10 * 60 * 1000;  // PROTOCOL 9: max skew, default
inline constexpr size_t kSaltBytes = 32;
inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kEphemeralKeyBytes = 65;
inline constexpr size_t kMaxCertChain = 4;
inline constexpr size_t kMaxCertBytes = 8 * 1024;

struct EnvelopeVerdict {
  ReceiveCode code = ReceiveCode::kOk;
  bool unsupported_version = false;  // the hub answers UNSUPPORTED_VERSION for these
  std::string detail;                // for people: which field is wrong (never a secret)
  bool ok() const { return code == ReceiveCode::kOk; }
};

// Version is 1; message id, setup id, channel id, salt, nonce and ephemeral key have their sizes;
// federation, sender and recipient match the name pattern; sent_at_ms > 0; a body is present;
// sealed seq > 0. Nothing else: a short ciphertext fails decryption (check 8), a bad signature
// verification (checks 6 and 10) and an oversized chain the certificate check (check 6), with
// the codes the conformance vectors expect.
EnvelopeVerdict CheckWellFormed(const v1::Envelope& envelope);

}  // namespace nodelink::messages

// Fuzzes what a receiver does with bytes from the hub: parse a frame, check 1 of PROTOCOL.md
// section 7, then the open path (checks 8 to 11). The first input byte picks the mode:
//   even: the rest is a serialized HubFrame / Envelope, run through parsing and check 1, and a
//         sealed one through OpenSealedCiphertext with a fixed key;
//   odd:  the rest is `plain`, which the target encrypts itself under a fixed channel, so the
//         fuzzer reaches checks 9 to 11 (lp parsing, signature, inner parsing) that it could not
//         reach through the AEAD.
#include <cstddef>
#include <cstdint>

#include "core/ec.h"
#include "core/secret_bytes.h"
#include "messages/envelope_check.h"
#include "messages/protobuf_log.h"
#include "nodelink/v1/hub.pb.h"
#include "overlay/sealing.h"

namespace {

struct Fixed {
  nodelink::core::SecretBytes secret = nodelink::core::SecretBytes::CopyOf(nodelink::Bytes(32, 7));
  nodelink::core::EcPrivateKey key =
      nodelink::core::EcPrivateKey::FromScalar(nodelink::Bytes(32, 3)).value();
  nodelink::Bytes message_id = nodelink::Bytes(16, 1);
  nodelink::Bytes channel_id = nodelink::Bytes(16, 2);
  nodelink::Bytes salt = nodelink::Bytes(32, 4);
  nodelink::Bytes nonce = nodelink::Bytes(12, 5);
};

const Fixed& Get() {
  static const Fixed* fixed = [] {
    nodelink::messages::SilenceProtobufLogs();
    return new Fixed();
  }();
  return *fixed;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nodelink;
  if (size == 0) return 0;
  const Fixed& f = Get();
  ByteView rest(data + 1, size - 1);
  if ((data[0] & 1) == 0) {
    v1::HubFrame frame;
    if (frame.ParseFromArray(rest.data(), static_cast<int>(rest.size())) && frame.has_envelope()) {
      (void)messages::CheckWellFormed(frame.envelope());
    }
    v1::Envelope envelope;
    if (!envelope.ParseFromArray(rest.data(), static_cast<int>(rest.size()))) return 0;
    if (!messages::CheckWellFormed(envelope).ok() || !envelope.has_sealed()) return 0;
    (void)overlay::OpenSealedCiphertext(overlay::SealedHeaderOf(envelope),
                                        AsBytes(envelope.sealed().ciphertext()), f.secret,
                                        f.key.PublicKey());
    return 0;
  }
  overlay::SealedHeader header{"fed", "node-a", "node-b", f.message_id, 1700000000000,
                               f.channel_id, 1, f.salt, f.nonce};
  auto ciphertext = overlay::EncryptSealedPlaintext(header, f.secret, rest);
  if (!ciphertext.ok()) return 0;
  overlay::OpenedInner opened =
      overlay::OpenSealedCiphertext(header, *ciphertext, f.secret, f.key.PublicKey());
  if (opened.code == messages::ReceiveCode::kDecryptFailed) __builtin_trap();  // our own seal
  return 0;
}

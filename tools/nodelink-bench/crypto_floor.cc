#include "crypto_floor.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <iostream>

#include "core/random.h"
#include "overlay/sealing.h"

namespace nodelink::bench {

CryptoFloor MeasureCryptoFloor(size_t payload_bytes, int min_iterations) {
  auto sender = core::EcPrivateKey::Generate();
  if (!sender.ok()) {
    std::cerr << "nodelink-bench: key generation failed: " << sender.status().message() << "\n";
    std::abort();
  }
  const core::EcPublicKey sender_public = sender->PublicKey();
  const core::SecretBytes secret = core::RandomSecret(32);
  const Bytes message_id = core::RandomBytes(16), channel_id = core::RandomBytes(16);
  const Bytes salt = core::RandomBytes(32), nonce = core::RandomBytes(12);
  overlay::SealedHeader header{"bench", "a", "b", message_id, 1, channel_id, 1, salt, nonce};
  v1::Inner inner;
  inner.mutable_app()->set_type("bench");
  inner.mutable_app()->set_payload(std::string(payload_bytes, 'x'));
  const std::string inner_bytes = inner.SerializeAsString();

  using Clock = std::chrono::steady_clock;
  // Enough iterations for ~0.3 s of sealing, at least min_iterations.
  int iterations = 0;
  Bytes ciphertext;
  const auto seal_start = Clock::now();
  while (iterations < min_iterations || Clock::now() - seal_start < std::chrono::milliseconds(300)) {
    auto sealed = overlay::SealInner(header, secret, *sender, AsBytes(inner_bytes));
    if (!sealed.ok()) std::abort();  // fixed, valid inputs: a failure is a broken build
    ciphertext = *std::move(sealed);
    ++iterations;
  }
  const double seal_us =
      std::chrono::duration<double, std::micro>(Clock::now() - seal_start).count() / iterations;
  const auto open_start = Clock::now();
  for (int i = 0; i < iterations; ++i) {
    overlay::OpenedInner opened =
        overlay::OpenSealedCiphertext(header, ciphertext, secret, sender_public);
    if (opened.code != messages::ReceiveCode::kOk) std::abort();
  }
  const double open_us =
      std::chrono::duration<double, std::micro>(Clock::now() - open_start).count() / iterations;
  return {seal_us, open_us, 1e6 / std::max(seal_us, open_us)};
}

}  // namespace nodelink::bench

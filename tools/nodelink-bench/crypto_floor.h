// The crypto floor of one sealed message: PROTOCOL.md section 6's whole Seal (HKDF, ECDSA sign,
// ChaCha20-Poly1305) and Open (HKDF, AEAD, ECDSA verify, parse), timed in this process with the
// same code the overlay runs. On two cores a sender and a receiver run side by side, so the
// floor's rate is one message per max(seal, open).
#pragma once

#include <cstddef>

namespace nodelink::bench {

struct CryptoFloor {
  double seal_us = 0;
  double open_us = 0;
  double messages_per_second = 0;  // 1 / max(seal, open)
};

// Times at least `min_iterations` seals and opens of a `payload_bytes` application message.
CryptoFloor MeasureCryptoFloor(size_t payload_bytes, int min_iterations);

}  // namespace nodelink::bench

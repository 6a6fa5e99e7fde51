#include "core/random.h"

#include <sodium.h>

#include "core/crypto_init.h"

namespace nodelink::core {

void RandomFill(std::span<uint8_t> out) {
  EnsureCryptoInitialized();
  if (!out.empty()) randombytes_buf(out.data(), out.size());
}

Bytes RandomBytes(size_t n) {
  Bytes out(n);
  RandomFill(out);
  return out;
}

SecretBytes RandomSecret(size_t n) {
  SecretBytes out(n);
  RandomFill(out.MutableSecret());
  return out;
}

uint32_t RandomUniform(uint32_t upper_bound) {
  EnsureCryptoInitialized();
  return randombytes_uniform(upper_bound);
}

}  // namespace nodelink::core

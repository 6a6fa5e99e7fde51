// The OS CSPRNG (libsodium randombytes_buf), PROTOCOL.md section 2.
#pragma once

#include <cstddef>
#include <span>

#include "core/bytes.h"
#include "core/secret_bytes.h"

namespace nodelink::core {

void RandomFill(std::span<uint8_t> out);
Bytes RandomBytes(size_t n);
SecretBytes RandomSecret(size_t n);
// Uniform in [0, upper_bound), for jitter and sampling (not for keys).
uint32_t RandomUniform(uint32_t upper_bound);

}  // namespace nodelink::core

#pragma once

namespace nodelink::core {

// Initializes libsodium once (thread-safe, idempotent). Every entry point that uses libsodium
// calls it; aborts if the library cannot start, since no cryptography would be safe then.
void EnsureCryptoInitialized();

}  // namespace nodelink::core

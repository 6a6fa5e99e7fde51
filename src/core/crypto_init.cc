#include "core/crypto_init.h"

#include <sodium.h>

#include <mutex>

#include "core/status.h"

namespace nodelink::core {

void EnsureCryptoInitialized() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (sodium_init() < 0) Die("libsodium failed to initialize");
  });
}

}  // namespace nodelink::core

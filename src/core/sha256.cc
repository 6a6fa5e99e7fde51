#include "core/sha256.h"

#include <openssl/evp.h>

#include "core/status.h"

namespace nodelink::core {

namespace {
// Fetched once: an explicit fetch avoids a provider lookup per call (OpenSSL 3 performance note).
const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) Die("OpenSSL has no SHA256 implementation");
  return md;
}
}  // namespace

Sha256Digest Sha256(ByteView data) {
  Sha256Digest out{};
  unsigned int len = 0;
  static const uint8_t kEmpty = 0;
  if (EVP_Digest(data.empty() ? &kEmpty : data.data(), data.size(), out.data(), &len, Sha256Md(),
                 nullptr) != 1 ||
      len != out.size()) {
    Die("SHA-256 failed");  // cannot fail on valid memory
  }
  return out;
}

}  // namespace nodelink::core

#include "core/sha256.h"

#include <openssl/evp.h>

#include "core/ossl.h"
#include "core/status.h"

namespace nodelink::core {

const EVP_MD* Sha256Md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) Die("OpenSSL has no SHA256 implementation");
  return md;
}

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

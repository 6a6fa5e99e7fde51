#include "core/hmac.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>

#include "core/ossl.h"
#include "core/status.h"

namespace nodelink::core {

namespace {
EVP_MAC* HmacMac() {
  static EVP_MAC* mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (mac == nullptr) Die("OpenSSL has no HMAC implementation");
  return mac;
}
using MacCtxPtr = OsslPtr<EVP_MAC_CTX, EVP_MAC_CTX_free>;
}  // namespace

Sha256Digest HmacSha256(const SecretBytes& key, ByteView data) {
  static const uint8_t kEmpty = 0;
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                         OSSL_PARAM_construct_end()};
  MacCtxPtr ctx(EVP_MAC_CTX_new(HmacMac()));
  Sha256Digest out{};
  size_t len = 0;
  ByteView k = key.ExposeSecret();
  if (ctx == nullptr ||
      EVP_MAC_init(ctx.get(), k.empty() ? &kEmpty : k.data(), k.size(), params) != 1 ||
      EVP_MAC_update(ctx.get(), data.empty() ? &kEmpty : data.data(), data.size()) != 1 ||
      EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != out.size()) {
    Die("HMAC-SHA256 failed");
  }
  return out;
}

}  // namespace nodelink::core

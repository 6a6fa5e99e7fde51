#include "core/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/kdf.h>

#include "core/ossl.h"
#include "core/status.h"

namespace nodelink::core {

namespace {
EVP_KDF* HkdfKdf() {
  static EVP_KDF* kdf = EVP_KDF_fetch(nullptr, "HKDF", nullptr);
  if (kdf == nullptr) Die("OpenSSL has no HKDF implementation");
  return kdf;
}

// OpenSSL's HKDF fails, with an empty error queue, when an empty salt or info is passed as a null
// pointer (IMPLEMENTATION-NOTES 5); an empty std::vector's data() may be null.
void* NonNull(ByteView b) {
  static uint8_t dummy = 0;
  return b.empty() ? &dummy : const_cast<uint8_t*>(b.data());
}
}  // namespace

absl::StatusOr<SecretBytes> HkdfSha256(ByteView ikm, ByteView salt, ByteView info, size_t length) {
  if (length == 0 || length > 255 * 32) {
    return absl::InvalidArgumentError("HKDF-SHA256 output length must be 1..8160 bytes");
  }
  KdfCtxPtr ctx(EVP_KDF_CTX_new(HkdfKdf()));
  char digest[] = "SHA256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, NonNull(ikm), ikm.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, NonNull(salt), salt.size()),
      OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, NonNull(info), info.size()),
      OSSL_PARAM_construct_end()};
  SecretBytes out(length);
  if (ctx == nullptr || EVP_KDF_derive(ctx.get(), out.MutableSecret().data(), length, params) != 1) {
    return OpenSslError("HKDF-SHA256 failed");
  }
  return out;
}

}  // namespace nodelink::core

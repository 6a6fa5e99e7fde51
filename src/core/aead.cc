#include "core/aead.h"

#include <openssl/evp.h>
#include <sodium.h>

#include <limits>

#include "core/crypto_init.h"
#include "core/ossl.h"
#include "core/status.h"

namespace nodelink::core {

namespace {

const EVP_CIPHER* Cipher() {
  static EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "ChaCha20-Poly1305", nullptr);
  if (cipher == nullptr) Die("OpenSSL has no ChaCha20-Poly1305 implementation");
  return cipher;
}

absl::Status CheckSizes(const SecretBytes& key, ByteView nonce) {
  if (key.size() != kAeadKeyBytes) {
    return absl::InvalidArgumentError("ChaCha20-Poly1305 key must be 32 bytes");
  }
  if (nonce.size() != kAeadNonceBytes) {
    return absl::InvalidArgumentError("ChaCha20-Poly1305 nonce must be 12 bytes");
  }
  return absl::OkStatus();
}

bool UseSodium(AeadBackend backend, size_t size) {
  return backend == AeadBackend::kSodium ||
         (backend == AeadBackend::kAuto && size < kAeadSodiumBelowBytes);
}

constexpr int kMaxChunk = std::numeric_limits<int>::max() / 2;

// EVP update calls take int lengths: feed large inputs in chunks.
bool UpdateInChunks(EVP_CIPHER_CTX* ctx, uint8_t* out, ByteView in, bool encrypt) {
  size_t done = 0;
  while (done < in.size()) {
    int n = static_cast<int>(std::min<size_t>(in.size() - done, kMaxChunk));
    int outl = 0;
    int rc = encrypt ? EVP_EncryptUpdate(ctx, out + done, &outl, in.data() + done, n)
                     : EVP_DecryptUpdate(ctx, out + done, &outl, in.data() + done, n);
    if (rc != 1 || outl != n) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

bool AddAd(EVP_CIPHER_CTX* ctx, ByteView ad, bool encrypt) {
  size_t done = 0;
  while (done < ad.size()) {
    int n = static_cast<int>(std::min<size_t>(ad.size() - done, kMaxChunk));
    int outl = 0;
    int rc = encrypt ? EVP_EncryptUpdate(ctx, nullptr, &outl, ad.data() + done, n)
                     : EVP_DecryptUpdate(ctx, nullptr, &outl, ad.data() + done, n);
    if (rc != 1) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

absl::StatusOr<Bytes> SealOpenSsl(const SecretBytes& key, ByteView nonce, ByteView ad,
                                  ByteView plaintext) {
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes out(plaintext.size() + kAeadTagBytes);
  int outl = 0;
  if (ctx == nullptr ||
      EVP_EncryptInit_ex2(ctx.get(), Cipher(), key.ExposeSecret().data(), nonce.data(), nullptr) !=
          1 ||
      !AddAd(ctx.get(), ad, true) || !UpdateInChunks(ctx.get(), out.data(), plaintext, true) ||
      EVP_EncryptFinal_ex(ctx.get(), out.data() + plaintext.size(), &outl) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_GET_TAG, kAeadTagBytes,
                          out.data() + plaintext.size()) != 1) {
    return OpenSslError("ChaCha20-Poly1305 encryption failed");
  }
  return out;
}

absl::StatusOr<Bytes> OpenOpenSsl(const SecretBytes& key, ByteView nonce, ByteView ad,
                                  ByteView ciphertext) {
  size_t plain_len = ciphertext.size() - kAeadTagBytes;
  CipherCtxPtr ctx(EVP_CIPHER_CTX_new());
  Bytes out(plain_len);
  int outl = 0;
  bool ok =
      ctx != nullptr &&
      EVP_DecryptInit_ex2(ctx.get(), Cipher(), key.ExposeSecret().data(), nonce.data(), nullptr) ==
          1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_AEAD_SET_TAG, kAeadTagBytes,
                          const_cast<uint8_t*>(ciphertext.data() + plain_len)) == 1 &&
      AddAd(ctx.get(), ad, false) &&
      UpdateInChunks(ctx.get(), out.data(), ciphertext.first(plain_len), false) &&
      EVP_DecryptFinal_ex(ctx.get(), out.data() + plain_len, &outl) == 1;
  if (!ok) {
    WipeBytes(out);  // never hand out, or leave behind, unauthenticated plaintext
    ClearOpenSslErrors();
    return absl::PermissionDeniedError("decryption failed");
  }
  return out;
}

absl::StatusOr<Bytes> SealSodium(const SecretBytes& key, ByteView nonce, ByteView ad,
                                 ByteView plaintext) {
  EnsureCryptoInitialized();
  Bytes out(plaintext.size() + kAeadTagBytes);
  unsigned long long outl = 0;
  crypto_aead_chacha20poly1305_ietf_encrypt(out.data(), &outl, plaintext.data(), plaintext.size(),
                                            ad.data(), ad.size(), nullptr, nonce.data(),
                                            key.ExposeSecret().data());
  return out;
}

absl::StatusOr<Bytes> OpenSodium(const SecretBytes& key, ByteView nonce, ByteView ad,
                                 ByteView ciphertext) {
  EnsureCryptoInitialized();
  Bytes out(ciphertext.size() - kAeadTagBytes);
  unsigned long long outl = 0;
  if (crypto_aead_chacha20poly1305_ietf_decrypt(out.data(), &outl, nullptr, ciphertext.data(),
                                                ciphertext.size(), ad.data(), ad.size(),
                                                nonce.data(), key.ExposeSecret().data()) != 0) {
    WipeBytes(out);
    return absl::PermissionDeniedError("decryption failed");
  }
  return out;
}

}  // namespace

absl::StatusOr<Bytes> ChaCha20Poly1305Seal(const SecretBytes& key, ByteView nonce, ByteView ad,
                                           ByteView plaintext, AeadBackend backend) {
  NL_RETURN_IF_ERROR(CheckSizes(key, nonce));
  if (UseSodium(backend, plaintext.size())) return SealSodium(key, nonce, ad, plaintext);
  return SealOpenSsl(key, nonce, ad, plaintext);
}

absl::StatusOr<Bytes> ChaCha20Poly1305Open(const SecretBytes& key, ByteView nonce, ByteView ad,
                                           ByteView ciphertext, AeadBackend backend) {
  NL_RETURN_IF_ERROR(CheckSizes(key, nonce));
  if (ciphertext.size() < kAeadTagBytes) {
    return absl::PermissionDeniedError("decryption failed: ciphertext shorter than the tag");
  }
  if (UseSodium(backend, ciphertext.size())) return OpenSodium(key, nonce, ad, ciphertext);
  return OpenOpenSsl(key, nonce, ad, ciphertext);
}

}  // namespace nodelink::core

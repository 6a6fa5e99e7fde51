// ECDSA P-256 with SHA-256 and ECDH P-256 (PROTOCOL.md section 2), on OpenSSL 3 EVP APIs.
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/secret_bytes.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace nodelink::core {

inline constexpr size_t kP256PointBytes = 65;   // 0x04 || X || Y
inline constexpr size_t kP256ScalarBytes = 32;
inline constexpr size_t kEcdhSecretBytes = 32;  // the x-coordinate

// A validated P-256 public key. Copyable (shares the immutable OpenSSL handle). Thread-safe.
class EcPublicKey {
 public:
  // From an uncompressed SEC1 point. Refuses any other size or prefix (compressed points too),
  // points not on the curve and the point at infinity. Error: InvalidArgument.
  static absl::StatusOr<EcPublicKey> FromPoint(ByteView point);
  // From DER SubjectPublicKeyInfo; refuses keys that are not named-curve P-256.
  static absl::StatusOr<EcPublicKey> FromSpkiDer(ByteView der);
  // From an OpenSSL key (takes its own reference); refuses keys that are not named-curve P-256.
  static absl::StatusOr<EcPublicKey> FromPkey(EVP_PKEY* pkey);

  // The uncompressed point, 65 bytes.
  const Bytes& Point() const { return point_; }
  // DER SubjectPublicKeyInfo (91 bytes for P-256).
  Bytes SpkiDer() const;
  // SHA-256 of SpkiDer(): the fingerprint operators compare (PROTOCOL.md section 3).
  Bytes Fingerprint() const;

  // True only for a strict-DER ECDSA signature of SHA-256(message) by this key. High-s values
  // are accepted (PROTOCOL.md section 2).
  [[nodiscard]] bool VerifySha256(ByteView message, ByteView der_signature) const;

  EVP_PKEY* pkey() const { return pkey_.get(); }
  bool operator==(const EcPublicKey& other) const { return point_ == other.point_; }

 private:
  struct Verifier;  // ec.cc
  EcPublicKey(std::shared_ptr<EVP_PKEY> pkey, Bytes point);
  std::shared_ptr<EVP_PKEY> pkey_;
  Bytes point_;
  std::shared_ptr<Verifier> verifier_;  // shared by copies: they are the same key
};

// A P-256 private key (identity or ephemeral). Move-only; the scalar is exported only as
// SecretBytes. Signing is thread-safe.
class EcPrivateKey {
 public:
  // A fresh key from the OS CSPRNG.
  static absl::StatusOr<EcPrivateKey> Generate();
  // From a big-endian scalar of any length (leading zeros allowed); refuses 0 and values >= n.
  static absl::StatusOr<EcPrivateKey> FromScalar(ByteView scalar);
  // From a PEM private key (PKCS#8 or SEC1); refuses keys that are not P-256.
  static absl::StatusOr<EcPrivateKey> FromPem(const SecretBytes& pem);

  EcPrivateKey(EcPrivateKey&&) noexcept;
  EcPrivateKey& operator=(EcPrivateKey&&) noexcept;
  ~EcPrivateKey();

  const EcPublicKey& PublicKey() const { return public_key_; }
  // The 32-byte big-endian scalar, for sealing into the key store.
  [[nodiscard]] absl::StatusOr<SecretBytes> ExportScalar() const;
  // PKCS#8 PEM, for gRPC's TLS credentials (the one place the key leaves SecretBytes).
  [[nodiscard]] absl::StatusOr<SecretBytes> ExportPem() const;

  // A DER ECDSA signature over SHA-256(message), nonce from the CSPRNG.
  [[nodiscard]] absl::StatusOr<Bytes> SignSha256(ByteView message) const;

  EVP_PKEY* pkey() const { return pkey_; }

 private:
  EcPrivateKey(EVP_PKEY* pkey, EcPublicKey pub) : pkey_(pkey), public_key_(std::move(pub)) {}
  EVP_PKEY* pkey_ = nullptr;  // owned
  EcPublicKey public_key_;
};

// ECDH over P-256: the 32-byte x-coordinate of mine * peer (PROTOCOL.md section 2). The peer key
// was validated when it was built; OpenSSL validates it again.
[[nodiscard]] absl::StatusOr<SecretBytes> EcdhP256(const EcPrivateKey& mine,
                                                   const EcPublicKey& peer);

}  // namespace nodelink::core

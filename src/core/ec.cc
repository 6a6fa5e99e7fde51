#include "core/ec.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cstring>
#include <mutex>
#include <utility>

#include "core/ossl.h"
#include "core/sha256.h"
#include "core/status.h"

namespace nodelink::core {

namespace {

constexpr char kCurveName[] = "P-256";

std::shared_ptr<EVP_PKEY> Share(EVP_PKEY* pkey) {
  return std::shared_ptr<EVP_PKEY>(pkey, EVP_PKEY_free);
}

// True if `pkey` is an EC key on the named curve P-256.
bool IsP256(EVP_PKEY* pkey) {
  if (EVP_PKEY_is_a(pkey, "EC") != 1) return false;
  char group[64] = {0};
  size_t len = 0;
  if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
                                     &len) != 1) {
    ClearOpenSslErrors();
    return false;
  }
  return std::strcmp(group, "prime256v1") == 0 || std::strcmp(group, "P-256") == 0;
}

absl::StatusOr<Bytes> EncodedPoint(EVP_PKEY* pkey) {
  Bytes point(kP256PointBytes);
  size_t len = 0;
  if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point.data(),
                                      point.size(), &len) != 1) {
    return OpenSslError("reading an EC public point failed");
  }
  if (len != kP256PointBytes || point[0] != 0x04) {
    return absl::InternalError("EC public point is not in uncompressed form");
  }
  return point;
}

const EC_GROUP* P256Group() {
  static EC_GROUP* group = EC_GROUP_new_by_curve_name(NID_X9_62_prime256v1);
  if (group == nullptr) Die("OpenSSL has no P-256 group");
  return group;
}

}  // namespace

// ---- EcPublicKey ----

absl::StatusOr<EcPublicKey> EcPublicKey::FromPoint(ByteView point) {
  // OpenSSL would also take compressed points and the 1-byte infinity encoding; the protocol
  // allows only the 65-byte uncompressed form (IMPLEMENTATION-NOTES 5).
  if (point.size() != kP256PointBytes || point[0] != 0x04) {
    return absl::InvalidArgumentError("public key is not a 65-byte uncompressed P-256 point");
  }
  char group[] = "P-256";
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0),
      OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, const_cast<uint8_t*>(point.data()),
                                        point.size()),
      OSSL_PARAM_construct_end()};
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
    return OpenSslError("public key is not a valid P-256 point",
                        absl::StatusCode::kInvalidArgument);
  }
  // fromdata has checked that the point is on the curve (measured: off-curve points are refused),
  // and a 65-byte 0x04 encoding cannot be the point at infinity. P-256 has cofactor 1, so that is
  // full validation; EVP_PKEY_public_check would add ~90 us per key for nothing.
  return EcPublicKey(Share(raw), Bytes(point.begin(), point.end()));
}

absl::StatusOr<EcPublicKey> EcPublicKey::FromSpkiDer(ByteView der) {
  const unsigned char* p = der.data();
  PkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(der.size())));
  if (pkey == nullptr || p != der.data() + der.size()) {
    return OpenSslError("public key is not a DER SubjectPublicKeyInfo",
                        absl::StatusCode::kInvalidArgument);
  }
  return FromPkey(pkey.get());
}

absl::StatusOr<EcPublicKey> EcPublicKey::FromPkey(EVP_PKEY* pkey) {
  if (pkey == nullptr || !IsP256(pkey)) {
    return absl::InvalidArgumentError("key is not a named-curve P-256 key");
  }
  NL_ASSIGN_OR_RETURN(Bytes point, EncodedPoint(pkey));
  // Rebuild from the point: this validates it and drops any private part.
  return FromPoint(point);
}

Bytes EcPublicKey::SpkiDer() const {
  unsigned char* der = nullptr;
  int len = i2d_PUBKEY(pkey_.get(), &der);
  if (len <= 0) Die("encoding a validated public key failed");
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

Bytes EcPublicKey::Fingerprint() const { return Sha256Bytes(SpkiDer()); }

// A verification context kept for the key: OpenSSL 3.0 fetches the algorithms and builds a
// context on each EVP_DigestVerifyInit_ex, 3 % of the responder's CPU at one request in flight
// in the profile (bench/RESULTS.md, twenty-third session). A context is not thread-safe: one thread
// uses it at a time, and a thread that finds it busy builds its own, as before.
struct EcPublicKey::Verifier {
  std::mutex mu;
  PkeyCtxPtr ctx;  // built at the first use; null if that failed (then per call)
  bool tried = false;
};

EcPublicKey::EcPublicKey(std::shared_ptr<EVP_PKEY> pkey, Bytes point)
    : pkey_(std::move(pkey)), point_(std::move(point)), verifier_(std::make_shared<Verifier>()) {}

namespace {

PkeyCtxPtr NewVerifyContext(EVP_PKEY* pkey) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, pkey, nullptr));
  if (ctx == nullptr || EVP_PKEY_verify_init(ctx.get()) != 1 ||
      EVP_PKEY_CTX_set_signature_md(ctx.get(), EVP_sha256()) != 1) {
    return nullptr;
  }
  return ctx;
}

}  // namespace

bool EcPublicKey::VerifySha256(ByteView message, ByteView der_signature) const {
  Sha256Digest digest = Sha256(message);  // of a sealed message's plaintext: wiped below
  static const uint8_t kEmpty = 0;
  const uint8_t* sig = der_signature.empty() ? &kEmpty : der_signature.data();
  // OpenSSL re-encodes the parsed signature and compares, so BER and trailing bytes are refused
  // (strict DER); it returns 0 or -1 for invalid signatures, so only 1 counts.
  auto verify = [&](EVP_PKEY_CTX* ctx) {
    return EVP_PKEY_verify(ctx, sig, der_signature.size(), digest.data(), digest.size()) == 1;
  };
  bool ok = false;
  std::unique_lock<std::mutex> lock;  // none for a moved-from key: the per-call path refuses it
  if (verifier_ != nullptr) lock = std::unique_lock(verifier_->mu, std::try_to_lock);
  if (lock.owns_lock() && !verifier_->tried) {
    verifier_->ctx = NewVerifyContext(pkey_.get());
    verifier_->tried = true;
  }
  if (lock.owns_lock() && verifier_->ctx != nullptr) {
    ok = verify(verifier_->ctx.get());
  } else {
    lock = {};
    PkeyCtxPtr ctx = NewVerifyContext(pkey_.get());
    ok = ctx != nullptr && verify(ctx.get());
  }
  OPENSSL_cleanse(digest.data(), digest.size());
  ClearOpenSslErrors();
  return ok;
}

// ---- EcPrivateKey ----

EcPrivateKey::EcPrivateKey(EcPrivateKey&& other) noexcept
    : pkey_(std::exchange(other.pkey_, nullptr)), public_key_(std::move(other.public_key_)) {}

EcPrivateKey& EcPrivateKey::operator=(EcPrivateKey&& other) noexcept {
  if (this != &other) {
    EVP_PKEY_free(pkey_);
    pkey_ = std::exchange(other.pkey_, nullptr);
    public_key_ = std::move(other.public_key_);
  }
  return *this;
}

EcPrivateKey::~EcPrivateKey() { EVP_PKEY_free(pkey_); }

absl::StatusOr<EcPrivateKey> EcPrivateKey::Generate() {
  char curve[] = "P-256";  // EVP_EC_gen would cast away const (clang -Wcast-qual)
  PkeyPtr pkey(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", curve));
  if (pkey == nullptr) return OpenSslError("generating a P-256 key failed");
  NL_ASSIGN_OR_RETURN(Bytes point, EncodedPoint(pkey.get()));
  NL_ASSIGN_OR_RETURN(EcPublicKey pub, EcPublicKey::FromPoint(point));
  return EcPrivateKey(pkey.release(), std::move(pub));
}

absl::StatusOr<EcPrivateKey> EcPrivateKey::FromScalar(ByteView scalar) {
  BnPtr d(BN_bin2bn(scalar.data(), static_cast<int>(scalar.size()), nullptr));
  if (d == nullptr) return OpenSslError("reading a private scalar failed");
  const BIGNUM* order = EC_GROUP_get0_order(P256Group());
  if (BN_is_zero(d.get()) || BN_cmp(d.get(), order) >= 0) {
    return absl::InvalidArgumentError("private scalar is not in [1, n-1] for P-256");
  }
  // A private-only key has no public part in OpenSSL 3.0; compute d*G (IMPLEMENTATION-NOTES 5).
  EcPointPtr pub(EC_POINT_new(P256Group()));
  BnCtxPtr bn_ctx(BN_CTX_new());
  Bytes point(kP256PointBytes);
  if (pub == nullptr || bn_ctx == nullptr ||
      EC_POINT_mul(P256Group(), pub.get(), d.get(), nullptr, nullptr, bn_ctx.get()) != 1 ||
      EC_POINT_point2oct(P256Group(), pub.get(), POINT_CONVERSION_UNCOMPRESSED, point.data(),
                         point.size(), bn_ctx.get()) != kP256PointBytes) {
    return OpenSslError("computing the public point failed");
  }
  ParamBldPtr bld(OSSL_PARAM_BLD_new());
  if (bld == nullptr ||
      OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, kCurveName, 0) != 1 ||
      OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_PRIV_KEY, d.get()) != 1 ||
      OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                       point.size()) != 1) {
    return OpenSslError("building key parameters failed");
  }
  ParamPtr params(OSSL_PARAM_BLD_to_param(bld.get()));
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_name(nullptr, "EC", nullptr));
  EVP_PKEY* raw = nullptr;
  if (params == nullptr || ctx == nullptr || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &raw, EVP_PKEY_KEYPAIR, params.get()) <= 0) {
    return OpenSslError("building a P-256 key pair failed");
  }
  PkeyPtr pkey(raw);
  NL_ASSIGN_OR_RETURN(EcPublicKey pubkey, EcPublicKey::FromPoint(point));
  return EcPrivateKey(pkey.release(), std::move(pubkey));
}

absl::StatusOr<EcPrivateKey> EcPrivateKey::FromPem(const SecretBytes& pem) {
  ByteView text = pem.ExposeSecret();
  BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  PkeyPtr pkey(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr) : nullptr);
  if (pkey == nullptr) {
    return OpenSslError("not a PEM private key", absl::StatusCode::kInvalidArgument);
  }
  if (!IsP256(pkey.get())) return absl::InvalidArgumentError("private key is not P-256");
  NL_ASSIGN_OR_RETURN(Bytes point, EncodedPoint(pkey.get()));
  NL_ASSIGN_OR_RETURN(EcPublicKey pub, EcPublicKey::FromPoint(point));
  return EcPrivateKey(pkey.release(), std::move(pub));
}

absl::StatusOr<SecretBytes> EcPrivateKey::ExportScalar() const {
  BIGNUM* raw = nullptr;
  if (EVP_PKEY_get_bn_param(pkey_, OSSL_PKEY_PARAM_PRIV_KEY, &raw) != 1) {
    return OpenSslError("reading the private scalar failed");
  }
  BnPtr d(raw);
  SecretBytes out(kP256ScalarBytes);
  if (BN_bn2binpad(d.get(), out.MutableSecret().data(), static_cast<int>(out.size())) !=
      static_cast<int>(kP256ScalarBytes)) {
    return OpenSslError("encoding the private scalar failed");
  }
  return out;
}

absl::StatusOr<SecretBytes> EcPrivateKey::ExportPem() const {
  BioPtr bio(BIO_new(BIO_s_secmem()));
  if (bio == nullptr ||
      PEM_write_bio_PrivateKey(bio.get(), pkey_, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return OpenSslError("encoding the private key as PEM failed");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  if (len <= 0 || data == nullptr) return OpenSslError("encoding the private key as PEM failed");
  return SecretBytes::CopyOf(ByteView(reinterpret_cast<const uint8_t*>(data),
                                      static_cast<size_t>(len)));
}

absl::StatusOr<Bytes> EcPrivateKey::SignSha256(ByteView message) const {
  MdCtxPtr ctx(EVP_MD_CTX_new());
  static const uint8_t kEmpty = 0;
  const uint8_t* msg = message.empty() ? &kEmpty : message.data();
  size_t len = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit_ex(ctx.get(), nullptr, "SHA256", nullptr, nullptr, pkey_, nullptr) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, msg, message.size()) != 1) {
    return OpenSslError("ECDSA signing failed");
  }
  Bytes sig(len);
  if (EVP_DigestSign(ctx.get(), sig.data(), &len, msg, message.size()) != 1) {
    return OpenSslError("ECDSA signing failed");
  }
  sig.resize(len);
  return sig;
}

absl::StatusOr<SecretBytes> EcdhP256(const EcPrivateKey& mine, const EcPublicKey& peer) {
  PkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, mine.pkey(), nullptr));
  SecretBytes z(kEcdhSecretBytes);
  size_t len = z.size();
  if (ctx == nullptr || EVP_PKEY_derive_init(ctx.get()) != 1 ||
      EVP_PKEY_derive_set_peer_ex(ctx.get(), peer.pkey(), /*validate_peer=*/1) != 1) {
    return OpenSslError("ECDH with this peer key failed", absl::StatusCode::kInvalidArgument);
  }
  if (EVP_PKEY_derive(ctx.get(), z.MutableSecret().data(), &len) != 1 || len != kEcdhSecretBytes) {
    return OpenSslError("ECDH failed");
  }
  return z;
}

}  // namespace nodelink::core

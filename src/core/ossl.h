// One owning alias per OpenSSL handle type (after Tink's ssl_unique_ptr.h), and the conversion of
// OpenSSL's error queue into a status.
#pragma once

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>
#include <string_view>

#include "absl/status/status.h"

namespace nodelink::core {

template <typename T, void (*Free)(T*)>
struct OsslDeleter {
  void operator()(T* p) const {
    if (p != nullptr) Free(p);
  }
};
template <typename T, void (*Free)(T*)>
using OsslPtr = std::unique_ptr<T, OsslDeleter<T, Free>>;

using PkeyPtr = OsslPtr<EVP_PKEY, EVP_PKEY_free>;
using PkeyCtxPtr = OsslPtr<EVP_PKEY_CTX, EVP_PKEY_CTX_free>;
using MdCtxPtr = OsslPtr<EVP_MD_CTX, EVP_MD_CTX_free>;
using CipherCtxPtr = OsslPtr<EVP_CIPHER_CTX, EVP_CIPHER_CTX_free>;
using BnPtr = OsslPtr<BIGNUM, BN_clear_free>;
using BnCtxPtr = OsslPtr<BN_CTX, BN_CTX_free>;
using EcGroupPtr = OsslPtr<EC_GROUP, EC_GROUP_free>;
using EcPointPtr = OsslPtr<EC_POINT, EC_POINT_clear_free>;
using ParamBldPtr = OsslPtr<OSSL_PARAM_BLD, OSSL_PARAM_BLD_free>;
using ParamPtr = OsslPtr<OSSL_PARAM, OSSL_PARAM_free>;
using BioPtr = OsslPtr<BIO, BIO_free_all>;
using X509Ptr = OsslPtr<X509, X509_free>;
using X509ReqPtr = OsslPtr<X509_REQ, X509_REQ_free>;
using X509CrlPtr = OsslPtr<X509_CRL, X509_CRL_free>;
using X509StorePtr = OsslPtr<X509_STORE, X509_STORE_free>;
using X509StoreCtxPtr = OsslPtr<X509_STORE_CTX, X509_STORE_CTX_free>;
using X509ExtensionPtr = OsslPtr<X509_EXTENSION, X509_EXTENSION_free>;
using X509NamePtr = OsslPtr<X509_NAME, X509_NAME_free>;
using GeneralNamesPtr = OsslPtr<GENERAL_NAMES, GENERAL_NAMES_free>;
using Asn1IntegerPtr = OsslPtr<ASN1_INTEGER, ASN1_INTEGER_free>;
using Asn1TimePtr = OsslPtr<ASN1_TIME, ASN1_TIME_free>;
using X509RevokedPtr = OsslPtr<X509_REVOKED, X509_REVOKED_free>;

// SHA-256, fetched once (core/sha256.cc): a fetch by name on every use costs a provider lookup
// (OpenSSL 3 performance note; ~15 µs per HKDF in a node's profile, bench/RESULTS.md).
const EVP_MD* Sha256Md();

// An error status for a failed OpenSSL call: `what` plus the drained error queue. Always drains
// the queue, so a leftover error cannot confuse a later call on this thread (gRPC's TLS reads it).
absl::Status OpenSslError(std::string_view what,
                          absl::StatusCode code = absl::StatusCode::kInternal);
// Drops whatever is left in this thread's OpenSSL error queue.
void ClearOpenSslErrors();

}  // namespace nodelink::core

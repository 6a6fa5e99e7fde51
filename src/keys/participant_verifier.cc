#include "keys/participant_verifier.h"

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include "core/ossl.h"
#include "core/sha256.h"
#include "core/status.h"
#include "keys/cert_info.h"
#include "keys/cert_parts.h"
#include "keys/fingerprint.h"
#include "keys/pem.h"
#include "keys/san_uri.h"

namespace nodelink::keys {

struct ParticipantVerifier::State {
  core::X509StorePtr store;
  size_t anchors = 0;
  size_t crls = 0;
};

std::string_view CertErrorName(CertError error) {
  switch (error) {
    case CertError::kOk:
      return "OK";
    case CertError::kMalformed:
      return "MALFORMED";
    case CertError::kExpired:
      return "EXPIRED";
    case CertError::kNotYetValid:
      return "NOT_YET_VALID";
    case CertError::kRevoked:
      return "REVOKED";
    case CertError::kRevocationUnknown:
      return "REVOCATION_UNKNOWN";
    case CertError::kUnknownIssuer:
      return "UNKNOWN_ISSUER";
    case CertError::kInvalidChain:
      return "INVALID_CHAIN";
    case CertError::kNotEndEntity:
      return "NOT_END_ENTITY";
    case CertError::kWrongKeyUsage:
      return "WRONG_KEY_USAGE";
    case CertError::kWrongExtendedKeyUsage:
      return "WRONG_EXTENDED_KEY_USAGE";
    case CertError::kWrongKeyType:
      return "WRONG_KEY_TYPE";
    case CertError::kNoSanUri:
      return "NO_SAN_URI";
    case CertError::kMultipleSanUris:
      return "MULTIPLE_SAN_URIS";
    case CertError::kNotNodelinkUri:
      return "NOT_NODELINK_URI";
    case CertError::kDnsOrIpSan:
      return "DNS_OR_IP_SAN";
    case CertError::kWrongFederation:
      return "WRONG_FEDERATION";
    case CertError::kWrongNodeId:
      return "WRONG_NODE_ID";
  }
  return "UNKNOWN";
}

absl::StatusOr<ParticipantVerifier> ParticipantVerifier::Create(
    const std::vector<Bytes>& anchors_der, const std::vector<Bytes>& crls_der) {
  if (anchors_der.empty()) {
    return absl::InvalidArgumentError(
        "no trust anchor: import the federation CA certificate first (--ca ca.pem)");
  }
  auto state = std::make_shared<State>();
  state->store.reset(X509_STORE_new());
  if (state->store == nullptr) return core::OpenSslError("allocating an X509_STORE failed");
  std::vector<core::X509Ptr> anchors;
  for (const Bytes& der : anchors_der) {
    auto cert = ParseCertificateDer(der);
    if (!cert.ok()) {
      return absl::InvalidArgumentError("trust anchor: " + std::string(cert.status().message()));
    }
    // Only self-signed CA certificates are anchors: the federation CA (PROTOCOL.md section 3).
    if (X509_check_ca(cert->get()) == 0 || X509_self_signed(cert->get(), 1) != 1) {
      core::ClearOpenSslErrors();
      return absl::InvalidArgumentError(
          "trust anchor \"" + NameToString(X509_get_subject_name(cert->get())) +
          "\" is not a self-signed CA certificate; import the federation CA's own certificate");
    }
    if (X509_STORE_add_cert(state->store.get(), cert->get()) != 1) {
      core::ClearOpenSslErrors();  // a duplicate anchor is harmless
    }
    anchors.push_back(*std::move(cert));
  }
  state->anchors = anchors.size();
  for (const Bytes& der : crls_der) {
    auto crl = ParseCrlDer(der);
    if (!crl.ok()) return absl::InvalidArgumentError("CRL: " + std::string(crl.status().message()));
    // A CRL that names an anchor as its issuer must verify under that anchor now. Any other CRL
    // belongs to an intermediate CA (PROTOCOL.md section 3 allows them): its issuer is known
    // only on a path, so OpenSSL checks its signature against the path's CA at each Check().
    bool names_anchor = false;
    bool signed_by_anchor = false;
    for (const core::X509Ptr& anchor : anchors) {
      if (X509_NAME_cmp(X509_CRL_get_issuer(crl->get()), X509_get_subject_name(anchor.get())) !=
          0) {
        continue;
      }
      names_anchor = true;
      if (X509_CRL_verify(crl->get(), X509_get0_pubkey(anchor.get())) == 1) {
        signed_by_anchor = true;
        break;
      }
    }
    core::ClearOpenSslErrors();
    if (names_anchor && !signed_by_anchor) {
      return absl::InvalidArgumentError(
          "CRL issued by \"" + NameToString(X509_CRL_get_issuer(crl->get())) +
          "\" is not signed by that trust anchor; load the CRL the federation CA published");
    }
    if (X509_STORE_add_crl(state->store.get(), crl->get()) != 1) core::ClearOpenSslErrors();
    ++state->crls;
  }
  // Once revocation is on, every CA on the path is checked, not only the leaf's issuer: a
  // revoked intermediate is refused, and a path through a CA whose CRL is not loaded is refused
  // as REVOCATION_UNKNOWN (fail closed) rather than trusted.
  if (state->crls > 0) {
    X509_STORE_set_flags(state->store.get(), X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
  }
  return ParticipantVerifier(std::move(state));
}

absl::StatusOr<ParticipantVerifier> ParticipantVerifier::FromPem(std::string_view anchors_pem,
                                                                 std::string_view crls_pem) {
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> anchors, DecodePemOrDer(anchors_pem, kPemCertificate));
  std::vector<Bytes> crls;
  if (!crls_pem.empty()) {
    NL_ASSIGN_OR_RETURN(crls, DecodePemOrDer(crls_pem, kPemCrl));
  }
  return Create(anchors, crls);
}

size_t ParticipantVerifier::anchor_count() const { return state_->anchors; }
size_t ParticipantVerifier::crl_count() const { return state_->crls; }

namespace {

CertCheck Fail(CertError error, std::string message) {
  CertCheck check;
  check.error = error;
  check.message = std::move(message);
  return check;
}

std::string Describe(X509* cert) {
  std::string cn = CommonName(X509_get_subject_name(cert));
  return cn.empty() ? "\"" + NameToString(X509_get_subject_name(cert)) + "\"" : "\"" + cn + "\"";
}

std::string TimeText(const ASN1_TIME* t) {
  auto ms = Asn1TimeToMs(t);
  return ms.ok() ? FormatUtc(*ms) : "an unreadable time";
}

// The leaf's own profile (PROTOCOL.md section 3), checked before the path so that each defect
// gets its own reason.
CertCheck CheckLeafProfile(X509* leaf, std::optional<core::EcPublicKey>& key, NodelinkName& name) {
  std::string who = "certificate " + Describe(leaf);
  uint32_t flags = X509_get_extension_flags(leaf);
  if ((flags & EXFLAG_INVALID) != 0) {
    return Fail(CertError::kMalformed, who + " has invalid or duplicated extensions");
  }
  // A named-curve P-256 key with an uncompressed point: then the SPKI in the certificate is the
  // canonical one, and its SHA-256 is the fingerprint operators pin.
  ASN1_OBJECT* alg = nullptr;
  const unsigned char* point = nullptr;
  int point_len = 0;
  X509_ALGOR* alg_params = nullptr;
  int param_type = 0;
  const void* param = nullptr;
  bool named_p256 = X509_PUBKEY_get0_param(&alg, &point, &point_len, &alg_params,
                                           X509_get_X509_PUBKEY(leaf)) == 1 &&
                    OBJ_obj2nid(alg) == NID_X9_62_id_ecPublicKey && alg_params != nullptr;
  if (named_p256) {
    X509_ALGOR_get0(nullptr, &param_type, &param, alg_params);
    named_p256 = param_type == V_ASN1_OBJECT &&
                 OBJ_obj2nid(static_cast<const ASN1_OBJECT*>(param)) == NID_X9_62_prime256v1;
  }
  auto pub = named_p256
                 ? core::EcPublicKey::FromPoint(ByteView(point, static_cast<size_t>(point_len)))
                 : absl::StatusOr<core::EcPublicKey>(absl::InvalidArgumentError(""));
  core::ClearOpenSslErrors();
  if (!pub.ok()) {
    return Fail(CertError::kWrongKeyType,
                who +
                    " does not hold a named-curve P-256 key with an uncompressed point; "
                    "participant keys are P-256");
  }
  key = *std::move(pub);
  if ((flags & EXFLAG_CA) != 0) {
    return Fail(CertError::kNotEndEntity,
                who + " is a CA certificate (CA:TRUE); a participant certificate has CA:FALSE");
  }
  if ((flags & EXFLAG_BCONS) == 0) {
    return Fail(CertError::kNotEndEntity,
                who + " has no basicConstraints; a participant certificate has CA:FALSE");
  }
  if ((flags & EXFLAG_KUSAGE) == 0 || X509_get_key_usage(leaf) != KU_DIGITAL_SIGNATURE) {
    return Fail(CertError::kWrongKeyUsage,
                who + " does not have keyUsage exactly digitalSignature");
  }
  int crit = 0;
  auto* eku =
      static_cast<EXTENDED_KEY_USAGE*>(X509_get_ext_d2i(leaf, NID_ext_key_usage, &crit, nullptr));
  bool eku_ok = eku != nullptr && sk_ASN1_OBJECT_num(eku) == 1 &&
                OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) == NID_client_auth;
  if (eku != nullptr) EXTENDED_KEY_USAGE_free(eku);
  core::ClearOpenSslErrors();
  if (!eku_ok) {
    return Fail(CertError::kWrongExtendedKeyUsage,
                who +
                    " does not have extendedKeyUsage exactly clientAuth (a hub certificate, "
                    "or not issued as a participant certificate)");
  }
  SubjectAltNames san = ReadSubjectAltNames(leaf);
  if (san.duplicated) return Fail(CertError::kMalformed, who + " has two SAN extensions");
  if (!san.dns.empty()) {
    return Fail(CertError::kDnsOrIpSan, who + " has a DNS SAN \"" + san.dns[0] +
                                            "\"; participant certificates carry only their "
                                            "nodelink URI");
  }
  if (!san.ips.empty()) {
    return Fail(CertError::kDnsOrIpSan, who + " has an IP SAN " + san.ips[0] +
                                            "; participant certificates carry only their "
                                            "nodelink URI");
  }
  if (!san.other.empty()) {
    return Fail(CertError::kDnsOrIpSan, who + " has a SAN of another kind (" + san.other[0] +
                                            "); participant certificates carry only their "
                                            "nodelink URI");
  }
  if (san.uris.empty()) {
    return Fail(CertError::kNoSanUri,
                who +
                    " has no SAN URI; a participant certificate names its node as "
                    "nodelink://<federation>/<node-id>");
  }
  if (san.uris.size() > 1) {
    return Fail(CertError::kMultipleSanUris,
                who + " has " + std::to_string(san.uris.size()) +
                    " SAN URIs; a participant certificate has exactly one");
  }
  std::optional<NodelinkName> parsed =
      san.uri_has_nul ? std::nullopt : ParseNodelinkUri(san.uris[0]);
  if (!parsed) {
    std::string shown = san.uri_has_nul ? "<URI with a NUL byte>" : "\"" + san.uris[0] + "\"";
    return Fail(CertError::kNotNodelinkUri,
                who + " has SAN URI " + shown + ", not nodelink://<federation>/<node-id>");
  }
  name = *std::move(parsed);
  return {};
}

CertCheck MapPathError(X509_STORE_CTX* ctx) {
  int err = X509_STORE_CTX_get_error(ctx);
  int depth = X509_STORE_CTX_get_error_depth(ctx);
  X509* current = X509_STORE_CTX_get_current_cert(ctx);
  std::string who = current != nullptr ? Describe(current) : "a certificate";
  std::string which = depth == 0 ? "certificate " + who : "issuing CA certificate " + who;
  std::string reason = X509_verify_cert_error_string(err);
  switch (err) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
      return Fail(CertError::kExpired, which + " expired at " +
                                           TimeText(X509_get0_notAfter(current)) +
                                           "; ask the CA holder for a new certificate");
    case X509_V_ERR_CERT_NOT_YET_VALID:
      return Fail(CertError::kNotYetValid, which + " is not valid before " +
                                               TimeText(X509_get0_notBefore(current)) +
                                               "; check this machine's clock");
    case X509_V_ERR_CERT_REVOKED:
      return Fail(CertError::kRevoked, which + " is revoked by its issuer's CRL");
    case X509_V_ERR_UNABLE_TO_GET_CRL:
    case X509_V_ERR_CRL_HAS_EXPIRED:
    case X509_V_ERR_CRL_NOT_YET_VALID:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    {
      std::string issuer = current != nullptr ? CommonName(X509_get_issuer_name(current)) : "";
      return Fail(CertError::kRevocationUnknown,
                  "revocation status of " + which + " is unknown (" + reason +
                      "); load a current CRL from its issuing CA" +
                      (issuer.empty() ? "" : " \"" + issuer + "\"") +
                      " (nodelink-keys import-crl)");
    }
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
      return Fail(CertError::kUnknownIssuer, which + " was not issued by this federation's CA (" +
                                                 reason + "); it comes from another CA");
    case X509_V_ERR_INVALID_PURPOSE:
      return Fail(CertError::kWrongExtendedKeyUsage,
                  which + " is not valid for TLS client authentication");
    default:
      return Fail(CertError::kInvalidChain, which + " does not verify: " + reason);
  }
}

}  // namespace

CertCheck ParticipantVerifier::Check(const std::vector<Bytes>& chain_der,
                                     std::string_view expected_federation,
                                     std::string_view expected_node_id, uint64_t now_ms) const {
  if (chain_der.empty()) return Fail(CertError::kMalformed, "certificate chain is empty");
  if (chain_der.size() > kMaxChainCerts) {
    return Fail(CertError::kMalformed, "certificate chain has " + std::to_string(chain_der.size()) +
                                           " certificates; at most 4 are allowed");
  }
  std::vector<core::X509Ptr> certs;
  for (size_t i = 0; i < chain_der.size(); ++i) {
    if (chain_der[i].size() > kMaxCertBytes) {
      return Fail(CertError::kMalformed,
                  "certificate " + std::to_string(i) + " of the chain is larger than 8 KiB");
    }
    auto cert = ParseCertificateDer(chain_der[i]);
    if (!cert.ok()) {
      return Fail(CertError::kMalformed, "certificate " + std::to_string(i) + " of the chain: " +
                                             std::string(cert.status().message()));
    }
    certs.push_back(*std::move(cert));
  }
  X509* leaf = certs[0].get();

  std::optional<core::EcPublicKey> key;
  NodelinkName name;
  CertCheck profile = CheckLeafProfile(leaf, key, name);
  if (profile.error != CertError::kOk) return profile;

  core::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  using CertStackPtr = std::unique_ptr<STACK_OF(X509), void (*)(STACK_OF(X509)*)>;
  CertStackPtr untrusted(sk_X509_new_null(), [](STACK_OF(X509) * s) { sk_X509_free(s); });
  if (ctx == nullptr || untrusted == nullptr) {
    core::ClearOpenSslErrors();
    return Fail(CertError::kInvalidChain, "out of memory while verifying a certificate chain");
  }
  // Certificates after the leaf can only help build a path; they are never trusted themselves.
  for (size_t i = 1; i < certs.size(); ++i) sk_X509_push(untrusted.get(), certs[i].get());
  if (X509_STORE_CTX_init(ctx.get(), state_->store.get(), leaf, untrusted.get()) != 1) {
    core::ClearOpenSslErrors();
    return Fail(CertError::kInvalidChain, "initializing certificate verification failed");
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(ctx.get());
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(now_ms / 1000));
  X509_VERIFY_PARAM_set_depth(param, static_cast<int>(kMaxChainCerts));
  X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
  int verified = X509_verify_cert(ctx.get());
  if (verified != 1) {
    CertCheck failed = MapPathError(ctx.get());
    core::ClearOpenSslErrors();
    return failed;
  }

  // Identity comes only from the URI (PROTOCOL.md section 3), compared as exact bytes.
  if (name.federation != expected_federation) {
    return Fail(CertError::kWrongFederation,
                "certificate " + Describe(leaf) + " is for federation \"" + name.federation +
                    "\", not \"" + std::string(expected_federation) + "\"");
  }
  if (!expected_node_id.empty() && name.node_id != expected_node_id) {
    return Fail(CertError::kWrongNodeId, "certificate names node \"" + name.node_id +
                                             "\", but the sender is \"" +
                                             std::string(expected_node_id) + "\"");
  }

  std::string issuer;
  STACK_OF(X509)* path = X509_STORE_CTX_get0_chain(ctx.get());
  if (path != nullptr && sk_X509_num(path) > 1) {
    X509* issuer_cert = sk_X509_value(path, 1);
    unsigned char* der = nullptr;
    int len = i2d_X509(issuer_cert, &der);
    if (len > 0) {
      issuer = FingerprintHex(core::Sha256Bytes(ByteView(der, static_cast<size_t>(len))));
      OPENSSL_free(der);
    }
  }
  if (issuer.empty()) issuer = NameToString(X509_get_issuer_name(leaf));
  core::ClearOpenSslErrors();

  auto not_after = Asn1TimeToMs(X509_get0_notAfter(leaf));
  // The certificate's own SPKI is canonical (checked above); hashing it avoids OpenSSL 3.0's
  // slow re-encoding in key->Fingerprint() (~130 us).
  auto fingerprint = SpkiFingerprint(leaf);
  if (!fingerprint.ok()) return Fail(CertError::kMalformed, "certificate key does not encode");
  CertCheck ok;
  ok.participant = VerifiedParticipant{
      name.federation,         name.node_id,      *key,
      *std::move(fingerprint), std::move(issuer), not_after.ok() ? *not_after : 0};
  return ok;
}

absl::StatusOr<VerifiedParticipant> ParticipantVerifier::Verify(
    const std::vector<Bytes>& chain_der, std::string_view expected_federation,
    std::string_view expected_node_id, uint64_t now_ms) const {
  CertCheck check = Check(chain_der, expected_federation, expected_node_id, now_ms);
  if (check.error != CertError::kOk) return absl::PermissionDeniedError(check.message);
  return *std::move(check.participant);
}

}  // namespace nodelink::keys

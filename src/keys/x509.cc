#include "keys/x509.h"

#include <arpa/inet.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "core/ossl.h"
#include "core/status.h"
#include "keys/cert_parts.h"
#include "keys/pem.h"
#include "keys/san_uri.h"
#include "messages/names.h"

namespace nodelink::keys {

namespace {

constexpr uint64_t kMsPerDay = 24ull * 3600 * 1000;

absl::Status SetTime(ASN1_TIME* field, uint64_t ms) {
  if (ASN1_TIME_set(field, static_cast<time_t>(ms / 1000)) == nullptr) {
    return core::OpenSslError("setting a certificate time failed");
  }
  return absl::OkStatus();
}

absl::Status AddNameEntry(X509_NAME* name, const char* field, std::string_view value) {
  if (value.empty()) return absl::OkStatus();
  if (value.size() > 64) {
    return absl::InvalidArgumentError(std::string(field) + " is longer than 64 characters");
  }
  if (X509_NAME_add_entry_by_txt(name, field, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(value.data()),
                                 static_cast<int>(value.size()), -1, 0) != 1) {
    return core::OpenSslError("building a subject name failed", absl::StatusCode::kInvalidArgument);
  }
  return absl::OkStatus();
}

absl::StatusOr<core::X509NamePtr> BuildName(std::string_view common_name,
                                            std::string_view organization) {
  core::X509NamePtr name(X509_NAME_new());
  if (name == nullptr) return core::OpenSslError("allocating a name failed");
  NL_RETURN_IF_ERROR(AddNameEntry(name.get(), "O", organization));
  NL_RETURN_IF_ERROR(AddNameEntry(name.get(), "CN", common_name));
  return name;
}

// One GENERAL_NAME from a typed value; never parsed from a conf string.
absl::StatusOr<GENERAL_NAME*> MakeGeneralName(const SanEntry& entry) {
  int type = 0;
  core::OsslPtr<ASN1_STRING, ASN1_STRING_free> value(nullptr);
  switch (entry.type) {
    case SanEntry::Type::kUri:
    case SanEntry::Type::kDns:
    case SanEntry::Type::kEmail: {
      if (entry.value.empty() || entry.value.find('\0') != std::string::npos) {
        return absl::InvalidArgumentError("a SAN name is empty or contains a NUL byte");
      }
      type = entry.type == SanEntry::Type::kUri   ? GEN_URI
             : entry.type == SanEntry::Type::kDns ? GEN_DNS
                                                  : GEN_EMAIL;
      value.reset(ASN1_IA5STRING_new());
      if (value == nullptr || ASN1_STRING_set(value.get(), entry.value.data(),
                                              static_cast<int>(entry.value.size())) != 1) {
        return core::OpenSslError("building a SAN failed");
      }
      break;
    }
    case SanEntry::Type::kIp: {
      uint8_t addr[16];
      int len = 0;
      if (inet_pton(AF_INET, entry.value.c_str(), addr) == 1) {
        len = 4;
      } else if (inet_pton(AF_INET6, entry.value.c_str(), addr) == 1) {
        len = 16;
      } else {
        return absl::InvalidArgumentError("\"" + entry.value + "\" is not an IPv4 or IPv6 address");
      }
      type = GEN_IPADD;
      value.reset(ASN1_OCTET_STRING_new());
      if (value == nullptr || ASN1_OCTET_STRING_set(value.get(), addr, len) != 1) {
        return core::OpenSslError("building an IP SAN failed");
      }
      break;
    }
  }
  GENERAL_NAME* gen = GENERAL_NAME_new();
  if (gen == nullptr) return core::OpenSslError("allocating a SAN failed");
  GENERAL_NAME_set0_value(gen, type, value.release());
  return gen;
}

absl::Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const std::string& value) {
  if (value.empty()) return absl::OkStatus();
  core::X509ExtensionPtr ext(X509V3_EXT_nconf_nid(nullptr, ctx, nid, value.c_str()));
  if (ext == nullptr || X509_add_ext(cert, ext.get(), -1) != 1) {
    return core::OpenSslError("adding extension " + std::string(OBJ_nid2sn(nid)) + " failed");
  }
  return absl::OkStatus();
}

absl::Status AddSan(X509* cert, const std::vector<SanEntry>& san) {
  if (san.empty()) return absl::OkStatus();
  core::GeneralNamesPtr names(GENERAL_NAMES_new());
  if (names == nullptr) return core::OpenSslError("allocating SANs failed");
  for (const SanEntry& entry : san) {
    NL_ASSIGN_OR_RETURN(GENERAL_NAME * gen, MakeGeneralName(entry));
    if (sk_GENERAL_NAME_push(names.get(), gen) <= 0) {
      GENERAL_NAME_free(gen);
      return core::OpenSslError("adding a SAN failed");
    }
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, names.get(), 0, X509V3_ADD_DEFAULT) != 1) {
    return core::OpenSslError("adding the SAN extension failed");
  }
  return absl::OkStatus();
}

absl::Status SetRandomSerial(X509* cert) {
  core::BnPtr bn(BN_new());
  if (bn == nullptr) return core::OpenSslError("allocating a serial failed");
  // 159 random bits: positive and at most 20 octets in DER (RFC 5280 4.1.2.2), unpredictable.
  do {
    if (BN_rand(bn.get(), 159, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1) {
      return core::OpenSslError("drawing a serial failed");
    }
  } while (BN_is_zero(bn.get()));
  if (BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)) == nullptr) {
    return core::OpenSslError("setting the serial failed");
  }
  return absl::OkStatus();
}

}  // namespace

CertValidity ValidityFromNow(const core::Clock& clock, uint32_t days) {
  if (days == 0) core::Die("ValidityFromNow: days must be positive");
  uint64_t now = clock.NowMs();
  return {now > kBackdateMs ? now - kBackdateMs : 0, now + days * kMsPerDay};
}

CertProfile CaProfile(std::string_view federation, std::string_view common_name) {
  CertProfile p;
  p.common_name = std::string(common_name);
  p.organization = std::string(federation);
  p.basic_constraints = "critical,CA:TRUE";
  p.key_usage = "critical,keyCertSign,cRLSign";
  return p;
}

CertProfile ParticipantProfile(std::string_view federation, std::string_view node_id) {
  CertProfile p;
  p.common_name = std::string(node_id);
  p.organization = std::string(federation);
  p.basic_constraints = "critical,CA:FALSE";
  p.key_usage = "critical,digitalSignature";
  p.extended_key_usage = "clientAuth";
  p.san.push_back({SanEntry::Type::kUri, NodelinkUri(federation, node_id)});
  return p;
}

absl::StatusOr<Bytes> IssueCertificate(EVP_PKEY* subject_key, const CertProfile& profile,
                                       const core::EcPrivateKey& issuer_key,
                                       const Bytes* issuer_cert_der, CertValidity validity) {
  if (validity.not_after_ms <= validity.not_before_ms) {
    return absl::InvalidArgumentError("certificate validity ends before it starts");
  }
  core::X509Ptr issuer;
  if (issuer_cert_der != nullptr) {
    NL_ASSIGN_OR_RETURN(issuer, ParseCertificateDer(*issuer_cert_der));
    if (X509_check_private_key(issuer.get(), issuer_key.pkey()) != 1) {
      core::ClearOpenSslErrors();
      return absl::InvalidArgumentError("the CA key does not match the CA certificate");
    }
  }
  core::X509Ptr cert(X509_new());
  if (cert == nullptr) return core::OpenSslError("allocating a certificate failed");
  NL_ASSIGN_OR_RETURN(core::X509NamePtr subject,
                      BuildName(profile.common_name, profile.organization));
  if (X509_set_version(cert.get(), X509_VERSION_3) != 1 ||
      X509_set_subject_name(cert.get(), subject.get()) != 1 ||
      X509_set_issuer_name(cert.get(),
                           issuer ? X509_get_subject_name(issuer.get()) : subject.get()) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1) {
    return core::OpenSslError("filling in a certificate failed");
  }
  NL_RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  NL_RETURN_IF_ERROR(SetTime(X509_getm_notBefore(cert.get()), validity.not_before_ms));
  NL_RETURN_IF_ERROR(SetTime(X509_getm_notAfter(cert.get()), validity.not_after_ms));

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer.get() : cert.get(), cert.get(), nullptr, nullptr, 0);
  NL_RETURN_IF_ERROR(
      AddConfExtension(cert.get(), &ctx, NID_basic_constraints, profile.basic_constraints));
  NL_RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_key_usage, profile.key_usage));
  NL_RETURN_IF_ERROR(
      AddConfExtension(cert.get(), &ctx, NID_ext_key_usage, profile.extended_key_usage));
  NL_RETURN_IF_ERROR(AddConfExtension(cert.get(), &ctx, NID_subject_key_identifier, "hash"));
  // The SKI must exist before a self-signed certificate can name it as its AKI.
  NL_RETURN_IF_ERROR(
      AddConfExtension(cert.get(), &ctx, NID_authority_key_identifier, "keyid:always"));
  NL_RETURN_IF_ERROR(AddSan(cert.get(), profile.san));

  if (X509_sign(cert.get(), issuer_key.pkey(), EVP_sha256()) <= 0) {
    return core::OpenSslError("signing the certificate failed");
  }
  return CertificateToDer(cert.get());
}

absl::StatusOr<Bytes> CreateCaCertificate(const core::EcPrivateKey& ca_key,
                                          std::string_view federation, std::string_view common_name,
                                          const core::Clock& clock, uint32_t days) {
  if (!messages::IsValidName(federation)) {
    return absl::InvalidArgumentError("\"" + std::string(federation) +
                                      "\" is not a valid federation name (PROTOCOL.md section 1)");
  }
  if (days == 0 || days > kMaxCertDays) {
    return absl::InvalidArgumentError("CA validity must be 1.." + std::to_string(kMaxCertDays) +
                                      " days");
  }
  return IssueCertificate(ca_key.pkey(), CaProfile(federation, common_name), ca_key, nullptr,
                          ValidityFromNow(clock, days));
}

absl::StatusOr<Bytes> CreateCsr(const core::EcPrivateKey& key, std::string_view federation,
                                std::string_view node_id) {
  if (!messages::IsValidName(federation) || !messages::IsValidName(node_id)) {
    return absl::InvalidArgumentError(
        "federation and node id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (PROTOCOL.md "
        "section 1)");
  }
  core::X509ReqPtr req(X509_REQ_new());
  if (req == nullptr) return core::OpenSslError("allocating a CSR failed");
  NL_ASSIGN_OR_RETURN(core::X509NamePtr subject, BuildName(node_id, federation));
  if (X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_subject_name(req.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.pkey()) != 1) {
    return core::OpenSslError("filling in a CSR failed");
  }
  // The requested URI, for the CA holder to read; the CA never copies it.
  core::GeneralNamesPtr names(GENERAL_NAMES_new());
  if (names == nullptr) return core::OpenSslError("allocating SANs failed");
  NL_ASSIGN_OR_RETURN(GENERAL_NAME * gen,
                      MakeGeneralName({SanEntry::Type::kUri, NodelinkUri(federation, node_id)}));
  if (sk_GENERAL_NAME_push(names.get(), gen) <= 0) {
    GENERAL_NAME_free(gen);
    return core::OpenSslError("adding the requested SAN failed");
  }
  using ExtStackPtr =
      std::unique_ptr<STACK_OF(X509_EXTENSION), void (*)(STACK_OF(X509_EXTENSION)*)>;
  ExtStackPtr exts(sk_X509_EXTENSION_new_null(), [](STACK_OF(X509_EXTENSION) * s) {
    sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
  });
  if (exts == nullptr) return core::OpenSslError("allocating CSR extensions failed");
  X509_EXTENSION* ext = X509V3_EXT_i2d(NID_subject_alt_name, 0, names.get());
  if (ext == nullptr) return core::OpenSslError("encoding the requested SAN failed");
  if (sk_X509_EXTENSION_push(exts.get(), ext) <= 0) {
    X509_EXTENSION_free(ext);
    return core::OpenSslError("adding the requested SAN failed");
  }
  if (X509_REQ_add_extensions(req.get(), exts.get()) != 1) {
    return core::OpenSslError("adding the requested SAN failed");
  }
  if (X509_REQ_sign(req.get(), key.pkey(), EVP_sha256()) <= 0) {
    return core::OpenSslError("signing the CSR failed");
  }
  return CsrToDer(req.get());
}

absl::StatusOr<Bytes> CreateHubCsr(const core::EcPrivateKey& key, std::string_view common_name) {
  if (common_name.empty() || common_name.size() > 64) {
    return absl::InvalidArgumentError("a hub CSR name must be 1..64 characters");
  }
  core::X509ReqPtr req(X509_REQ_new());
  if (req == nullptr) return core::OpenSslError("allocating a CSR failed");
  NL_ASSIGN_OR_RETURN(core::X509NamePtr subject, BuildName(common_name, ""));
  if (X509_REQ_set_version(req.get(), 0) != 1 ||
      X509_REQ_set_subject_name(req.get(), subject.get()) != 1 ||
      X509_REQ_set_pubkey(req.get(), key.pkey()) != 1 ||
      X509_REQ_sign(req.get(), key.pkey(), EVP_sha256()) <= 0) {
    return core::OpenSslError("building the hub CSR failed");
  }
  return CsrToDer(req.get());
}

absl::StatusOr<CsrInfo> CheckCsr(ByteView csr_der) {
  NL_ASSIGN_OR_RETURN(core::X509ReqPtr req, ParseCsrDer(csr_der));
  EVP_PKEY* pkey = X509_REQ_get0_pubkey(req.get());
  if (pkey == nullptr) {
    return core::OpenSslError("CSR has no readable public key", absl::StatusCode::kInvalidArgument);
  }
  // Proof of possession: the CSR must be signed by the key it asks to certify.
  if (X509_REQ_verify(req.get(), pkey) != 1) {
    core::ClearOpenSslErrors();
    return absl::InvalidArgumentError(
        "CSR signature does not verify: it was corrupted or not made by the holder of its key; "
        "ask the participant for a new CSR");
  }
  auto key = core::EcPublicKey::FromPkey(pkey);
  if (!key.ok()) {
    return absl::InvalidArgumentError("CSR key is not a named-curve P-256 key (PROTOCOL.md 3)");
  }
  X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  return CsrInfo{*std::move(key), NameEntryUtf8(subject, NID_commonName),
                 NameEntryUtf8(subject, NID_organizationName)};
}

absl::StatusOr<Bytes> IssueParticipantCert(ByteView csr_der, const CaCredentials& ca,
                                           std::string_view federation, std::string_view node_id,
                                           const core::Clock& clock, uint32_t days) {
  if (!messages::IsValidName(federation) || !messages::IsValidName(node_id)) {
    return absl::InvalidArgumentError(
        "federation and node id must match ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$ (PROTOCOL.md "
        "section 1)");
  }
  if (days == 0 || days > kMaxCertDays) {
    return absl::InvalidArgumentError("validity must be 1.." + std::to_string(kMaxCertDays) +
                                      " days");
  }
  NL_ASSIGN_OR_RETURN(CsrInfo csr, CheckCsr(csr_der));
  return IssueCertificate(csr.key.pkey(), ParticipantProfile(federation, node_id), ca.key,
                          &ca.cert_der, ValidityFromNow(clock, days));
}

bool IsValidDnsName(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label_len = 0;
  char prev = '.';
  for (char c : name) {
    if (c == '.') {
      if (label_len == 0 || prev == '-') return false;
      label_len = 0;
    } else {
      bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
      if (!alnum && c != '-') return false;
      if (c == '-' && label_len == 0) return false;
      if (++label_len > 63) return false;
    }
    prev = c;
  }
  return label_len > 0 && prev != '-';
}

absl::StatusOr<Bytes> IssueHubCert(ByteView csr_der, const CaCredentials& ca, const HubNames& names,
                                   const core::Clock& clock, uint32_t days) {
  if (names.dns.empty() && names.ips.empty()) {
    return absl::InvalidArgumentError(
        "a hub certificate needs at least one --dns name or --ip address that nodes dial");
  }
  if (days == 0 || days > kMaxCertDays) {
    return absl::InvalidArgumentError("validity must be 1.." + std::to_string(kMaxCertDays) +
                                      " days");
  }
  CertProfile p;
  p.basic_constraints = "critical,CA:FALSE";
  p.key_usage = "critical,digitalSignature";  // ECDHE-ECDSA server (IMPLEMENTATION-NOTES 2)
  p.extended_key_usage = "serverAuth";
  for (const std::string& dns : names.dns) {
    if (!IsValidDnsName(dns)) {
      return absl::InvalidArgumentError("\"" + dns + "\" is not a valid DNS name");
    }
    p.san.push_back({SanEntry::Type::kDns, dns});
  }
  for (const std::string& ip : names.ips) p.san.push_back({SanEntry::Type::kIp, ip});
  const std::string& first = names.dns.empty() ? names.ips.front() : names.dns.front();
  p.common_name = first.size() <= 64 ? first : "nodelink hub";
  NL_ASSIGN_OR_RETURN(CsrInfo csr, CheckCsr(csr_der));
  return IssueCertificate(csr.key.pkey(), p, ca.key, &ca.cert_der, ValidityFromNow(clock, days));
}

absl::StatusOr<Bytes> CreateCrl(const CaCredentials& ca, const std::vector<RevokedSerial>& revoked,
                                uint64_t crl_number, const core::Clock& clock, uint32_t days) {
  if (days == 0 || days > 366)
    return absl::InvalidArgumentError("CRL validity must be 1..366 days");
  NL_ASSIGN_OR_RETURN(core::X509Ptr ca_cert, ParseCertificateDer(ca.cert_der));
  core::X509CrlPtr crl(X509_CRL_new());
  if (crl == nullptr) return core::OpenSslError("allocating a CRL failed");
  uint64_t now = clock.NowMs();
  core::Asn1TimePtr this_update(ASN1_TIME_set(nullptr, static_cast<time_t>(now / 1000)));
  core::Asn1TimePtr next_update(
      ASN1_TIME_set(nullptr, static_cast<time_t>((now + days * kMsPerDay) / 1000)));
  if (this_update == nullptr || next_update == nullptr ||
      X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2) != 1 ||
      X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(ca_cert.get())) != 1 ||
      X509_CRL_set1_lastUpdate(crl.get(), this_update.get()) != 1 ||
      X509_CRL_set1_nextUpdate(crl.get(), next_update.get()) != 1) {
    return core::OpenSslError("filling in a CRL failed");
  }
  for (const RevokedSerial& r : revoked) {
    core::X509RevokedPtr entry(X509_REVOKED_new());
    core::BnPtr bn(BN_bin2bn(r.serial.data(), static_cast<int>(r.serial.size()), nullptr));
    core::Asn1IntegerPtr serial(bn ? BN_to_ASN1_INTEGER(bn.get(), nullptr) : nullptr);
    core::Asn1TimePtr when(ASN1_TIME_set(nullptr, static_cast<time_t>(r.revoked_at_ms / 1000)));
    if (entry == nullptr || serial == nullptr || when == nullptr ||
        X509_REVOKED_set_serialNumber(entry.get(), serial.get()) != 1 ||
        X509_REVOKED_set_revocationDate(entry.get(), when.get()) != 1 ||
        X509_CRL_add0_revoked(crl.get(), entry.get()) != 1) {
      return core::OpenSslError("adding a revoked serial failed");
    }
    entry.release();  // owned by the CRL now
  }
  core::Asn1IntegerPtr number(ASN1_INTEGER_new());
  if (number == nullptr || ASN1_INTEGER_set_uint64(number.get(), crl_number) != 1 ||
      X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, 0) != 1) {
    return core::OpenSslError("adding the CRL number failed");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca_cert.get(), nullptr, nullptr, crl.get(), 0);
  core::X509ExtensionPtr aki(
      X509V3_EXT_nconf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (aki == nullptr || X509_CRL_add_ext(crl.get(), aki.get(), -1) != 1) {
    return core::OpenSslError("adding the CRL's authority key identifier failed");
  }
  if (X509_CRL_sort(crl.get()) != 1 || X509_CRL_sign(crl.get(), ca.key.pkey(), EVP_sha256()) <= 0) {
    return core::OpenSslError("signing the CRL failed");
  }
  return CrlToDer(crl.get());
}

}  // namespace nodelink::keys

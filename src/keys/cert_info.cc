#include "keys/cert_info.h"

#include <arpa/inet.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "core/encoding.h"
#include "core/ossl.h"
#include "core/sha256.h"
#include "core/status.h"
#include "keys/cert_parts.h"
#include "keys/pem.h"

namespace nodelink::keys {

std::string FormatUtc(uint64_t unix_ms) {
  time_t t = static_cast<time_t>(unix_ms / 1000);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

absl::StatusOr<CertInfo> DescribeCertificate(ByteView der) {
  NL_ASSIGN_OR_RETURN(core::X509Ptr cert, ParseCertificateDer(der));
  CertInfo info;
  info.subject = NameToString(X509_get_subject_name(cert.get()));
  info.issuer = NameToString(X509_get_issuer_name(cert.get()));
  info.common_name = CommonName(X509_get_subject_name(cert.get()));
  info.serial = SerialBytes(cert.get());
  info.serial_hex = core::ToHex(info.serial);
  NL_ASSIGN_OR_RETURN(info.not_before_ms, Asn1TimeToMs(X509_get0_notBefore(cert.get())));
  NL_ASSIGN_OR_RETURN(info.not_after_ms, Asn1TimeToMs(X509_get0_notAfter(cert.get())));
  info.is_ca = X509_check_ca(cert.get()) != 0;
  SubjectAltNames san = ReadSubjectAltNames(cert.get());
  info.uris = san.uris;
  info.dns = san.dns;
  info.ips = san.ips;
  NL_ASSIGN_OR_RETURN(info.spki_fingerprint, SpkiFingerprint(cert.get()));
  info.cert_fingerprint = core::Sha256Bytes(der);
  return info;
}

}  // namespace nodelink::keys

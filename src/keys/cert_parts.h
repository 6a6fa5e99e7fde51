// Small readers of OpenSSL certificate fields shared by cert_info, the verifier and the issuer
// check. Module-internal (OpenSSL types). Thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/ossl.h"

namespace nodelink::keys {

std::string NameToString(const X509_NAME* name);
// The first entry `nid` of a name, as UTF-8; "" if absent or unreadable.
std::string NameEntryUtf8(const X509_NAME* name, int nid);
inline std::string CommonName(const X509_NAME* name) { return NameEntryUtf8(name, NID_commonName); }
// Big-endian magnitude of the serial number.
Bytes SerialBytes(const X509* cert);
[[nodiscard]] absl::StatusOr<uint64_t> Asn1TimeToMs(const ASN1_TIME* t);
// SHA-256 of the DER SubjectPublicKeyInfo.
[[nodiscard]] absl::StatusOr<Bytes> SpkiFingerprint(X509* cert);

struct SubjectAltNames {
  bool present = false;
  bool duplicated = false;  // more than one SAN extension: the certificate is malformed
  std::vector<std::string> uris;
  std::vector<std::string> dns;
  std::vector<std::string> ips;    // printable form
  std::vector<std::string> other;  // e.g. "email:x@y", "dirName", "otherName"
  bool uri_has_nul = false;
};
SubjectAltNames ReadSubjectAltNames(X509* cert);

}  // namespace nodelink::keys

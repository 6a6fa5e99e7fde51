// The federation CA's side of PROTOCOL.md section 3: CA certificates, CSRs, participant and hub
// certificates, CRLs. Module-internal (includes OpenSSL).
//
// The CA builds every extension from its own arguments and never copies anything from a CSR but
// its public key: a CSR can ask for CA:TRUE or for another node's URI (IMPLEMENTATION-NOTES 5).
// SANs are built as GENERAL_NAMEs, never by formatting ids into OpenSSL conf strings, where a comma
// in an id would inject another name. Conf strings are used only for fixed values.
//
// All functions are thread-safe (they share no state).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/clock.h"
#include "core/ec.h"

namespace nodelink::keys {

inline constexpr uint32_t kParticipantCertDays = 90;  // PROTOCOL.md section 9
inline constexpr uint32_t kHubCertDays = 365;
inline constexpr uint32_t kCaCertDays = 3650;
inline constexpr uint32_t kCrlDays = 30;
inline constexpr uint32_t kMaxCertDays = 20 * 365;
// A fresh certificate is valid from this long before its issue time, so a peer whose clock is up
// to the protocol's maximum skew behind (PROTOCOL.md section 9) accepts it at once.
inline constexpr uint64_t kBackdateMs = 10 * 60 * 1000;

struct CertValidity {
  uint64_t not_before_ms = 0;
  uint64_t not_after_ms = 0;
};
// [now - kBackdateMs, now + days]. Aborts on days == 0 (callers validate input first).
CertValidity ValidityFromNow(const core::Clock& clock, uint32_t days);

// A subject alternative name, from the issuer's own arguments.
struct SanEntry {
  enum class Type { kUri, kDns, kIp, kEmail };
  Type type;
  std::string value;  // for kIp: dotted IPv4 or IPv6 text
};

// Everything the issuer decides about a certificate. Extension fields are OpenSSL conf strings of
// FIXED values (e.g. "critical,CA:FALSE"); an empty string omits the extension. Never put ids or
// other input into them: names go into `san`.
struct CertProfile {
  std::string common_name;
  std::string organization;  // empty: none
  std::string basic_constraints;
  std::string key_usage;
  std::string extended_key_usage;
  std::vector<SanEntry> san;
};

// The profiles of PROTOCOL.md section 3.
CertProfile CaProfile(std::string_view federation, std::string_view common_name);
CertProfile ParticipantProfile(std::string_view federation, std::string_view node_id);

// The signing side of a CA: its key and its certificate (DER).
struct CaCredentials {
  core::EcPrivateKey key;
  Bytes cert_der;
};

// Issues a certificate for `subject_key` (any key type, so tests can build non-P-256 leaves)
// with a random positive 159-bit serial, SHA-256 ECDSA, SKI, and AKI from the issuer. With
// `issuer_cert_der` null the certificate is self-signed by `issuer_key` (which must then be the
// subject's key). InvalidArgument on a bad SAN value or validity, Internal on OpenSSL failures.
[[nodiscard]] absl::StatusOr<Bytes> IssueCertificate(EVP_PKEY* subject_key,
                                                     const CertProfile& profile,
                                                     const core::EcPrivateKey& issuer_key,
                                                     const Bytes* issuer_cert_der,
                                                     CertValidity validity);

// A self-signed federation CA certificate (critical CA:TRUE, keyCertSign + cRLSign), subject
// CN=`common_name`, O=`federation`. InvalidArgument on a bad federation name or days.
[[nodiscard]] absl::StatusOr<Bytes> CreateCaCertificate(const core::EcPrivateKey& ca_key,
                                                        std::string_view federation,
                                                        std::string_view common_name,
                                                        const core::Clock& clock, uint32_t days);

// A PKCS#10 CSR signed by `key`: subject CN=node_id, O=federation, and the requested SAN URI
// nodelink://<federation>/<node-id> (informational: the CA rebuilds it). InvalidArgument on bad
// names.
[[nodiscard]] absl::StatusOr<Bytes> CreateCsr(const core::EcPrivateKey& key,
                                              std::string_view federation,
                                              std::string_view node_id);

// A CSR for a hub's TLS key: subject CN=`common_name` (for people), no extensions; the CA adds
// the DNS/IP names from its own arguments. InvalidArgument on an empty or over-long name.
[[nodiscard]] absl::StatusOr<Bytes> CreateHubCsr(const core::EcPrivateKey& key,
                                                 std::string_view common_name);

// What a CSR asks for, once its signature verified.
struct CsrInfo {
  core::EcPublicKey key;
  std::string common_name;   // the requested node id (participants) or host name (hubs)
  std::string organization;  // the requested federation, if any
};
// Parses a DER CSR and checks its self-signature and that its key is named-curve P-256.
// InvalidArgument("... signature does not verify ...") on a forged or corrupted CSR.
[[nodiscard]] absl::StatusOr<CsrInfo> CheckCsr(ByteView csr_der);

// A participant certificate (PROTOCOL.md section 3) for the CSR's key: exactly one SAN URI
// nodelink://<federation>/<node-id>, digitalSignature, clientAuth, CA:FALSE. Federation and node
// id come from the CA's arguments, not from the CSR. Refuses a CSR whose signature fails.
[[nodiscard]] absl::StatusOr<Bytes> IssueParticipantCert(ByteView csr_der, const CaCredentials& ca,
                                                         std::string_view federation,
                                                         std::string_view node_id,
                                                         const core::Clock& clock,
                                                         uint32_t days = kParticipantCertDays);

// The names a hub is dialled by: DNS names and IP addresses (at least one in all).
struct HubNames {
  std::vector<std::string> dns;
  std::vector<std::string> ips;
};
// A hub certificate: serverAuth, digitalSignature, CA:FALSE, the given DNS/IP SANs, no nodelink
// URI. InvalidArgument on an invalid host name or IP, or no name at all.
[[nodiscard]] absl::StatusOr<Bytes> IssueHubCert(ByteView csr_der, const CaCredentials& ca,
                                                 const HubNames& names, const core::Clock& clock,
                                                 uint32_t days = kHubCertDays);

struct RevokedSerial {
  Bytes serial;  // big-endian magnitude, as CertInfo::serial
  uint64_t revoked_at_ms = 0;
};
// A v2 CRL signed by the CA, thisUpdate = now, nextUpdate = now + days, with a CRL number and
// AKI. Verifiers refuse every certificate of this CA once nextUpdate has passed, so publish a
// new one before then.
[[nodiscard]] absl::StatusOr<Bytes> CreateCrl(const CaCredentials& ca,
                                              const std::vector<RevokedSerial>& revoked,
                                              uint64_t crl_number, const core::Clock& clock,
                                              uint32_t days = kCrlDays);

// True for a host name a hub certificate may carry: LDH labels of 1..63 characters, 1..253 in
// all, no wildcard.
bool IsValidDnsName(std::string_view name);

}  // namespace nodelink::keys

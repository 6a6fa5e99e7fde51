// Verifies a participant's certificate chain as PROTOCOL.md section 3 requires: an RFC 5280 path
// from the configured trust anchors (never from a certificate that merely arrives in the chain),
// validity at a given time, revocation when a CRL is loaded, the participant profile, and the
// identity in the single nodelink:// SAN URI.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/ec.h"

namespace nodelink::keys {

// PROTOCOL.md section 9.
inline constexpr size_t kMaxChainCerts = 4;
inline constexpr size_t kMaxCertBytes = 8 * 1024;

// Why a chain was refused; each has its own message too. Every one maps to BAD_CERTIFICATE on
// the wire (PROTOCOL.md section 7, check 6).
enum class CertError {
  kOk = 0,
  kMalformed,              // not DER, too many or too large certificates, duplicate extensions
  kExpired,                // a certificate of the path has expired
  kNotYetValid,            // a certificate of the path is not valid yet
  kRevoked,                // listed in a loaded CRL
  kRevocationUnknown,      // CRL checking is on but no valid CRL covers a CA on the path
  kUnknownIssuer,          // no path to a trust anchor (another CA)
  kInvalidChain,           // any other path failure (bad signature, path length...)
  kNotEndEntity,           // leaf has CA:TRUE or no basicConstraints
  kWrongKeyUsage,          // keyUsage missing or not exactly digitalSignature
  kWrongExtendedKeyUsage,  // extendedKeyUsage missing or not exactly clientAuth
  kWrongKeyType,           // leaf key is not a named-curve P-256 key
  kNoSanUri,               // no URI SAN
  kMultipleSanUris,        // more than one URI SAN
  kNotNodelinkUri,         // the URI is not nodelink://<federation>/<node-id>
  kDnsOrIpSan,             // a DNS, IP or other non-URI SAN is present
  kWrongFederation,        // the URI names another federation
  kWrongNodeId,            // the URI names another node
};
// "EXPIRED", "UNKNOWN_ISSUER", ... for logs and tests.
std::string_view CertErrorName(CertError error);

// What a verified chain proves.
struct VerifiedParticipant {
  std::string federation;
  std::string node_id;
  core::EcPublicKey key;  // the identity key (leaf)
  Bytes fingerprint;      // SHA-256 of the leaf's DER SPKI (PROTOCOL.md section 3)
  // FingerprintHex of the SHA-256 of the DER of the certificate that issued the leaf, or its
  // subject name if that is not available.
  std::string issuer_fingerprint_or_name;
  uint64_t not_after_ms = 0;
};

struct CertCheck {
  CertError error = CertError::kOk;
  std::string message;  // says what is wrong and what to do; empty when ok
  std::optional<VerifiedParticipant> participant;
};

// Immutable after Create; Verify/Check are thread-safe and may run concurrently (each call has
// its own X509_STORE_CTX; the shared X509_STORE is only read). Copies share the state.
class ParticipantVerifier {
 public:
  // Anchors: self-signed CA certificates (DER). CRLs (DER): a CRL naming an anchor as issuer
  // must be signed by it; others are taken as intermediate CAs' CRLs, checked on each path.
  // When at least one is given, every CA on a path (the leaf's issuer and every intermediate)
  // must be covered by a current CRL of its issuer, or the check fails REVOCATION_UNKNOWN.
  // InvalidArgument on anything that is not a CA anchor, a CRL, or an anchor's CRL it did not
  // sign.
  static absl::StatusOr<ParticipantVerifier> Create(const std::vector<Bytes>& anchors_der,
                                                    const std::vector<Bytes>& crls_der = {});
  // The same from PEM text (concatenated blocks; empty crls_pem for none).
  static absl::StatusOr<ParticipantVerifier> FromPem(std::string_view anchors_pem,
                                                     std::string_view crls_pem = {});

  // Verifies `chain_der` (leaf first, at most kMaxChainCerts of at most kMaxCertBytes each;
  // chain[1..] are only untrusted intermediates) at `now_ms`, for `expected_federation` and
  // `expected_node_id` (empty: any node of the federation, for callers that learn the id from
  // the certificate). PermissionDenied with the CertCheck message on any failure.
  [[nodiscard]] absl::StatusOr<VerifiedParticipant> Verify(const std::vector<Bytes>& chain_der,
                                                           std::string_view expected_federation,
                                                           std::string_view expected_node_id,
                                                           uint64_t now_ms) const;
  // The same, with the reason as an enum (for counters and tests).
  CertCheck Check(const std::vector<Bytes>& chain_der, std::string_view expected_federation,
                  std::string_view expected_node_id, uint64_t now_ms) const;

  size_t anchor_count() const;
  size_t crl_count() const;

  struct State;

 private:
  explicit ParticipantVerifier(std::shared_ptr<const State> state) : state_(std::move(state)) {}
  std::shared_ptr<const State> state_;
};

}  // namespace nodelink::keys

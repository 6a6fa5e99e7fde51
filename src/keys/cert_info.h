// Reading certificates for people and for checks: names, serial, validity, SANs, fingerprints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"

namespace nodelink::keys {

struct CertInfo {
  std::string subject;  // RFC 2253 one-line form
  std::string issuer;
  std::string common_name;
  Bytes serial;  // big-endian magnitude
  std::string serial_hex;
  uint64_t not_before_ms = 0;
  uint64_t not_after_ms = 0;
  bool is_ca = false;
  std::vector<std::string> uris;
  std::vector<std::string> dns;
  std::vector<std::string> ips;
  Bytes spki_fingerprint;  // SHA-256 of the DER SubjectPublicKeyInfo: what pins list
  Bytes cert_fingerprint;  // SHA-256 of the certificate's DER
};

// Parses a DER certificate. InvalidArgument if it is not one. Thread-safe.
[[nodiscard]] absl::StatusOr<CertInfo> DescribeCertificate(ByteView der);

// "2025-03-01T12:00:00Z" (UTC), for listings.
std::string FormatUtc(uint64_t unix_ms);

}  // namespace nodelink::keys

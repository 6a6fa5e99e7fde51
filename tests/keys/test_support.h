// Shared helpers for the keys tests: temporary directories, a test CA, and file scanning.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/ec.h"
#include "keys/x509.h"
#include "process/temp_dir.h"

namespace nodelink::keys::testing {

// A fresh directory, removed with everything in it at the end (tools/process).
using TempDir = process::TempDir;

inline Bytes ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline void WriteAll(const std::string& path, ByteView data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

// True if `needle` occurs in `haystack`.
inline bool Contains(ByteView haystack, ByteView needle) {
  if (needle.empty() || haystack.size() < needle.size()) return false;
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

// True if `needle` occurs in the file (a missing file contains nothing).
inline bool FileContains(const std::string& path, ByteView needle) {
  return Contains(ReadAll(path), needle);
}

inline core::EcPrivateKey NewKey() {
  auto key = core::EcPrivateKey::Generate();
  REQUIRE(key.ok());
  return *std::move(key);
}

inline CaCredentials MakeCa(std::string_view federation, const core::Clock& clock,
                            std::string_view common_name = "") {
  core::EcPrivateKey key = NewKey();
  std::string cn =
      common_name.empty() ? std::string(federation) + " federation CA" : std::string(common_name);
  auto cert = CreateCaCertificate(key, federation, cn, clock, kCaCertDays);
  REQUIRE(cert.ok());
  return CaCredentials{std::move(key), *std::move(cert)};
}

inline Bytes IssueFromCsr(const CaCredentials& ca, const core::EcPrivateKey& subject,
                          std::string_view federation, std::string_view node_id,
                          const core::Clock& clock, uint32_t days = kParticipantCertDays) {
  auto csr = CreateCsr(subject, federation, node_id);
  REQUIRE(csr.ok());
  auto cert = IssueParticipantCert(*csr, ca, federation, node_id, clock, days);
  REQUIRE(cert.ok());
  return *std::move(cert);
}

inline Bytes IssueWithProfile(const CaCredentials& ca, EVP_PKEY* subject_key,
                              const CertProfile& profile, const core::Clock& clock,
                              uint32_t days = kParticipantCertDays) {
  auto cert =
      IssueCertificate(subject_key, profile, ca.key, &ca.cert_der, ValidityFromNow(clock, days));
  REQUIRE(cert.ok());
  return *std::move(cert);
}

}  // namespace nodelink::keys::testing

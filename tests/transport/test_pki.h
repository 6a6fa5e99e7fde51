// Test certificates with the nodelink profile of PROTOCOL.md section 3: a federation CA, a hub
// certificate for IP 127.0.0.1 (serverAuth), participant certificates (P-256, one SAN URI
// nodelink://<fed>/<node>, digitalSignature, clientAuth), deliberately wrong ones for refusal
// tests, and CRLs. PEM files are written to the directory for the daemon and for
// `nodelink-hub health`.
// Implemented in test_pki_keys.cc with nodelink::keys (the same code nodelink-keys runs).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "transport/hub_client.h"
#include "transport/hub_server.h"

namespace nodelink::testing {

struct IssuedCert {
  std::string cert_path;  // PEM
  std::string key_path;   // PEM
};

class TestPki {
 public:
  // Creates a CA for `federation` and a hub certificate (IP:127.0.0.1) in `dir`. Aborts the test
  // process if that fails (nothing can run without certificates).
  TestPki(std::string dir, std::string federation);
  ~TestPki();

  // A participant certificate. With `uris`, a certificate of the participant profile whose SAN
  // URIs are exactly `uris` (for refusal tests: another federation, two nodelink URIs).
  IssuedCert IssueParticipant(const std::string& node_id, std::vector<std::string> uris = {});
  // IssueParticipant, as TLS material (fast enough for a thousand participants).
  transport::TlsMaterial FastParticipant(const std::string& node_id);

  // Revokes `cert` and returns the path of a fresh CRL (PEM). CrlPath() writes a CRL with the
  // serials revoked so far (possibly none).
  std::string Revoke(const IssuedCert& cert);
  std::string CrlPath();

  transport::TlsMaterial Material(const IssuedCert& cert) const;
  transport::HubServerTls HubTls(bool with_crl = false);

  const std::string& ca_path() const { return ca_path_; }
  const IssuedCert& hub() const { return hub_; }
  const std::string& federation() const { return federation_; }

 private:
  struct Impl;  // implementation-specific state

  std::string dir_;
  std::string federation_;
  std::string ca_path_;
  IssuedCert hub_;
  std::unique_ptr<Impl> impl_;
};

std::string ReadWholeFile(const std::string& path);
void WriteWholeFile(const std::string& path, std::string_view content);

// One PKI for federation "fed" per test executable (openssl takes a few ms per certificate), and
// a second CA for the same federation name, whose certificates the hub must refuse.
TestPki& Pki();
TestPki& OtherPki();

}  // namespace nodelink::testing

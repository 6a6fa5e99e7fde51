// STOPGAP until src/keys (branch `keys`) lands in main: test certificates made with the openssl
// command line, with the nodelink profile of PROTOCOL.md section 3 (P-256; participants: one SAN
// URI nodelink://<fed>/<node>, keyUsage digitalSignature, extendedKeyUsage clientAuth; hub:
// serverAuth, IP:127.0.0.1). Replace with the nodelink-keys CLI / nodelink::keys once merged.
#pragma once

#include <string>
#include <vector>

#include "transport/hub_client.h"
#include "transport/hub_server.h"

namespace nodelink::testing {

struct IssuedCert {
  std::string cert_path;
  std::string key_path;
};

class TestPki {
 public:
  // Creates a CA for `federation` and a hub certificate (IP:127.0.0.1) in `dir`. Aborts the test
  // process if openssl fails (nothing can run without certificates).
  TestPki(std::string dir, std::string federation);

  // A participant certificate. `uris` defaults to {"nodelink://<federation>/<node_id>"}; `eku`
  // to clientAuth.
  IssuedCert IssueParticipant(const std::string& node_id, std::vector<std::string> uris = {},
                              const std::string& eku = "clientAuth");
  // The same profile, made in-process with OpenSSL (about 1 ms instead of two openssl runs), for
  // tests that need hundreds of participants. Returns the material directly.
  transport::TlsMaterial FastParticipant(const std::string& node_id);

  // Revokes `cert` and returns the path of a fresh CRL (PEM). With no revocation yet, CrlPath()
  // is an empty CRL.
  std::string Revoke(const IssuedCert& cert);
  std::string CrlPath();

  transport::TlsMaterial Material(const IssuedCert& cert) const;
  transport::HubServerTls HubTls(bool with_crl = false);

  const std::string& ca_path() const { return ca_cert_; }
  const IssuedCert& hub() const { return hub_; }
  const std::string& federation() const { return federation_; }

 private:
  IssuedCert Issue(const std::string& name, const std::string& extensions);
  void Run(const std::string& command) const;

  std::string dir_;
  std::string federation_;
  std::string ca_cert_, ca_key_, ca_config_;
  IssuedCert hub_;
  int serial_ = 1;
};

std::string ReadWholeFile(const std::string& path);

}  // namespace nodelink::testing

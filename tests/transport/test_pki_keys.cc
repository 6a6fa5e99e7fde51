// TestPki on nodelink::keys: everything in-process, about a millisecond per certificate.
#include <cstdio>
#include <cstdlib>

#include "core/clock.h"
#include "core/ec.h"
#include "keys/cert_info.h"
#include "keys/pem.h"
#include "keys/x509.h"
#include "test_pki.h"

namespace nodelink::testing {

namespace {

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) {
    std::fprintf(stderr, "TestPki: %s: %s\n", what, v.status().ToString().c_str());
    std::abort();
  }
  return *std::move(v);
}

}  // namespace

struct TestPki::Impl {
  explicit Impl(keys::CaCredentials credentials) : ca(std::move(credentials)) {}
  core::SystemClock& clock = core::SystemClock::Get();
  keys::CaCredentials ca;
  std::vector<keys::RevokedSerial> revoked;
  uint64_t crl_number = 1;
  int count = 0;

  IssuedCert Write(const std::string& dir, const std::string& name, const Bytes& cert_der,
                   const core::EcPrivateKey& key) {
    const std::string base = dir + "/" + name + "-" + std::to_string(++count);
    IssuedCert c{base + ".pem", base + ".key"};
    WriteWholeFile(c.cert_path, keys::DerToPem(keys::kPemCertificate, cert_der));
    core::SecretBytes pem = Must(key.ExportPem(), "export key");
    WriteWholeFile(c.key_path, AsStringView(pem.ExposeSecret()));
    return c;
  }
};

TestPki::TestPki(std::string dir, std::string federation)
    : dir_(std::move(dir)), federation_(std::move(federation)) {
  keys::CaCredentials ca{Must(core::EcPrivateKey::Generate(), "CA key"), {}};
  ca.cert_der = Must(keys::CreateCaCertificate(ca.key, federation_, federation_ + " test CA",
                                               core::SystemClock::Get(), 30),
                     "CA certificate");
  impl_ = std::make_unique<Impl>(std::move(ca));
  ca_path_ = dir_ + "/ca.pem";
  WriteWholeFile(ca_path_, keys::DerToPem(keys::kPemCertificate, impl_->ca.cert_der));
  core::EcPrivateKey hub_key = Must(core::EcPrivateKey::Generate(), "hub key");
  const Bytes csr = Must(keys::CreateHubCsr(hub_key, "hub"), "hub CSR");
  const Bytes cert =
      Must(keys::IssueHubCert(csr, impl_->ca, keys::HubNames{{}, {"127.0.0.1"}}, impl_->clock, 30),
           "hub certificate");
  hub_ = impl_->Write(dir_, "hub", cert, hub_key);
}

TestPki::~TestPki() = default;

IssuedCert TestPki::IssueParticipant(const std::string& node_id, std::vector<std::string> uris) {
  core::EcPrivateKey key = Must(core::EcPrivateKey::Generate(), "participant key");
  Bytes cert;
  if (uris.empty()) {
    const Bytes csr = Must(keys::CreateCsr(key, federation_, node_id), "CSR");
    cert = Must(keys::IssueParticipantCert(csr, impl_->ca, federation_, node_id, impl_->clock, 30),
                "participant certificate");
  } else {
    keys::CertProfile profile = keys::ParticipantProfile(federation_, node_id);
    profile.san.clear();
    for (const std::string& u : uris) profile.san.push_back({keys::SanEntry::Type::kUri, u});
    cert = Must(keys::IssueCertificate(key.pkey(), profile, impl_->ca.key, &impl_->ca.cert_der,
                                       keys::ValidityFromNow(impl_->clock, 30)),
                "custom participant certificate");
  }
  return impl_->Write(dir_, node_id, cert, key);
}

transport::TlsMaterial TestPki::FastParticipant(const std::string& node_id) {
  return Material(IssueParticipant(node_id));
}

std::string TestPki::Revoke(const IssuedCert& cert) {
  const Bytes der = Must(keys::ReadCertificateFile(cert.cert_path), "read certificate");
  const keys::CertInfo info = Must(keys::DescribeCertificate(der), "describe certificate");
  impl_->revoked.push_back({info.serial, impl_->clock.NowMs()});
  return CrlPath();
}

std::string TestPki::CrlPath() {
  const Bytes crl =
      Must(keys::CreateCrl(impl_->ca, impl_->revoked, impl_->crl_number++, impl_->clock), "CRL");
  const std::string path = dir_ + "/crl.pem";
  WriteWholeFile(path, keys::DerToPem(keys::kPemCrl, crl));
  return path;
}

}  // namespace nodelink::testing

#include "keys/x509.h"

#include <doctest/doctest.h>
#include <openssl/ec.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "core/ossl.h"
#include "keys/cert_info.h"
#include "keys/fingerprint.h"
#include "keys/pem.h"
#include "keys/pin_policy.h"
#include "test_support.h"

namespace nodelink::keys {
namespace {

using testing::IssueFromCsr;
using testing::MakeCa;
using testing::NewKey;

TEST_CASE("CSR round trip: the CA certifies the CSR's key with the profile of PROTOCOL 3") {
  core::ManualClock clock;
  CaCredentials ca = MakeCa("fed", clock);
  core::EcPrivateKey key = NewKey();
  auto csr = CreateCsr(key, "fed", "node-a");
  REQUIRE(csr.ok());
  auto info = CheckCsr(*csr);
  REQUIRE(info.ok());
  CHECK(info->key == key.PublicKey());
  CHECK(info->common_name == "node-a");
  CHECK(info->organization == "fed");

  auto cert = IssueParticipantCert(*csr, ca, "fed", "node-a", clock);
  REQUIRE(cert.ok());
  auto described = DescribeCertificate(*cert);
  REQUIRE(described.ok());
  CHECK(described->uris == std::vector<std::string>{"nodelink://fed/node-a"});
  CHECK(described->dns.empty());
  CHECK(described->ips.empty());
  CHECK_FALSE(described->is_ca);
  CHECK(described->spki_fingerprint == key.PublicKey().Fingerprint());
  CHECK(described->common_name == "node-a");
  // 90 days from now, valid from max skew before now.
  CHECK(described->not_after_ms / 1000 == (clock.NowMs() + 90ull * 86400 * 1000) / 1000);
  CHECK(described->not_before_ms / 1000 == (clock.NowMs() - kBackdateMs) / 1000);
  // Serials are random and at most 159 bits.
  CHECK(described->serial.size() <= 20);
  Bytes other = IssueFromCsr(ca, key, "fed", "node-a", clock);
  CHECK(DescribeCertificate(other)->serial != described->serial);

  // PEM round trip.
  std::string pem = DerToPem(kPemCertificate, *cert);
  auto decoded = DecodePemOrDer(pem, kPemCertificate);
  REQUIRE(decoded.ok());
  REQUIRE(decoded->size() == 1);
  CHECK((*decoded)[0] == *cert);
  CHECK_FALSE(DecodePemOrDer(pem, kPemCrl).ok());
}

TEST_CASE("a CSR with a bad signature is refused") {
  core::ManualClock clock;
  CaCredentials ca = MakeCa("fed", clock);
  core::EcPrivateKey key = NewKey();
  auto csr = CreateCsr(key, "fed", "node-a");
  REQUIRE(csr.ok());
  // Change the requested node id after signing: the signature no longer covers the content.
  Bytes tampered = *csr;
  std::string_view text = AsStringView(tampered);
  size_t at = text.find("node-a");
  REQUIRE(at != std::string_view::npos);
  tampered[at + 5] = 'b';
  auto checked = CheckCsr(tampered);
  REQUIRE_FALSE(checked.ok());
  CHECK(checked.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(checked.status().message()).find("signature does not verify") !=
        std::string::npos);
  CHECK_FALSE(IssueParticipantCert(tampered, ca, "fed", "node-b", clock).ok());

  // A corrupted signature, and garbage, are refused too.
  Bytes bad_sig = *csr;
  bad_sig[bad_sig.size() - 3] ^= 0x01;
  CHECK_FALSE(CheckCsr(bad_sig).ok());
  CHECK_FALSE(CheckCsr(ToBytes("not a csr")).ok());
  Bytes trailing = *csr;
  trailing.push_back(0);
  CHECK_FALSE(CheckCsr(trailing).ok());
}

TEST_CASE("the CA never copies extensions from the CSR") {
  core::ManualClock clock;
  CaCredentials ca = MakeCa("fed", clock);
  core::EcPrivateKey key = NewKey();
  // A CSR that asks for CA:TRUE and for another node's URI.
  core::X509ReqPtr req(X509_REQ_new());
  REQUIRE(req != nullptr);
  X509_NAME* name = X509_REQ_get_subject_name(req.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                             reinterpret_cast<const unsigned char*>("node-a"), -1, -1, 0);
  REQUIRE(X509_REQ_set_pubkey(req.get(), key.pkey()) == 1);
  STACK_OF(X509_EXTENSION)* exts = sk_X509_EXTENSION_new_null();
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
  sk_X509_EXTENSION_push(
      exts, X509V3_EXT_nconf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:TRUE"));
  sk_X509_EXTENSION_push(exts, X509V3_EXT_nconf_nid(nullptr, &ctx, NID_subject_alt_name,
                                                    "URI:nodelink://fed/researcher"));
  REQUIRE(X509_REQ_add_extensions(req.get(), exts) == 1);
  sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  REQUIRE(X509_REQ_sign(req.get(), key.pkey(), EVP_sha256()) > 0);
  auto csr = CsrToDer(req.get());
  REQUIRE(csr.ok());

  auto cert = IssueParticipantCert(*csr, ca, "fed", "node-a", clock);
  REQUIRE(cert.ok());
  auto info = DescribeCertificate(*cert);
  REQUIRE(info.ok());
  CHECK_FALSE(info->is_ca);
  CHECK(info->uris == std::vector<std::string>{"nodelink://fed/node-a"});
}

TEST_CASE("node ids are never formatted into conf strings: odd ids are refused, not injected") {
  core::ManualClock clock;
  CaCredentials ca = MakeCa("fed", clock);
  core::EcPrivateKey key = NewKey();
  auto csr = CreateCsr(key, "fed", "node-a");
  REQUIRE(csr.ok());
  CHECK_FALSE(IssueParticipantCert(*csr, ca, "fed", "a,URI:nodelink://fed/b", clock).ok());
  CHECK_FALSE(IssueParticipantCert(*csr, ca, "fed", "", clock).ok());
  CHECK_FALSE(IssueParticipantCert(*csr, ca, "fed/x", "node-a", clock).ok());
  CHECK_FALSE(IssueParticipantCert(*csr, ca, "fed", "node-a", clock, 0).ok());
  CHECK_FALSE(CreateCsr(key, "fed", "bad id").ok());
}

TEST_CASE("hub certificates: serverAuth, DNS and IP names, no nodelink URI") {
  core::ManualClock clock;
  CaCredentials ca = MakeCa("fed", clock);
  core::EcPrivateKey hub_key = NewKey();
  auto csr = CreateHubCsr(hub_key, "hub.example");
  REQUIRE(csr.ok());
  auto cert = IssueHubCert(*csr, ca, {{"hub.example"}, {"127.0.0.1", "::1"}}, clock);
  REQUIRE(cert.ok());
  auto info = DescribeCertificate(*cert);
  REQUIRE(info.ok());
  CHECK(info->dns == std::vector<std::string>{"hub.example"});
  CHECK(info->ips == std::vector<std::string>{"127.0.0.1", "::1"});
  CHECK(info->uris.empty());
  CHECK_FALSE(info->is_ca);
  core::X509Ptr x509 = *ParseCertificateDer(*cert);
  CHECK((X509_get_extended_key_usage(x509.get()) & XKU_SSL_SERVER) != 0);
  CHECK((X509_get_extended_key_usage(x509.get()) & XKU_SSL_CLIENT) == 0);

  CHECK_FALSE(IssueHubCert(*csr, ca, {}, clock).ok());
  CHECK_FALSE(IssueHubCert(*csr, ca, {{"bad name,DNS:evil"}, {}}, clock).ok());
  CHECK_FALSE(IssueHubCert(*csr, ca, {{}, {"300.1.1.1"}}, clock).ok());
  CHECK_FALSE(IssueHubCert(*csr, ca, {{"-x.example"}, {}}, clock).ok());
  CHECK(IsValidDnsName("a-b.example.org"));
  CHECK_FALSE(IsValidDnsName("*.example.org"));
  CHECK_FALSE(IsValidDnsName("a..b"));
}

TEST_CASE("fingerprints: printed like openssl dgst -c, parsed in every form operators type") {
  Bytes digest(32);
  for (size_t i = 0; i < digest.size(); ++i) digest[i] = static_cast<uint8_t>(i * 7 + 1);
  std::string shown = FingerprintHex(digest);
  CHECK(shown.rfind("SHA256:01:08:0f:", 0) == 0);
  CHECK(shown.size() == 7 + 32 * 3 - 1);
  CHECK(*ParseFingerprint(shown) == digest);
  std::string plain = shown.substr(7);
  plain.erase(std::remove(plain.begin(), plain.end(), ':'), plain.end());
  CHECK(*ParseFingerprint(plain) == digest);
  std::string upper = shown;
  std::transform(upper.begin(), upper.end(), upper.begin(), ::toupper);
  CHECK(*ParseFingerprint(upper) == digest);
  CHECK(*ParseFingerprint("SHA2-256:" + shown.substr(7)) == digest);
  CHECK_FALSE(ParseFingerprint(plain.substr(2)).ok());
  CHECK_FALSE(ParseFingerprint(plain + "00").ok());
  CHECK_FALSE(ParseFingerprint("zz" + plain.substr(2)).ok());
  CHECK_FALSE(ParseFingerprint("").ok());
}

TEST_CASE("same-issuer warning: shown under tofu and ca when the hub shares the CA") {
  core::ManualClock clock;
  CaCredentials ca = MakeCa("fed", clock);
  CaCredentials hub_ca = MakeCa("fed", clock, "hub operator CA");
  core::EcPrivateKey node = NewKey();
  Bytes leaf = IssueFromCsr(ca, node, "fed", "node-a", clock);
  core::EcPrivateKey hub_key = NewKey();
  auto csr = CreateHubCsr(hub_key, "hub");
  REQUIRE(csr.ok());
  Bytes same_hub = *IssueHubCert(*csr, ca, {{}, {"127.0.0.1"}}, clock);
  Bytes other_hub = *IssueHubCert(*csr, hub_ca, {{}, {"127.0.0.1"}}, clock);

  CHECK(*SharesIssuer(same_hub, {leaf}));
  CHECK_FALSE(*SharesIssuer(other_hub, {leaf}));
  CHECK(SameIssuerWarning(PinPolicy::kTofu, same_hub, {leaf}).has_value());
  CHECK(SameIssuerWarning(PinPolicy::kCa, same_hub, {leaf}).has_value());
  CHECK_FALSE(SameIssuerWarning(PinPolicy::kPinned, same_hub, {leaf}).has_value());
  CHECK_FALSE(SameIssuerWarning(PinPolicy::kTofu, other_hub, {leaf}).has_value());
  CHECK_FALSE(SharesIssuer(ToBytes("garbage"), {leaf}).ok());
}

}  // namespace
}  // namespace nodelink::keys

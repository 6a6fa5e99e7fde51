#include <doctest/doctest.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>

#include <atomic>
#include <thread>

#include "core/ossl.h"
#include "keys/participant_verifier.h"
#include "keys/pem.h"
#include "keys/x509.h"
#include "test_support.h"

namespace nodelink::keys {
namespace {

using testing::IssueFromCsr;
using testing::IssueWithProfile;
using testing::MakeCa;
using testing::NewKey;

constexpr uint64_t kDayMs = 86400ull * 1000;

// A federation CA, a verifier for it, and a clock; each test issues what it needs.
struct Pki {
  core::ManualClock clock;
  CaCredentials ca = MakeCa("fed", clock);
  core::EcPrivateKey node = NewKey();

  ParticipantVerifier Verifier(const std::vector<Bytes>& crls = {}) const {
    auto v = ParticipantVerifier::Create({ca.cert_der}, crls);
    REQUIRE(v.ok());
    return *std::move(v);
  }
  CertCheck Check(const std::vector<Bytes>& chain, std::string_view node_id = "node-a",
                  uint64_t at_ms = 0) const {
    return Verifier().Check(chain, "fed", node_id, at_ms == 0 ? clock.NowMs() : at_ms);
  }
  Bytes Leaf(const CertProfile& profile) {
    return IssueWithProfile(ca, node.pkey(), profile, clock);
  }
};

TEST_CASE("a valid participant chain verifies and says who it is") {
  Pki pki;
  Bytes leaf = IssueFromCsr(pki.ca, pki.node, "fed", "node-a", pki.clock);
  CertCheck check = pki.Check({leaf});
  REQUIRE(check.error == CertError::kOk);
  REQUIRE(check.participant.has_value());
  CHECK(check.participant->federation == "fed");
  CHECK(check.participant->node_id == "node-a");
  CHECK(check.participant->key == pki.node.PublicKey());
  CHECK(check.participant->fingerprint == pki.node.PublicKey().Fingerprint());
  CHECK(check.participant->issuer_fingerprint_or_name.rfind("SHA256:", 0) == 0);
  CHECK(check.participant->not_after_ms > pki.clock.NowMs());
  // An empty expected node id accepts any node of the federation.
  CHECK(pki.Verifier().Check({leaf}, "fed", "", pki.clock.NowMs()).error == CertError::kOk);
  auto verified = pki.Verifier().Verify({leaf}, "fed", "node-a", pki.clock.NowMs());
  CHECK(verified.ok());
}

// The serial number of a DER certificate, as CreateCrl takes it.
Bytes SerialOf(const Bytes& cert_der) {
  core::X509Ptr x = *ParseCertificateDer(cert_der);
  core::BnPtr bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x.get()), nullptr));
  Bytes serial(static_cast<size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), serial.data());
  return serial;
}

TEST_CASE("expired and not-yet-valid certificates are refused with their own errors") {
  Pki pki;
  Bytes leaf = IssueFromCsr(pki.ca, pki.node, "fed", "node-a", pki.clock, 90);
  uint64_t issued = pki.clock.NowMs();
  CHECK(pki.Check({leaf}, "node-a", issued + 89 * kDayMs).error == CertError::kOk);
  CertCheck expired = pki.Check({leaf}, "node-a", issued + 91 * kDayMs);
  CHECK(expired.error == CertError::kExpired);
  CHECK(expired.message.find("expired") != std::string::npos);
  CertCheck early = pki.Check({leaf}, "node-a", issued - 3600 * 1000);
  CHECK(early.error == CertError::kNotYetValid);
  CHECK(early.message.find("not valid before") != std::string::npos);
  // Within the backdating (max skew) a fresh certificate is valid already.
  CHECK(pki.Check({leaf}, "node-a", issued - 5 * 60 * 1000).error == CertError::kOk);
  auto status = pki.Verifier().Verify({leaf}, "fed", "node-a", issued + 91 * kDayMs);
  CHECK(status.status().code() == absl::StatusCode::kPermissionDenied);
}

TEST_CASE("revoked certificates are refused once the CA's CRL is loaded") {
  Pki pki;
  Bytes revoked_leaf = IssueFromCsr(pki.ca, pki.node, "fed", "node-a", pki.clock);
  core::EcPrivateKey other = NewKey();
  Bytes good_leaf = IssueFromCsr(pki.ca, other, "fed", "node-b", pki.clock);
  auto crl = CreateCrl(pki.ca, {{SerialOf(revoked_leaf), pki.clock.NowMs()}}, 1, pki.clock, 30);
  REQUIRE(crl.ok());
  ParticipantVerifier verifier = pki.Verifier({*crl});
  CHECK(verifier.crl_count() == 1);
  uint64_t now = pki.clock.NowMs() + 1000;
  CertCheck revoked = verifier.Check({revoked_leaf}, "fed", "node-a", now);
  CHECK(revoked.error == CertError::kRevoked);
  CHECK(revoked.message.find("revoked") != std::string::npos);
  CHECK(verifier.Check({good_leaf}, "fed", "node-b", now).error == CertError::kOk);
  // Without the CRL the same certificate verifies: revocation comes only from the CRL.
  CHECK(pki.Check({revoked_leaf}, "node-a", now).error == CertError::kOk);
  // An expired CRL makes revocation status unknown: refused, with its own error.
  CHECK(verifier.Check({good_leaf}, "fed", "node-b", now + 31 * kDayMs).error ==
        CertError::kRevocationUnknown);
  // A CRL from another CA is not accepted as a revocation source.
  CaCredentials other_ca = MakeCa("fed", pki.clock);
  auto foreign_crl = CreateCrl(other_ca, {}, 1, pki.clock, 30);
  REQUIRE(foreign_crl.ok());
  CHECK_FALSE(ParticipantVerifier::Create({pki.ca.cert_der}, {*foreign_crl}).ok());
}

TEST_CASE("a certificate from another CA, even one with the same name, is refused") {
  Pki pki;
  CaCredentials rogue = MakeCa("fed", pki.clock);  // same subject name as the real CA
  Bytes leaf = IssueFromCsr(rogue, pki.node, "fed", "node-a", pki.clock);
  CertCheck check = pki.Check({leaf});
  CHECK(check.error == CertError::kUnknownIssuer);
  CHECK(check.message.find("another CA") != std::string::npos);
  // Sending the rogue root along does not make it trusted.
  CHECK(pki.Check({leaf, rogue.cert_der}).error == CertError::kUnknownIssuer);
}

TEST_CASE("intermediate CAs: a path through chain[1..] to the anchor verifies") {
  Pki pki;
  core::EcPrivateKey inter_key = NewKey();
  Bytes inter_cert = IssueWithProfile(pki.ca, inter_key.pkey(),
                                      CaProfile("fed", "fed intermediate"), pki.clock, 365);
  CaCredentials inter{std::move(inter_key), inter_cert};
  Bytes leaf = IssueFromCsr(inter, pki.node, "fed", "node-a", pki.clock);
  CHECK(pki.Check({leaf, inter_cert}).error == CertError::kOk);
  CHECK(pki.Check({leaf}).error == CertError::kUnknownIssuer);

  // Revocation covers the whole path. With only the root's CRL, the leaf's issuer (the
  // intermediate) has no CRL: refused as unknown, never trusted by default.
  const uint64_t now = pki.clock.NowMs() + 1000;
  auto root_crl = CreateCrl(pki.ca, {}, 1, pki.clock, 30);
  auto inter_crl = CreateCrl(inter, {}, 1, pki.clock, 30);
  auto inter_revoked = CreateCrl(pki.ca, {{SerialOf(inter_cert), pki.clock.NowMs()}}, 2,
                                 pki.clock, 30);
  auto leaf_revoked = CreateCrl(inter, {{SerialOf(leaf), pki.clock.NowMs()}}, 2, pki.clock, 30);
  REQUIRE((root_crl.ok() && inter_crl.ok() && inter_revoked.ok() && leaf_revoked.ok()));
  CertCheck unknown = pki.Verifier({*root_crl}).Check({leaf, inter_cert}, "fed", "node-a", now);
  CHECK(unknown.error == CertError::kRevocationUnknown);
  CHECK(unknown.message.find("fed intermediate") != std::string::npos);
  // Both CRLs loaded: the path verifies.
  CHECK(pki.Verifier({*root_crl, *inter_crl}).Check({leaf, inter_cert}, "fed", "node-a", now)
            .error == CertError::kOk);
  // The leaf revoked by the intermediate's CRL.
  CHECK(pki.Verifier({*root_crl, *leaf_revoked}).Check({leaf, inter_cert}, "fed", "node-a", now)
            .error == CertError::kRevoked);
  // The intermediate itself revoked by the root: everything it issued is refused.
  CHECK(pki.Verifier({*inter_revoked, *inter_crl}).Check({leaf, inter_cert}, "fed", "node-a", now)
            .error == CertError::kRevoked);
  // A CRL that claims the intermediate's name but another key signed it does not count.
  CaCredentials impostor{NewKey(), inter_cert};
  auto forged = CreateCrl(impostor, {}, 1, pki.clock, 30);
  REQUIRE(forged.ok());
  CHECK(pki.Verifier({*root_crl, *forged}).Check({leaf, inter_cert}, "fed", "node-a", now)
            .error == CertError::kRevocationUnknown);
}

TEST_CASE("identity: another federation or another node id is refused") {
  Pki pki;
  Bytes other_fed = pki.Leaf(ParticipantProfile("fed2", "node-a"));
  CertCheck wrong_fed = pki.Check({other_fed});
  CHECK(wrong_fed.error == CertError::kWrongFederation);
  CHECK(wrong_fed.message.find("fed2") != std::string::npos);

  Bytes leaf = IssueFromCsr(pki.ca, pki.node, "fed", "node-a", pki.clock);
  CertCheck wrong_node = pki.Check({leaf}, "node-b");
  CHECK(wrong_node.error == CertError::kWrongNodeId);
  CHECK(wrong_node.message.find("node-a") != std::string::npos);
  // Exact bytes: no case folding.
  CHECK(pki.Check({leaf}, "Node-a").error == CertError::kWrongNodeId);
}

TEST_CASE("SAN URIs: none, two, or a non-nodelink one are each refused") {
  Pki pki;
  CertProfile none = ParticipantProfile("fed", "node-a");
  none.san.clear();
  CHECK(pki.Check({pki.Leaf(none)}).error == CertError::kNoSanUri);

  CertProfile two = ParticipantProfile("fed", "node-a");
  two.san.push_back({SanEntry::Type::kUri, "nodelink://fed/node-b"});
  CHECK(pki.Check({pki.Leaf(two)}).error == CertError::kMultipleSanUris);

  for (const char* uri :
       {"https://fed/node-a", "nodelink://fed/node-a/x", "nodelink://fed", "nodelink:///node-a",
        "nodelink://fed/node a", "NODELINK://fed/node-a", "nodelink://fed/node-a?x=1"}) {
    CAPTURE(uri);
    CertProfile wrong = ParticipantProfile("fed", "node-a");
    wrong.san = {{SanEntry::Type::kUri, uri}};
    CHECK(pki.Check({pki.Leaf(wrong)}).error == CertError::kNotNodelinkUri);
  }

  CertProfile dns = ParticipantProfile("fed", "node-a");
  dns.san.push_back({SanEntry::Type::kDns, "node-a.example"});
  CHECK(pki.Check({pki.Leaf(dns)}).error == CertError::kDnsOrIpSan);
  CertProfile ip = ParticipantProfile("fed", "node-a");
  ip.san.push_back({SanEntry::Type::kIp, "10.0.0.1"});
  CHECK(pki.Check({pki.Leaf(ip)}).error == CertError::kDnsOrIpSan);
  CertProfile email = ParticipantProfile("fed", "node-a");
  email.san.push_back({SanEntry::Type::kEmail, "a@example.org"});
  CHECK(pki.Check({pki.Leaf(email)}).error == CertError::kDnsOrIpSan);
}

TEST_CASE("key usage, extended key usage, basic constraints and key type are checked") {
  Pki pki;
  CertProfile ku = ParticipantProfile("fed", "node-a");
  ku.key_usage = "critical,keyEncipherment";
  CHECK(pki.Check({pki.Leaf(ku)}).error == CertError::kWrongKeyUsage);
  CertProfile ku_extra = ParticipantProfile("fed", "node-a");
  ku_extra.key_usage = "critical,digitalSignature,keyCertSign";
  CHECK(pki.Check({pki.Leaf(ku_extra)}).error == CertError::kWrongKeyUsage);
  CertProfile no_ku = ParticipantProfile("fed", "node-a");
  no_ku.key_usage.clear();
  CHECK(pki.Check({pki.Leaf(no_ku)}).error == CertError::kWrongKeyUsage);

  CertProfile eku = ParticipantProfile("fed", "node-a");
  eku.extended_key_usage = "serverAuth";
  CHECK(pki.Check({pki.Leaf(eku)}).error == CertError::kWrongExtendedKeyUsage);
  CertProfile no_eku = ParticipantProfile("fed", "node-a");
  no_eku.extended_key_usage.clear();
  CHECK(pki.Check({pki.Leaf(no_eku)}).error == CertError::kWrongExtendedKeyUsage);

  CertProfile ca_leaf = ParticipantProfile("fed", "node-a");
  ca_leaf.basic_constraints = "critical,CA:TRUE";
  CHECK(pki.Check({pki.Leaf(ca_leaf)}).error == CertError::kNotEndEntity);
  CertProfile no_bc = ParticipantProfile("fed", "node-a");
  no_bc.basic_constraints.clear();
  CHECK(pki.Check({pki.Leaf(no_bc)}).error == CertError::kNotEndEntity);

  core::PkeyPtr p384(EVP_EC_gen("P-384"));
  REQUIRE(p384 != nullptr);
  Bytes leaf384 =
      IssueWithProfile(pki.ca, p384.get(), ParticipantProfile("fed", "node-a"), pki.clock);
  CHECK(pki.Check({leaf384}).error == CertError::kWrongKeyType);
  // P-256, but the certificate carries the point compressed: not the canonical SPKI.
  core::PkeyPtr compressed(EVP_EC_gen("P-256"));
  REQUIRE(compressed != nullptr);
  REQUIRE(EVP_PKEY_set_utf8_string_param(
              compressed.get(), OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT, "compressed") == 1);
  Bytes leaf_compressed =
      IssueWithProfile(pki.ca, compressed.get(), ParticipantProfile("fed", "node-a"), pki.clock);
  CHECK(pki.Check({leaf_compressed}).error == CertError::kWrongKeyType);

  // A hub certificate presented as a participant certificate.
  auto csr = CreateHubCsr(pki.node, "hub");
  REQUIRE(csr.ok());
  Bytes hub = *IssueHubCert(*csr, pki.ca, {{"hub.example"}, {}}, pki.clock);
  CHECK(pki.Check({hub}).error == CertError::kWrongExtendedKeyUsage);
}

TEST_CASE("malformed chains are refused without crashing") {
  Pki pki;
  Bytes leaf = IssueFromCsr(pki.ca, pki.node, "fed", "node-a", pki.clock);
  CHECK(pki.Check({}).error == CertError::kMalformed);
  CHECK(pki.Check({ToBytes("garbage")}).error == CertError::kMalformed);
  CHECK(pki.Check({Bytes(leaf.begin(), leaf.end() - 1)}).error == CertError::kMalformed);
  Bytes trailing = leaf;
  trailing.push_back(0);
  CHECK(pki.Check({trailing}).error == CertError::kMalformed);
  CHECK(pki.Check({leaf, leaf, leaf, leaf, leaf}).error == CertError::kMalformed);
  CHECK(pki.Check({leaf, Bytes(9000, 0x30)}).error == CertError::kMalformed);
  Bytes flipped = leaf;
  flipped[flipped.size() - 5] ^= 0x40;  // inside the signature
  CertCheck bad_sig = pki.Check({flipped});
  CHECK(bad_sig.error != CertError::kOk);
}

TEST_CASE("anchors must be self-signed CA certificates; PEM construction works") {
  Pki pki;
  Bytes leaf = IssueFromCsr(pki.ca, pki.node, "fed", "node-a", pki.clock);
  CHECK_FALSE(ParticipantVerifier::Create({}).ok());
  CHECK_FALSE(ParticipantVerifier::Create({leaf}).ok());
  CHECK_FALSE(ParticipantVerifier::Create({ToBytes("x")}).ok());
  auto from_pem = ParticipantVerifier::FromPem(DerToPem(kPemCertificate, pki.ca.cert_der));
  REQUIRE(from_pem.ok());
  CHECK(from_pem->anchor_count() == 1);
  CHECK(from_pem->Check({leaf}, "fed", "node-a", pki.clock.NowMs()).error == CertError::kOk);
}

TEST_CASE("concurrent Verify calls on one verifier") {
  Pki pki;
  std::vector<Bytes> leaves;
  std::vector<core::EcPrivateKey> keys;
  for (int i = 0; i < 4; ++i) {
    keys.push_back(NewKey());
    leaves.push_back(
        IssueFromCsr(pki.ca, keys.back(), "fed", "node-" + std::to_string(i), pki.clock));
  }
  ParticipantVerifier verifier = pki.Verifier();
  std::atomic<int> ok{0};
  std::atomic<int> refused{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 50; ++i) {
        int n = (t + i) % 4;
        if (verifier.Check({leaves[n]}, "fed", "node-" + std::to_string(n), pki.clock.NowMs())
                .error == CertError::kOk) {
          ++ok;
        }
        if (verifier.Check({leaves[n]}, "fed", "node-x", pki.clock.NowMs()).error ==
            CertError::kWrongNodeId) {
          ++refused;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  CHECK(ok.load() == 200);
  CHECK(refused.load() == 200);
}

}  // namespace
}  // namespace nodelink::keys

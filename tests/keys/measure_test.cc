// Timings for the report, not assertions (tests never assert on speed). Skipped by default; run
// with: keys_test -tc="measure*" --no-skip
#include <doctest/doctest.h>

#include <chrono>

#include "core/random.h"
#include "keys/participant_verifier.h"
#include "store_test_support.h"

namespace nodelink::keys {
namespace {

template <typename F>
double MeanMs(int reps, F&& f) {
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  std::chrono::duration<double, std::milli> took = std::chrono::steady_clock::now() - start;
  return took.count() / reps;
}

TEST_CASE("measure: Argon2id per profile, store open, certificate verification" * doctest::skip()) {
  Bytes salt = core::RandomBytes(kStoreSaltBytes);
  StoreKeySource pass = testing::Pass("correct horse battery staple");
  for (auto [profile, reps] :
       {std::pair{KdfProfile::kMinimal, 200}, std::pair{KdfProfile::kInteractive, 5},
        std::pair{KdfProfile::kModerate, 3}}) {
    double ms =
        MeanMs(reps, [&] { REQUIRE(DeriveStoreKey(pass, salt, KdfParamsOf(profile)).ok()); });
    MESSAGE("Argon2id " << KdfProfileName(profile) << ": " << ms << " ms");
  }

  testing::TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  CaCredentials ca = testing::MakeCa("fed", clock);
  {
    auto store = testing::CreateStore(path, clock);
    REQUIRE(store->SetIdentity("fed", "node-a", testing::NewKey()).ok());
    REQUIRE(store->AddAnchor(AnchorRole::kFederation, ca.cert_der).ok());
    core::EcPrivateKey peer = testing::NewKey();
    for (int i = 0; i < 50; ++i) {
      testing::InsertChannel(*store, "peer-" + std::to_string(i), core::RandomBytes(16),
                             core::RandomSecret(32), clock.NowMs(), peer.PublicKey());
    }
  }
  double open_ms = MeanMs(50, [&] { testing::OpenStore(path, clock).reset(); });
  MESSAGE("KeyStore::Open (kMinimal, 50 channels) + close: " << open_ms << " ms");
  auto store = testing::OpenStore(path, clock);
  double load_ms = MeanMs(200, [&] { REQUIRE(store->LoadIdentity().ok()); });
  MESSAGE("LoadIdentity: " << load_ms << " ms");

  core::EcPrivateKey node = testing::NewKey();
  Bytes leaf = testing::IssueFromCsr(ca, node, "fed", "node-b", clock);
  auto verifier = ParticipantVerifier::Create({ca.cert_der});
  REQUIRE(verifier.ok());
  double verify_ms = MeanMs(2000, [&] {
    REQUIRE(verifier->Check({leaf}, "fed", "node-b", clock.NowMs()).error == CertError::kOk);
  });
  MESSAGE("ParticipantVerifier::Check (1 leaf, no CRL): " << verify_ms * 1000 << " us");
  auto crl = CreateCrl(ca, {{Bytes(20, 1), clock.NowMs()}}, 1, clock, 30);
  auto with_crl = ParticipantVerifier::Create({ca.cert_der}, {*crl});
  REQUIRE(with_crl.ok());
  double verify_crl_ms = MeanMs(2000, [&] {
    REQUIRE(with_crl->Check({leaf}, "fed", "node-b", clock.NowMs()).error == CertError::kOk);
  });
  MESSAGE("ParticipantVerifier::Check (1 leaf, with CRL): " << verify_crl_ms * 1000 << " us");
}

}  // namespace
}  // namespace nodelink::keys

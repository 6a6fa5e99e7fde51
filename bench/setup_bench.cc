// The work of one channel setup (PROTOCOL.md section 5) on one side, with the calls the overlay
// makes. Store writes are not included (they join the group commit of the message that
// follows). Results: bench/RESULTS.md.
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "core/clock.h"
#include "core/ec.h"
#include "core/random.h"
#include "keys/participant_verifier.h"
#include "keys/x509.h"
#include "overlay/setup_crypto.h"

namespace nodelink {
namespace {

template <typename T>
T Must(absl::StatusOr<T> v) {
  if (!v.ok()) std::abort();  // fixed, valid inputs: a failure is a broken build
  return *std::move(v);
}

struct Pki {
  core::SystemClock& clock = core::SystemClock::Get();
  keys::CaCredentials ca{Must(core::EcPrivateKey::Generate()), {}};
  core::EcPrivateKey peer = Must(core::EcPrivateKey::Generate());
  Bytes peer_cert;
  Pki() {
    ca.cert_der = Must(keys::CreateCaCertificate(ca.key, "bench", "Bench CA", clock, 30));
    peer_cert = Must(keys::IssueParticipantCert(Must(keys::CreateCsr(peer, "bench", "peer")), ca,
                                                "bench", "peer", clock));
  }
};

// Both sides do the same work, in a different order: make an ephemeral key and sign their own
// tbs; check the other's chain and signature; derive the secret (ECDH, HKDF).
void BM_SetupOneSide(benchmark::State& state) {
  Pki pki;
  auto verifier = Must(keys::ParticipantVerifier::Create({pki.ca.cert_der}, {}));
  const Bytes tbs = core::RandomBytes(260);  // req_tbs and rep_tbs are 200-300 bytes
  const Bytes peer_sig = Must(pki.peer.SignSha256(tbs));
  const core::EcPublicKey peer_ephemeral = Must(core::EcPrivateKey::Generate()).PublicKey();
  const core::EcPrivateKey identity = Must(core::EcPrivateKey::Generate());
  for (auto _ : state) {
    core::EcPrivateKey ephemeral = Must(core::EcPrivateKey::Generate());
    benchmark::DoNotOptimize(Must(identity.SignSha256(tbs)));
    keys::CertCheck check = verifier.Check({pki.peer_cert}, "bench", "peer", pki.clock.NowMs());
    if (check.error != keys::CertError::kOk ||
        !check.participant->key.VerifySha256(tbs, peer_sig)) {
      std::abort();
    }
    benchmark::DoNotOptimize(Must(overlay::DeriveChannelSecret(ephemeral, peer_ephemeral, tbs)));
  }
}
BENCHMARK(BM_SetupOneSide)->Unit(benchmark::kMicrosecond);

// The certificate check alone: parsing, the participant profile, the path to the CA.
void BM_CertificateCheck(benchmark::State& state) {
  Pki pki;
  auto verifier = Must(keys::ParticipantVerifier::Create({pki.ca.cert_der}, {}));
  for (auto _ : state) {
    keys::CertCheck check = verifier.Check({pki.peer_cert}, "bench", "peer", pki.clock.NowMs());
    if (check.error != keys::CertError::kOk) std::abort();
  }
}
BENCHMARK(BM_CertificateCheck)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace nodelink

BENCHMARK_MAIN();

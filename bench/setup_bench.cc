// The work of one channel setup (PROTOCOL.md section 5) on each side, with the same calls the
// overlay makes: the responder checks the initiator's certificate chain against the federation
// CA, verifies req_tbs, makes its ephemeral key, derives the secret (ECDH, HKDF) and signs
// rep_tbs; the initiator made its ephemeral key and signed req_tbs, then checks the responder's
// chain, verifies rep_tbs and derives the same secret. Store writes are not included (they join
// the group commit of the message that follows). Results: bench/RESULTS.md.
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

// What either side does with the other's setup message: chain, signature, ECDH and HKDF.
void CheckPeerAndDerive(const Pki& pki, const keys::ParticipantVerifier& verifier,
                        const Bytes& tbs, const Bytes& signature,
                        const core::EcPrivateKey& my_ephemeral,
                        const core::EcPublicKey& peer_ephemeral) {
  keys::CertCheck check = verifier.Check({pki.peer_cert}, "bench", "peer", pki.clock.NowMs());
  if (check.error != keys::CertError::kOk || !check.participant->key.VerifySha256(tbs, signature)) {
    std::abort();
  }
  benchmark::DoNotOptimize(Must(overlay::DeriveChannelSecret(my_ephemeral, peer_ephemeral, tbs)));
}

void BM_SetupResponder(benchmark::State& state) {
  Pki pki;
  auto verifier = Must(keys::ParticipantVerifier::Create({pki.ca.cert_der}, {}));
  const Bytes req_tbs = core::RandomBytes(220);
  const Bytes req_sig = Must(pki.peer.SignSha256(req_tbs));
  const core::EcPublicKey initiator_ephemeral = Must(core::EcPrivateKey::Generate()).PublicKey();
  const core::EcPrivateKey responder_identity = Must(core::EcPrivateKey::Generate());
  for (auto _ : state) {
    core::EcPrivateKey ephemeral = Must(core::EcPrivateKey::Generate());
    CheckPeerAndDerive(pki, verifier, req_tbs, req_sig, ephemeral, initiator_ephemeral);
    benchmark::DoNotOptimize(Must(responder_identity.SignSha256(req_tbs)));
  }
}
BENCHMARK(BM_SetupResponder)->Unit(benchmark::kMicrosecond);

void BM_SetupInitiator(benchmark::State& state) {
  Pki pki;
  auto verifier = Must(keys::ParticipantVerifier::Create({pki.ca.cert_der}, {}));
  const Bytes rep_tbs = core::RandomBytes(300);
  const Bytes rep_sig = Must(pki.peer.SignSha256(rep_tbs));
  const core::EcPublicKey responder_ephemeral = Must(core::EcPrivateKey::Generate()).PublicKey();
  const core::EcPrivateKey initiator_identity = Must(core::EcPrivateKey::Generate());
  for (auto _ : state) {
    core::EcPrivateKey ephemeral = Must(core::EcPrivateKey::Generate());
    benchmark::DoNotOptimize(Must(initiator_identity.SignSha256(rep_tbs)));  // req_tbs
    CheckPeerAndDerive(pki, verifier, rep_tbs, rep_sig, ephemeral, responder_ephemeral);
  }
}
BENCHMARK(BM_SetupInitiator)->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace nodelink

BENCHMARK_MAIN();

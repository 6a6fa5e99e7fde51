// Micro-benchmarks of the primitives of PROTOCOL.md section 2, and OpenSSL's against libsodium's
// ChaCha20-Poly1305 at the sizes that decide core/aead.h's kAeadSodiumBelowBytes.
#include <benchmark/benchmark.h>

#include "core/aead.h"
#include "core/ec.h"
#include "core/hkdf.h"
#include "core/random.h"

namespace nodelink::core {
namespace {

void BM_EcdsaSign(benchmark::State& state) {
  auto key = EcPrivateKey::Generate().value();
  Bytes msg = RandomBytes(100);
  for (auto _ : state) benchmark::DoNotOptimize(key.SignSha256(msg));
}
BENCHMARK(BM_EcdsaSign);

void BM_EcdsaVerify(benchmark::State& state) {
  auto key = EcPrivateKey::Generate().value();
  Bytes msg = RandomBytes(100);
  Bytes sig = key.SignSha256(msg).value();
  for (auto _ : state) benchmark::DoNotOptimize(key.PublicKey().VerifySha256(msg, sig));
}
BENCHMARK(BM_EcdsaVerify);

void BM_EcdhP256(benchmark::State& state) {
  auto a = EcPrivateKey::Generate().value();
  auto b = EcPrivateKey::Generate().value();
  for (auto _ : state) benchmark::DoNotOptimize(EcdhP256(a, b.PublicKey()));
}
BENCHMARK(BM_EcdhP256);

void BM_EcKeyGenerate(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(EcPrivateKey::Generate());
}
BENCHMARK(BM_EcKeyGenerate);

void BM_PublicKeyFromPoint(benchmark::State& state) {
  auto key = EcPrivateKey::Generate().value();
  for (auto _ : state) benchmark::DoNotOptimize(EcPublicKey::FromPoint(key.PublicKey().Point()));
}
BENCHMARK(BM_PublicKeyFromPoint);

void BM_HkdfSha256(benchmark::State& state) {
  SecretBytes ikm = RandomSecret(32);
  Bytes salt = RandomBytes(32), info = RandomBytes(40);
  for (auto _ : state) benchmark::DoNotOptimize(HkdfSha256(ikm, salt, info, 32));
}
BENCHMARK(BM_HkdfSha256);

template <AeadBackend kBackend>
void BM_AeadSeal(benchmark::State& state) {
  SecretBytes key = RandomSecret(32);
  Bytes nonce = RandomBytes(12), ad = RandomBytes(150);
  Bytes plain = RandomBytes(static_cast<size_t>(state.range(0)));
  for (auto _ : state) benchmark::DoNotOptimize(ChaCha20Poly1305Seal(key, nonce, ad, plain, kBackend));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
template <AeadBackend kBackend>
void BM_AeadOpen(benchmark::State& state) {
  SecretBytes key = RandomSecret(32);
  Bytes nonce = RandomBytes(12), ad = RandomBytes(150);
  Bytes plain = RandomBytes(static_cast<size_t>(state.range(0)));
  Bytes sealed = ChaCha20Poly1305Seal(key, nonce, ad, plain, kBackend).value();
  for (auto _ : state) benchmark::DoNotOptimize(ChaCha20Poly1305Open(key, nonce, ad, sealed, kBackend));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * state.range(0));
}
#define AEAD_SIZES Arg(64)->Arg(512)->Arg(1024)->Arg(1536)->Arg(2048)->Arg(4096)->Arg(1 << 20)
BENCHMARK(BM_AeadSeal<AeadBackend::kOpenSsl>)->Name("BM_AeadSeal/openssl")->AEAD_SIZES;
BENCHMARK(BM_AeadSeal<AeadBackend::kSodium>)->Name("BM_AeadSeal/sodium")->AEAD_SIZES;
BENCHMARK(BM_AeadOpen<AeadBackend::kOpenSsl>)->Name("BM_AeadOpen/openssl")->AEAD_SIZES;
BENCHMARK(BM_AeadOpen<AeadBackend::kSodium>)->Name("BM_AeadOpen/sodium")->AEAD_SIZES;

}  // namespace
}  // namespace nodelink::core

BENCHMARK_MAIN();

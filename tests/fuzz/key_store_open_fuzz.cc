// Fuzzes the key store loader: any file given to KeyStore::Open is refused with an error or
// opened, and an opened store answers its readers (identity, anchors, CRLs, trust, channels,
// TLS material) with values or errors; nothing may crash, throw or hang. The store key comes from
// a key file (HKDF), so that an input costs no Argon2id run; a header that asks for a passphrase
// is refused before any KDF. The corpus seed is a real store made with that key:
//   NODELINK_FUZZ_WRITE_SEED=tests/fuzz/corpus/key_store_open/seed.db build-fuzz/bin/fuzz_key_store_open
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/clock.h"
#include "core/ec.h"
#include "keys/files.h"
#include "keys/key_store.h"
#include "keys/x509.h"

namespace {

using namespace nodelink;

struct Paths {
  std::string store, key;
};

const Paths& FuzzPaths() {
  static const Paths paths = [] {
    static char dir[] = "/tmp/nodelink-fuzz-store-XXXXXX";
    if (::mkdtemp(dir) == nullptr) std::abort();
    std::atexit([] { std::filesystem::remove_all(dir); });  // not left behind in /tmp
    Paths p{std::string(dir) + "/store.db", std::string(dir) + "/store.key"};
    Bytes key(32);
    for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<uint8_t>(i * 7 + 1);
    if (!keys::WriteNewSecretFile(p.key, key).ok()) std::abort();
    return p;
  }();
  return paths;
}

keys::StoreKeySource Source() { return keys::StoreKeySource::KeyFile(FuzzPaths().key); }

// A store as nodelink-keys leaves it: identity, certificate, anchor, trust, a channel-free state.
void WriteSeed(const std::string& path) {
  std::remove(path.c_str());
  auto store = keys::KeyStore::Create(path, Source(), keys::KdfProfile::kMinimal).value();
  core::SystemClock& clock = core::SystemClock::Get();
  keys::CaCredentials ca{core::EcPrivateKey::Generate().value(), {}};
  ca.cert_der = keys::CreateCaCertificate(ca.key, "fed", "Fuzz CA", clock, 3650).value();
  if (!store->SetIdentity("fed", "lab-1", core::EcPrivateKey::Generate().value()).ok() ||
      !store->AddAnchor(keys::AnchorRole::kFederation, ca.cert_der).ok()) {
    std::abort();
  }
  Bytes cert =
      keys::IssueParticipantCert(store->CreateIdentityCsr().value(), ca, "fed", "lab-1", clock)
          .value();
  if (!store->ImportCertificateChain({cert}, clock.NowMs()).ok() ||
      !store->SetApproval("researcher", keys::ApprovalRole::kResearcher, true).ok()) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* seed = std::getenv("NODELINK_FUZZ_WRITE_SEED")) {
    WriteSeed(seed);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string& path = FuzzPaths().store;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) std::remove((path + suffix).c_str());
  {
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  }
  auto store = keys::KeyStore::Open(path, Source());
  if (!store.ok()) return 0;
  keys::KeyStore& s = **store;
  (void)s.LoadIdentity();
  (void)s.Anchors(keys::AnchorRole::kFederation);
  (void)s.Crls();
  (void)s.HubCertificate();
  (void)s.MakeParticipantVerifier();
  (void)s.ExportTlsMaterial();
  (void)s.GetPinPolicy();
  (void)s.ListTrust();
  (void)s.ListChannels();
  return 0;
}

#include "keys/store_bodies.h"

#include <utility>

#include "core/aead.h"
#include "core/random.h"
#include "core/status.h"
#include "keys/key_store.h"

namespace nodelink::keys {

namespace {
// Each file has its own key, used for that one encryption, so the nonce can be fixed.
// ChaCha20-Poly1305 through core/aead, which hands large inputs to OpenSSL (2.3x libsodium at
// 1 MiB, bench/RESULTS.md), rather than the store sealer's libsodium XChaCha20.
const Bytes kFileNonce(core::kAeadNonceBytes, 0);
}  // namespace

absl::StatusOr<std::unique_ptr<StoreBodies>> StoreBodies::Open(const KeyStore& store) {
  NL_ASSIGN_OR_RETURN(core::SpoolDir dir, core::SpoolDir::Open(store.path() + "-bodies"));
  return std::unique_ptr<StoreBodies>(new StoreBodies(store, std::move(dir)));
}

absl::StatusOr<StoreBodies::Stored> StoreBodies::Write(core::SpoolBatch& files, std::string name,
                                                       ByteView plain, std::string_view context,
                                                       core::SpoolWrite how) const {
  core::SecretBytes key = core::RandomSecret(core::kAeadKeyBytes);
  NL_ASSIGN_OR_RETURN(Bytes sealed,
                      core::ChaCha20Poly1305Seal(key, kFileNonce, AsBytes(context), plain));
  NL_RETURN_IF_ERROR(files.Write(std::move(name), sealed, how));
  Stored stored;
  NL_ASSIGN_OR_RETURN(stored.key_sealed, store_.Seal(key.ExposeSecret(), context));
  stored.file_bytes = sealed.size();
  return stored;
}

absl::StatusOr<Bytes> StoreBodies::Read(std::string_view name, ByteView key_sealed,
                                        uint64_t file_bytes, std::string_view context) const {
  NL_ASSIGN_OR_RETURN(core::SecretBytes key, store_.Unseal(key_sealed, context));
  if (key.size() != core::kAeadKeyBytes) {
    return absl::DataLossError("the key of body file " + std::string(name) + " is malformed");
  }
  NL_ASSIGN_OR_RETURN(std::string sealed, dir_.Read(name, file_bytes));
  return core::ChaCha20Poly1305Open(key, kFileNonce, AsBytes(context), AsBytes(sealed));
}

}  // namespace nodelink::keys

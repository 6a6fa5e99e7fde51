#include "keys/store_bodies.h"

#include <utility>

#include "core/random.h"
#include "core/status.h"
#include "keys/key_store.h"
#include "keys/store_key.h"

namespace nodelink::keys {

namespace {
constexpr size_t kFileKeyBytes = 32;
}

absl::StatusOr<std::unique_ptr<StoreBodies>> StoreBodies::Open(const KeyStore& store) {
  NL_ASSIGN_OR_RETURN(core::SpoolDir dir, core::SpoolDir::Open(store.path() + "-bodies"));
  return std::unique_ptr<StoreBodies>(new StoreBodies(store, std::move(dir)));
}

absl::StatusOr<StoreBodies::Stored> StoreBodies::Write(std::string_view name, ByteView plain,
                                                       std::string_view context) const {
  core::SecretBytes key = core::RandomSecret(kFileKeyBytes);
  NL_ASSIGN_OR_RETURN(Bytes sealed, StoreSealer(key.Clone()).Seal(plain, context));
  NL_RETURN_IF_ERROR(dir_.Write(name, sealed, /*sync=*/false));
  Stored stored;
  NL_ASSIGN_OR_RETURN(stored.key_sealed, store_.Seal(key.ExposeSecret(), context));
  stored.file_bytes = sealed.size();
  return stored;
}

absl::StatusOr<core::SecretBytes> StoreBodies::Read(std::string_view name, ByteView key_sealed,
                                                    uint64_t file_bytes,
                                                    std::string_view context) const {
  NL_ASSIGN_OR_RETURN(core::SecretBytes key, store_.Unseal(key_sealed, context));
  NL_ASSIGN_OR_RETURN(std::string sealed, dir_.Read(name, file_bytes));
  return StoreSealer(std::move(key)).Unseal(AsBytes(sealed), context);
}

}  // namespace nodelink::keys

// Large inbox and sent messages of the key store, kept as files beside it (core/spool_dir.h) in
// the directory `<store path>-bodies`. Each file is ChaCha20-Poly1305 under a fresh random key
// (the AD is the row's seal context), and that key, sealed with the store key, is in the row that
// names the file (small, so on the b-tree page that secure_delete zeroes when the row goes).
// Deleting the row therefore erases the file's contents cryptographically (PROTOCOL.md section
// 5's erasure, with no overwrite of the file, which ext4 could not promise anyway); store-key
// changes re-seal only the row's key.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/secret_bytes.h"
#include "core/spool_dir.h"

namespace nodelink::keys {

class KeyStore;

// Values of at least this many bytes go to a body file (below it, SQLite's double write costs
// less than a file of its own).
inline constexpr size_t kBodyFileMinBytes = 64 * 1024;

class StoreBodies {
 public:
  // What the row keeps about its body file.
  struct Stored {
    Bytes key_sealed;  // the file's key, sealed with the store key under the row's context
    uint64_t file_bytes = 0;
  };

  // Opens (creating) the directory of `store`'s body files. `store` must outlive this.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<StoreBodies>> Open(const KeyStore& store);

  // Seals `plain` under a fresh key into file `name` of `files` (a batch of this directory, for
  // the transaction that stores the row), bound to `context`. Not synced: the store's commits
  // are not either (synchronous=NORMAL; they survive a killed process, key_store.h). `how`:
  // kCached for a file deleted again soon (an inbox message), kUncached for one kept (a sent
  // message, kept for resends for the queue TTL).
  [[nodiscard]] absl::StatusOr<Stored> Write(core::SpoolBatch& files, std::string name,
                                             ByteView plain, std::string_view context,
                                             core::SpoolWrite how) const;

  // Opens file `name` with the row's sealed key. NotFound or DataLoss if the file is missing or
  // cut short, PermissionDenied if it does not open under that key and context.
  [[nodiscard]] absl::StatusOr<Bytes> Read(std::string_view name, ByteView key_sealed,
                                           uint64_t file_bytes, std::string_view context) const;

  const core::SpoolDir& dir() const { return dir_; }

 private:
  StoreBodies(const KeyStore& store, core::SpoolDir dir) : store_(store), dir_(std::move(dir)) {}

  const KeyStore& store_;
  core::SpoolDir dir_;
};

}  // namespace nodelink::keys

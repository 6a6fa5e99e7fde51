// A directory of body files beside an SQLite database, for values too large to be worth a trip
// through SQLite's write-ahead log. A body in the database is written twice (the -wal file, then
// the checkpoint into the main file) and read again to be deleted (its overflow-page chain);
// a body in its own file is written once and deleted by unlink(2). The hub queue and the key
// store keep large bodies here and only a row in the transaction (bench/RESULTS.md, 1 MiB).
//
// Crash order (SpoolBatch keeps it): write the file, then commit the row that names it; commit
// the row's deletion, then unlink. A crash between leaves an unreferenced file, never a row
// without its file; callers remove unreferenced files when they open (RemoveAllBut).
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/bytes.h"

namespace nodelink::core {

// How a body file is written.
enum class SpoolWrite {
  kCached,  // through the page cache, not synced: for files read or deleted again soon
  kSynced,  // the same, then fdatasync
  // O_DIRECT, for files kept long and rarely read: they do not grow the page cache. New
  // page-cache pages are what a buffered write of a kept file pays for, and on this project's
  // VMs (free memory handed back to the host) that is ~6 ms of kernel CPU per MiB, against
  // ~0.3 ms for a direct write (bench/RESULTS.md). Falls back to kCached where the file system
  // refuses O_DIRECT (EINVAL: tmpfs before Linux 6.6, some network file systems).
  kUncached,
};

class SpoolDir {
 public:
  // Opens `path`, creating it (mode 0700) if absent. FailedPrecondition if it is not a
  // directory or cannot be written.
  [[nodiscard]] static absl::StatusOr<SpoolDir> Open(std::string path);

  // Writes `data` as file `name` (mode 0600), replacing one of that name. With kSynced, the file
  // is on disk (fdatasync) when this returns; the directory entry needs SyncDirectory() too.
  // ResourceExhausted when the disk is full; the partial file is removed. kUncached copies
  // through a block-aligned buffer kept per thread (it grows to the largest body written).
  [[nodiscard]] absl::Status Write(std::string_view name, ByteView data, SpoolWrite how) const;

  // Reads file `name`, which must hold exactly `expected_bytes`: NotFound if it is missing,
  // DataLoss if its size differs (a file cut short by a crash of the machine).
  [[nodiscard]] absl::StatusOr<std::string> Read(std::string_view name,
                                                 size_t expected_bytes) const;

  // Unlinks file `name`; a missing file is not an error (removal is retried after crashes).
  void Remove(std::string_view name) const;

  // fsync of the directory, so that files written kSynced survive a power loss by name.
  [[nodiscard]] absl::Status SyncDirectory() const;

  // Names of the files in the directory (temporary or foreign entries included), unsorted.
  [[nodiscard]] absl::StatusOr<std::vector<std::string>> List() const;

  // Removes every file whose name is not in `keep` (the names the database's rows hold);
  // returns how many it removed.
  [[nodiscard]] absl::StatusOr<size_t> RemoveAllBut(
      const std::unordered_set<std::string>& keep) const;

  const std::string& path() const { return path_; }

 private:
  explicit SpoolDir(std::string path) : path_(std::move(path)) {}
  absl::Status WriteDirect(int fd, const std::string& file, ByteView data) const;
  std::string FilePath(std::string_view name) const;

  std::string path_;
};

// The body files of one database transaction, in the crash order above: the files written for
// rows it inserts are removed again unless Committed() is called (the transaction failed, or
// an error left the function), and the files of rows it deletes are removed by Committed().
class SpoolBatch {
 public:
  explicit SpoolBatch(const SpoolDir& dir) : dir_(dir) {}
  ~SpoolBatch();
  SpoolBatch(const SpoolBatch&) = delete;
  SpoolBatch& operator=(const SpoolBatch&) = delete;

  // SpoolDir::Write, remembered for the undo.
  [[nodiscard]] absl::Status Write(std::string name, ByteView data, SpoolWrite how);
  void RemoveOnCommit(std::string name) { removed_.push_back(std::move(name)); }
  bool wrote_any() const { return !written_.empty(); }
  void Committed();

 private:
  const SpoolDir& dir_;
  std::vector<std::string> written_;
  std::vector<std::string> removed_;
  bool committed_ = false;
};

}  // namespace nodelink::core

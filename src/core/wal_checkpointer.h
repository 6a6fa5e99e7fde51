// WAL checkpoints of a SQLite database, mostly off the commit path; the key store and the hub's
// queue use it. SQLite's automatic checkpoint runs inside the commit that crosses its threshold,
// on whichever thread commits (a key store's router worker or commit thread, the hub's one queue
// thread): that thread stalled 6-15 ms at a time, several times a second, and this was most of
// the round trip's p99 (bench/RESULTS.md, twelfth and fourteenth sessions). Here a WAL hook
// replaces the automatic checkpoint, which then runs in two passes:
//   1. the bulk, on this class's thread and a connection of its own, while the store's writers
//      go on (in WAL mode a PASSIVE checkpoint and a writer do not block each other);
//   2. the rest, inside the next commit on the store's connection: the few frames committed
//      during pass 1. Nothing else commits meanwhile, so the pass reaches the WAL's end, and the
//      commit after it restarts the WAL from its start.
// Without pass 2 (tried in the twelfth session), back-to-back commits kept the WAL from ever being
// caught up, so it never restarted: 36 MiB after 4,000 commits. Pass 2 is not taken by the
// thread under the store's mutex because writers that commit back to back would starve it.
// A reader in another process (the nodelink-keys CLI) can still hold the WAL back, as it would
// with SQLite's own checkpoint. The database must not be in EXCLUSIVE locking mode, which would
// keep the second connection out.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

struct sqlite3;
namespace SQLite {
class Database;
}

namespace nodelink::core {

class WalCheckpointer {
 public:
  // SQLite's own automatic-checkpoint default. Larger passes copy each rewritten index page once
  // for many commits; off the commit path, their length no longer matters to a round trip.
  static constexpr int kThresholdFrames = 1000;

  // Installs the hook on `store_db` (which must outlive this object) and starts the thread, which
  // opens a second connection to `path`. If it cannot, commits checkpoint themselves, as
  // SQLite's would. `what` names the database in logs ("key store /path").
  WalCheckpointer(SQLite::Database& store_db, std::string path, std::string what);
  // Removes the hook and ends the thread (a pass under way finishes first). No commit may run on
  // `store_db` meanwhile.
  ~WalCheckpointer();

  WalCheckpointer(const WalCheckpointer&) = delete;
  WalCheckpointer& operator=(const WalCheckpointer&) = delete;

  // Bulk passes the thread has completed that copied frames.
  uint64_t checkpoints() const { return checkpoints_.load(); }
  // Times a commit found the WAL started over from its beginning (its length in frames fell).
  uint64_t restarts() const { return restarts_.load(); }

 private:
  static int OnCommit(void* self, sqlite3* db, const char* name, int frames);
  void Run();
  // PASSIVE never waits: it copies what no reader still needs. Logs failures other than BUSY
  // (another process checkpointing); returns how many of the WAL's frames are now in the
  // database, or -1.
  int Checkpoint(sqlite3* db, const char* name, const char* pass);
  // Flushes the file `file_op` names (SQLITE_FCNTL_FILE_POINTER or _JOURNAL_POINTER) to disk.
  void SyncFile(sqlite3* db, int file_op);

  enum class Pass { kNone, kBulk, kRest };  // the pass that is due

  sqlite3* const store_db_;
  const std::string path_;
  const std::string what_;
  std::atomic<bool> inline_fallback_{false};
  std::atomic<uint64_t> checkpoints_{0};
  std::atomic<uint64_t> restarts_{0};
  int last_frames_ = 0;  // OnCommit only, which the store's commits run one at a time

  std::mutex mu_;
  std::condition_variable cv_;
  Pass due_ = Pass::kNone;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_
  std::thread thread_;      // last: starts after the members it uses exist
};

}  // namespace nodelink::core

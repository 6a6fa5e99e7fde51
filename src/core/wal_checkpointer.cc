#include "core/wal_checkpointer.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <spdlog/spdlog.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <unistd.h>

#include <memory>
#include <utility>

#include "core/thread_name.h"

namespace nodelink::core {

namespace {
constexpr int kNice = 10;  // the checkpoint thread's (Linux: per thread)
}  // namespace

WalCheckpointer::WalCheckpointer(SQLite::Database& store_db, std::string path, std::string what)
    : store_db_(store_db.getHandle()), path_(std::move(path)), what_(std::move(what)) {
  sqlite3_wal_hook(store_db_, &WalCheckpointer::OnCommit, this);
  thread_ = std::thread([this] {
    NameThisThread("nl-checkpoint");
    // Background work: on a busy machine the round trip's threads go first. Nice, not
    // SCHED_IDLE: pass 1 must still run under constant load, or pass 2 never comes.
    (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kNice);
    Run();
  });
}

WalCheckpointer::~WalCheckpointer() {
  sqlite3_wal_hook(store_db_, nullptr, nullptr);
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

// Runs inside every commit on the store's connection (under the store's mutex, on its commit
// thread): short, except when it copies the rest (pass 2).
int WalCheckpointer::OnCommit(void* self, sqlite3* db, const char* name, int frames) {
  auto* c = static_cast<WalCheckpointer*>(self);
  if (frames < c->last_frames_) c->restarts_.fetch_add(1);
  c->last_frames_ = frames;
  if (c->inline_fallback_.load()) {
    if (frames >= kThresholdFrames) c->Checkpoint(db, name, "inline");
    return SQLITE_OK;
  }
  {
    std::lock_guard lock(c->mu_);
    if (c->due_ == Pass::kNone && frames >= kThresholdFrames) {
      c->due_ = Pass::kBulk;
      c->cv_.notify_one();
      return SQLITE_OK;
    }
    if (c->due_ != Pass::kRest) return SQLITE_OK;
    c->due_ = Pass::kNone;
  }
  c->Checkpoint(db, name, "rest");
  return SQLITE_OK;
}

int WalCheckpointer::Checkpoint(sqlite3* db, const char* name, const char* pass) {
  int copied = -1;
  const int rc = sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, nullptr, &copied);
  if (rc == SQLITE_OK) return copied;
  if (rc != SQLITE_BUSY) {
    spdlog::warn("{}: checkpoint ({}) failed: {}", what_, pass, sqlite3_errmsg(db));
  }
  return -1;
}

// Through SQLite's own handle of the file (a descriptor of ours, closed, would drop the
// process's POSIX locks on it). Best effort: pass 2 syncs what this does not.
void WalCheckpointer::SyncFile(sqlite3* db, int file_op) {
  sqlite3_file* file = nullptr;
  if (sqlite3_file_control(db, "main", file_op, &file) != SQLITE_OK || file == nullptr ||
      file->pMethods == nullptr) {
    return;
  }
  if (const int rc = file->pMethods->xSync(file, SQLITE_SYNC_NORMAL); rc != SQLITE_OK) {
    spdlog::warn("{}: sync after the checkpoint failed (SQLite code {})", what_, rc);
  }
}

void WalCheckpointer::Run() {
  std::unique_ptr<SQLite::Database> db;
  try {
    db = std::make_unique<SQLite::Database>(path_, SQLite::OPEN_READWRITE);
  } catch (const SQLite::Exception& e) {
    spdlog::warn(
        "{}: no connection for background checkpoints ({}); commits checkpoint the write-ahead "
        "log themselves",
        what_, e.what());
    inline_fallback_.store(true);
    return;
  }
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return due_ == Pass::kBulk || stopping_; });
    if (stopping_) return;
    lock.unlock();
    // A connection that has not read the database has not opened its WAL either, and a
    // checkpoint on it copies nothing (SQLite answers -1 frames, as for a database not in WAL
    // mode). Without this read, pass 2 did all the copying, on the commit path.
    sqlite3* handle = db->getHandle();
    if (sqlite3_exec(handle, "PRAGMA schema_version", nullptr, nullptr, nullptr) == SQLITE_OK &&
        Checkpoint(handle, nullptr, "bulk") > 0) {
      checkpoints_.fetch_add(1);
      // Pass 2 syncs the WAL before it copies and the database file once it reaches the WAL's
      // end, and those syncs would flush all that pass 1 wrote, on the commit path (2.6-3.3 ms
      // for the database file here, bench/RESULTS.md fourteenth session). Syncing both now
      // leaves pass 2 only its own few pages.
      SyncFile(handle, SQLITE_FCNTL_FILE_POINTER);
      SyncFile(handle, SQLITE_FCNTL_JOURNAL_POINTER);  // in WAL mode, the WAL
    }
    lock.lock();
    // Even after a failure: the rest pass is a whole checkpoint of what is left.
    due_ = Pass::kRest;
  }
}

}  // namespace nodelink::core

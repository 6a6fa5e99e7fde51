// KeyStore: creating, opening, sealing, transactions, checkpoints and store-key changes. The
// identity, trust and channel methods live in key_store_*.cc.
#include "keys/key_store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <map>

#include "core/random.h"
#include "core/status.h"
#include "core/wal_checkpointer.h"
#include "keys/files.h"
#include "keys/seal_contexts.h"
#include "keys/store_errors.h"

namespace nodelink::keys {

namespace {

// PRAGMA application_id: "NLKS". Tells a nodelink store from any other SQLite file.
constexpr int kApplicationId = 0x4e4c4b53;
constexpr std::string_view kFormat = "nodelink-keystore";
constexpr std::string_view kCheckPlain = "nodelink key store check value, version 1";
constexpr char kSqliteMagic[16] = "SQLite format 3";  // with its NUL: 16 bytes

// What the header (table `meta`) says. Written at creation; only the schema version and the
// key fields ever change.
struct Header {
  int schema_version = 0;
  std::string key_source;
  KdfParams kdf;
  Bytes salt;
  Bytes check;
};

// Refuses, without SQLite, what cannot be a store: missing, empty, short or foreign files.
absl::Status CheckLooksLikeStore(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return absl::NotFoundError("no key store at " + path +
                                 "; create one with: nodelink-keys init --store " + path);
    }
    return absl::InternalError("cannot stat " + path + ": " + std::strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return absl::InvalidArgumentError(path + " is not a regular file");
  if (st.st_size < 100) {  // the SQLite header alone is 100 bytes
    return absl::InvalidArgumentError(path + " is " + std::to_string(st.st_size) +
                                      " bytes long: not a nodelink key store (empty or truncated)");
  }
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::InternalError("cannot open " + path + ": " + std::strerror(errno));
  char magic[16] = {0};
  ssize_t n = ::read(fd, magic, sizeof(magic));
  ::close(fd);
  if (n != static_cast<ssize_t>(sizeof(magic)) || std::memcmp(magic, kSqliteMagic, 16) != 0) {
    return absl::InvalidArgumentError(path +
                                      " is not a nodelink key store (not an SQLite database)");
  }
  return absl::OkStatus();
}

absl::StatusOr<Header> ReadHeader(SQLite::Database& db, const std::string& path) {
  absl::Status foreign =
      absl::InvalidArgumentError(path + " is an SQLite database but not a nodelink key store");
  if (db.execAndGet("PRAGMA application_id").getInt() != kApplicationId) return foreign;
  if (!db.tableExists("meta")) return foreign;
  std::map<std::string, Bytes> blobs;
  std::map<std::string, int64_t> ints;
  SQLite::Statement query(db, "SELECT key, value FROM meta");
  while (query.executeStep()) {
    std::string key = query.getColumn(0).getString();
    SQLite::Column value = query.getColumn(1);
    if (value.isInteger()) {
      ints[key] = value.getInt64();
    } else {
      const auto* p = static_cast<const uint8_t*>(value.getBlob());
      blobs[key] = Bytes(p, p + value.getBytes());
    }
  }
  absl::Status corrupt =
      absl::DataLossError("key store " + path + " has an incomplete header; the file is corrupt");
  if (!blobs.count("format") || ToString(blobs["format"]) != kFormat) return foreign;
  if (!ints.count("schema_version") || !blobs.count("key_source") || !blobs.count("salt") ||
      !blobs.count("check") || !ints.count("kdf_opslimit") || !ints.count("kdf_memlimit")) {
    return corrupt;
  }
  Header h;
  h.schema_version = static_cast<int>(ints["schema_version"]);
  h.key_source = ToString(blobs["key_source"]);
  h.kdf.opslimit = static_cast<uint64_t>(ints["kdf_opslimit"]);
  h.kdf.memlimit = static_cast<uint64_t>(ints["kdf_memlimit"]);
  h.salt = blobs["salt"];
  h.check = blobs["check"];
  if (h.schema_version < 0 || (h.key_source != "passphrase" && h.key_source != "key-file")) {
    return corrupt;
  }
  return h;
}

void SetMeta(SQLite::Database& db, const char* key, const std::string& text) {
  SQLite::Statement st(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  st.bind(1, key);
  st.bind(2, text.data(), static_cast<int>(text.size()));  // as BLOB
  st.exec();
}
void SetMeta(SQLite::Database& db, const char* key, ByteView blob) {
  SQLite::Statement st(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  st.bind(1, key);
  st.bind(2, blob.data(), static_cast<int>(blob.size()));
  st.exec();
}
void SetMeta(SQLite::Database& db, const char* key, int64_t value) {
  SQLite::Statement st(db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)");
  st.bind(1, key);
  st.bind(2, value);
  st.exec();
}

// Writes the key fields of the header for `source`.
void WriteKeyFields(SQLite::Database& db, const StoreKeySource& source, const KdfParams& kdf,
                    ByteView salt, ByteView check) {
  SetMeta(db, "key_source", std::string(source.kind()));
  SetMeta(db, "kdf_alg", std::string(source.is_key_file() ? "hkdf-sha256" : "argon2id13"));
  SetMeta(db, "kdf_opslimit", static_cast<int64_t>(source.is_key_file() ? 0 : kdf.opslimit));
  SetMeta(db, "kdf_memlimit", static_cast<int64_t>(source.is_key_file() ? 0 : kdf.memlimit));
  SetMeta(db, "salt", salt);
  SetMeta(db, "check", check);
}

void ConfigureConnection(SQLite::Database& db) {
  // Deleted content is overwritten with zeros (PROTOCOL.md section 5: erasing a secret).
  db.exec("PRAGMA secure_delete = ON");
  db.exec("PRAGMA foreign_keys = ON");
}

// Switches to WAL (writes the file header, so only after the key was verified).
absl::Status EnableWal(SQLite::Database& db, const std::string& path, bool sync_every_commit) {
  std::string mode = db.execAndGet("PRAGMA journal_mode").getString();
  if (mode != "wal") mode = db.execAndGet("PRAGMA journal_mode = WAL").getString();
  if (mode != "wal") {
    return absl::FailedPreconditionError("key store " + path +
                                         " cannot use WAL mode (journal_mode is " + mode + ")");
  }
  db.exec(sync_every_commit ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL");
  // Keeps an idle WAL from growing without bound; checkpoints still erase on demand. Above what
  // one checkpoint cycle writes (core/wal_checkpointer.h: 1,000 frames and those committed
  // during pass 1, ~4.2 MB): at 4 MiB every restart truncated the file, on the commit path.
  db.exec("PRAGMA journal_size_limit = 16777216");
  return absl::OkStatus();
}

void RemoveStoreFiles(const std::string& path) {
  ::unlink(path.c_str());
  ::unlink((path + "-wal").c_str());
  ::unlink((path + "-shm").c_str());
  ::unlink((path + "-journal").c_str());
}

absl::Status WrongKey(const StoreKeySource& source, const std::string& path) {
  if (source.is_key_file()) {
    return absl::PermissionDeniedError("key file " + source.key_file_path() +
                                       " does not open key store " + path +
                                       " (nothing was changed)");
  }
  return absl::PermissionDeniedError("wrong passphrase for key store " + path +
                                     " (nothing was changed)");
}

}  // namespace

class KeyStore::ConnectionLock {
 public:
  explicit ConnectionLock(const KeyStore& store) : store_(store) {
    if (store.db_owner_.load() == std::this_thread::get_id()) {
      core::Die("KeyStore: re-entrant call from inside WithTransaction/WithDatabase");
    }
    store_.db_mu_.lock();
    store_.db_owner_.store(std::this_thread::get_id());
  }
  ~ConnectionLock() {
    store_.db_owner_.store(std::thread::id());
    store_.db_mu_.unlock();
  }
  ConnectionLock(const ConnectionLock&) = delete;
  ConnectionLock& operator=(const ConnectionLock&) = delete;

 private:
  const KeyStore& store_;
};

std::string_view ChannelStateName(ChannelState state) {
  switch (state) {
    case ChannelState::kLiveCurrent:
      return "live-current";
    case ChannelState::kLiveGrace:
      return "live-grace";
    case ChannelState::kTombstone:
      return "tombstone";
  }
  return "tombstone";
}

KeyStore::KeyStore(std::string path, std::unique_ptr<SQLite::Database> db, const core::Clock& clock)
    : path_(std::move(path)),
      clock_(&clock),
      db_(std::move(db)),
      checkpointer_(std::make_unique<core::WalCheckpointer>(*db_, path_, "key store " + path_)) {}

KeyStore::~KeyStore() = default;

KdfParams KeyStore::kdf_params() const {
  std::shared_lock lock(key_mu_);
  return kdf_params_;
}

std::string_view KeyStore::key_source_kind() const {
  std::shared_lock lock(key_mu_);
  return key_source_kind_ == "key-file" ? "key-file" : "passphrase";
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Create(const std::string& path,
                                                           const StoreKeySource& source,
                                                           KdfProfile profile,
                                                           const StoreOptions& options) {
  const std::vector<Migration>& migrations =
      options.migrations != nullptr ? *options.migrations : DefaultMigrations();
  int target = TargetSchemaVersion(migrations);
  if (FileExists(path) || FileExists(path + "-wal")) {
    return absl::AlreadyExistsError(path + " already exists; refusing to overwrite a key store");
  }
  KdfParams kdf = KdfParamsOf(profile);
  Bytes salt = core::RandomBytes(kStoreSaltBytes);
  NL_ASSIGN_OR_RETURN(core::SecretBytes key, DeriveStoreKey(source, salt, kdf));
  auto sealer = std::make_unique<StoreSealer>(std::move(key));
  NL_ASSIGN_OR_RETURN(Bytes check, sealer->Seal(AsBytes(kCheckPlain), kCheckValueContext));

  // Create the file ourselves so it is 0600 from the start; SQLite gives -wal/-shm its mode.
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::InternalError("cannot create " + path + ": " + std::strerror(errno));
  }
  ::close(fd);

  const core::Clock& clock = options.clock != nullptr ? *options.clock : core::SystemClock::Get();
  std::unique_ptr<SQLite::Database> db;
  absl::Status status;
  try {
    db = std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE, options.busy_timeout_ms);
    ConfigureConnection(*db);
    status = EnableWal(*db, path, options.sync_every_commit);
    if (status.ok()) {
      SQLite::Transaction tx(*db, SQLite::TransactionBehavior::IMMEDIATE);
      db->exec("PRAGMA application_id = " + std::to_string(kApplicationId));
      db->exec("CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL)");
      SetMeta(*db, "format", std::string(kFormat));
      SetMeta(*db, "schema_version", int64_t{0});
      SetMeta(*db, "created_ms", static_cast<int64_t>(clock.NowMs()));
      WriteKeyFields(*db, source, kdf, salt, check);
      status = RunMigrations(*db, *sealer, 0, migrations);
      if (status.ok()) tx.commit();
    }
  } catch (const SQLite::Exception& e) {
    status = SqliteError(e, path);
  } catch (const std::exception& e) {
    status = absl::InternalError("creating key store " + path + ": " + e.what());
  }
  if (!status.ok()) {
    db.reset();
    RemoveStoreFiles(path);
    return status;
  }
  std::unique_ptr<KeyStore> store(new KeyStore(path, std::move(db), clock));
  store->schema_version_ = target;
  store->sealer_ = std::move(sealer);
  store->salt_ = std::move(salt);
  store->kdf_params_ = source.is_key_file() ? KdfParams{} : kdf;
  store->key_source_kind_ = std::string(source.kind());
  return store;
}

absl::StatusOr<std::unique_ptr<KeyStore>> KeyStore::Open(const std::string& path,
                                                         const StoreKeySource& source,
                                                         const StoreOptions& options) {
  const std::vector<Migration>& migrations =
      options.migrations != nullptr ? *options.migrations : DefaultMigrations();
  int target = TargetSchemaVersion(migrations);
  NL_RETURN_IF_ERROR(CheckLooksLikeStore(path));
  const core::Clock& clock = options.clock != nullptr ? *options.clock : core::SystemClock::Get();
  try {
    auto db =
        std::make_unique<SQLite::Database>(path, SQLite::OPEN_READWRITE, options.busy_timeout_ms);
    // Closing the last connection checkpoints the WAL into the file and removes it. For a WAL
    // that a crashed process left behind, that would write to the file before the key is
    // verified; so then closing must not checkpoint until the open succeeded. (An empty or
    // missing WAL writes nothing, and the clean close removes the -wal/-shm files it made.)
    struct stat wal_stat {};
    if (::stat((path + "-wal").c_str(), &wal_stat) == 0 && wal_stat.st_size > 0) {
      sqlite3_db_config(db->getHandle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
    }
    ConfigureConnection(*db);
    // 1. Read-only checks. Nothing below writes until the key is verified.
    NL_ASSIGN_OR_RETURN(Header header, ReadHeader(*db, path));
    if (header.schema_version > target) {
      return absl::FailedPreconditionError(
          "key store " + path + " has schema version " + std::to_string(header.schema_version) +
          ", newer than this build supports (" + std::to_string(target) +
          "); use a newer nodelink (nothing was changed)");
    }
    if (header.key_source != source.kind()) {
      return absl::InvalidArgumentError(
          "key store " + path + " is sealed with a " + header.key_source + ", not a " +
          std::string(source.kind()) +
          (header.key_source == "key-file"
               ? "; pass --key-file"
               : "; set NODELINK_PASSPHRASE or pass --passphrase-file"));
    }
    if (!source.is_key_file()) {
      absl::Status kdf_ok = CheckKdfParams(header.kdf);
      if (!kdf_ok.ok()) {
        return absl::DataLossError("key store " + path + ": " + std::string(kdf_ok.message()));
      }
    }
    auto key = DeriveStoreKey(source, header.salt, header.kdf);
    if (!key.ok()) {
      if (key.status().code() == absl::StatusCode::kInvalidArgument && !source.is_key_file()) {
        return absl::DataLossError("key store " + path + ": " +
                                   std::string(key.status().message()));
      }
      return key.status();
    }
    auto sealer = std::make_unique<StoreSealer>(*std::move(key));
    auto check = sealer->Unseal(header.check, kCheckValueContext);
    if (!check.ok()) return WrongKey(source, path);
    if (!core::ConstantTimeEquals(check->ExposeSecret(), AsBytes(kCheckPlain))) {
      return absl::DataLossError("key store " + path + " has a corrupt check value");
    }
    std::string integrity = db->execAndGet("PRAGMA quick_check").getString();
    if (integrity != "ok") {
      return absl::DataLossError("key store " + path + " is corrupt (" + integrity +
                                 "); restore it from a backup, then drop its channels "
                                 "(nodelink-keys channels drop --all)");
    }
    // 2. Writes: WAL, the write lock (fails cleanly if another process holds it), migrations.
    NL_RETURN_IF_ERROR(EnableWal(*db, path, options.sync_every_commit));
    int version = header.schema_version;
    {
      SQLite::Transaction tx(*db, SQLite::TransactionBehavior::IMMEDIATE);
      SQLite::Statement query(*db, "SELECT value FROM meta WHERE key = 'schema_version'");
      if (query.executeStep()) version = query.getColumn(0).getInt();
      if (version > target) {
        return absl::FailedPreconditionError("key store " + path +
                                             " was migrated by a newer nodelink meanwhile");
      }
      if (version < target) {
        NL_RETURN_IF_ERROR(RunMigrations(*db, *sealer, version, migrations));
        version = target;
      }
      tx.commit();
    }
    sqlite3_db_config(db->getHandle(), SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 0, nullptr);
    std::unique_ptr<KeyStore> store(new KeyStore(path, std::move(db), clock));
    store->schema_version_ = version;
    store->sealer_ = std::move(sealer);
    store->salt_ = std::move(header.salt);
    store->kdf_params_ = source.is_key_file() ? KdfParams{} : header.kdf;
    store->key_source_kind_ = header.key_source;
    return store;
  } catch (const SQLite::Exception& e) {
    return SqliteError(e, path);
  } catch (const std::exception& e) {
    return absl::InternalError("opening key store " + path + ": " + e.what());
  }
}

absl::StatusOr<Bytes> KeyStore::Seal(ByteView plain, std::string_view context) const {
  std::shared_lock lock(key_mu_);
  return sealer_->Seal(plain, context);
}

absl::StatusOr<core::SecretBytes> KeyStore::Unseal(ByteView sealed,
                                                   std::string_view context) const {
  std::shared_lock lock(key_mu_);
  return sealer_->Unseal(sealed, context);
}

absl::Status KeyStore::WithTransaction(const std::function<absl::Status(SQLite::Database&)>& fn) {
  ConnectionLock lock(*this);
  try {
    SQLite::Transaction tx(*db_, SQLite::TransactionBehavior::IMMEDIATE);
    // Values sealed under a key another process has replaced would be unreadable later.
    if (!salt_query_) {
      salt_query_ =
          std::make_unique<SQLite::Statement>(*db_, "SELECT value FROM meta WHERE key = 'salt'");
    }
    SQLite::Statement& salt = *salt_query_;
    salt.reset();
    bool same_key = false;
    if (salt.executeStep()) {
      SQLite::Column c = salt.getColumn(0);
      const auto* p = static_cast<const uint8_t*>(c.getBlob());
      std::shared_lock key_lock(key_mu_);
      same_key = Bytes(p, p + c.getBytes()) == salt_;
    }
    if (!same_key) {
      return absl::FailedPreconditionError(
          "the store key of " + path_ +
          " was changed by another process (passphrase change); restart to use the new one");
    }
    salt.reset();
    absl::Status status = fn(*db_);
    if (status.ok()) tx.commit();
    return status;  // the Transaction destructor rolls back otherwise
  } catch (const SQLite::Exception& e) {
    return SqliteError(e, path_);
  } catch (const std::exception& e) {
    return absl::InternalError("key store " + path_ + ": " + e.what());
  }
}

absl::Status KeyStore::WithDatabase(
    const std::function<absl::Status(SQLite::Database&)>& fn) const {
  ConnectionLock lock(*this);
  try {
    return fn(*db_);
  } catch (const SQLite::Exception& e) {
    return SqliteError(e, path_);
  } catch (const std::exception& e) {
    return absl::InternalError("key store " + path_ + ": " + e.what());
  }
}

absl::Status KeyStore::CheckpointErased() {
  ConnectionLock lock(*this);
  try {
    // Waits (busy timeout) for readers and writers of other connections, then copies every frame
    // into the file and truncates the WAL to zero bytes.
    SQLite::Statement checkpoint(*db_, "PRAGMA wal_checkpoint(TRUNCATE)");
    if (checkpoint.executeStep() && checkpoint.getColumn(0).getInt() != 0) {
      return absl::UnavailableError(
          "another process kept the write-ahead log of " + path_ +
          " busy: erased secrets remain in it until the next checkpoint; run the command again "
          "when it is idle");
    }
    return absl::OkStatus();
  } catch (const SQLite::Exception& e) {
    return SqliteError(e, path_);
  }
}

absl::Status KeyStore::ChangeStoreKey(const StoreKeySource& new_source, KdfProfile profile) {
  KdfParams kdf = KdfParamsOf(profile);
  Bytes salt = core::RandomBytes(kStoreSaltBytes);
  NL_ASSIGN_OR_RETURN(core::SecretBytes key, DeriveStoreKey(new_source, salt, kdf));
  auto sealer = std::make_unique<StoreSealer>(std::move(key));
  NL_ASSIGN_OR_RETURN(Bytes check, sealer->Seal(AsBytes(kCheckPlain), kCheckValueContext));
  int resealed = 0;
  absl::Status status = WithTransaction([&](SQLite::Database& db) -> absl::Status {
    std::shared_lock key_lock(key_mu_);
    for (const SealedColumn& col : SealedColumns()) {
      std::vector<std::pair<int64_t, Bytes>> updates;
      SQLite::Statement query(db, std::string("SELECT rowid, ") + col.column + ", " +
                                      col.context_sql + " FROM " + col.table + " WHERE " +
                                      col.column + " IS NOT NULL AND length(" + col.column +
                                      ") > 0");  // empty: the value is in a body file
      while (query.executeStep()) {
        SQLite::Column blob = query.getColumn(1);
        const auto* p = static_cast<const uint8_t*>(blob.getBlob());
        std::string context = query.getColumn(2).getString();
        auto plain = sealer_->Unseal(ByteView(p, static_cast<size_t>(blob.getBytes())), context);
        if (!plain.ok()) {
          return absl::DataLossError(std::string("cannot re-seal ") + col.table + "." + col.column +
                                     ": " + std::string(plain.status().message()) +
                                     " (nothing was changed)");
        }
        NL_ASSIGN_OR_RETURN(Bytes resealed_value, sealer->Seal(plain->ExposeSecret(), context));
        updates.emplace_back(query.getColumn(0).getInt64(), std::move(resealed_value));
      }
      SQLite::Statement update(
          db, std::string("UPDATE ") + col.table + " SET " + col.column + " = ? WHERE rowid = ?");
      for (auto& [rowid, value] : updates) {
        update.bind(1, value.data(), static_cast<int>(value.size()));
        update.bind(2, rowid);
        update.exec();
        update.reset();
        ++resealed;
      }
    }
    WriteKeyFields(db, new_source, kdf, salt, check);
    return absl::OkStatus();
  });
  if (!status.ok()) return status;
  {
    std::unique_lock key_lock(key_mu_);
    sealer_ = std::move(sealer);
    salt_ = std::move(salt);
    kdf_params_ = new_source.is_key_file() ? KdfParams{} : kdf;
    key_source_kind_ = std::string(new_source.kind());
  }
  absl::Status checkpoint = CheckpointErased();
  if (!checkpoint.ok()) {
    return absl::UnavailableError("the store key was changed (" + std::to_string(resealed) +
                                  " values re-sealed), but " + std::string(checkpoint.message()));
  }
  return absl::OkStatus();
}

}  // namespace nodelink::keys

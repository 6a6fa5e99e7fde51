#include <doctest/doctest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "core/random.h"
#include "core/wal_checkpointer.h"
#include "keys/cert_info.h"
#include "keys/files.h"
#include "keys/pem.h"
#include "keys/seal_contexts.h"
#include "keys/store_sql.h"
#include "process/wait_for.h"
#include "store_test_support.h"

namespace nodelink::keys {
namespace {

using testing::CreateStore;
using testing::FastOptions;
using testing::OpenStore;
using testing::Pass;
using testing::ReadAll;
using testing::TempDir;
using testing::WriteAll;

// The main file and its WAL, byte for byte.
struct Snapshot {
  Bytes db, wal;
  explicit Snapshot(const std::string& path) : db(ReadAll(path)), wal(ReadAll(path + "-wal")) {}
  bool operator==(const Snapshot& o) const { return db == o.db && wal == o.wal; }
};

TEST_CASE("create then open; the header records the schema and the KDF profile") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  {
    auto store = CreateStore(path, clock);
    CHECK(store->schema_version() == kStoreSchemaVersion);
    CHECK(store->key_source_kind() == "passphrase");
    CHECK_FALSE(store->HasIdentity());
  }
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto store = OpenStore(path, clock);
  CHECK(store->kdf_params().opslimit == KdfParamsOf(KdfProfile::kMinimal).opslimit);
  CHECK(store->kdf_params().memlimit == KdfParamsOf(KdfProfile::kMinimal).memlimit);
  auto again = KeyStore::Create(path, Pass("x"), KdfProfile::kMinimal, FastOptions(clock));
  CHECK(again.status().code() == absl::StatusCode::kAlreadyExists);
}

TEST_CASE("the WAL is checkpointed off the commit path and restarts under back-to-back commits") {
  TempDir dir;
  core::ManualClock clock;
  const std::string path = dir.File("store.db");
  // Each commit writes at least one frame, so a WAL that never restarted would hold them all.
  // Commits go on until it restarted twice: how many that takes depends on how soon the thread's
  // pass ends (the machine's load), so the cap is only for a broken run.
  constexpr int kMaxCommits = 30 * core::WalCheckpointer::kThresholdFrames;
  int commits = 0;
  {
    auto store = CreateStore(path, clock);
    const core::WalCheckpointer& wal = store->wal_checkpointer();
    for (; commits < kMaxCommits && wal.restarts() < 2; ++commits) {
      REQUIRE(store
                  ->WithTransaction([&](SQLite::Database& db) {
                    SQLite::Statement put(db, "INSERT INTO settings(key, value) VALUES(?, ?)");
                    put.bind(1, "k" + std::to_string(commits));
                    put.bind(2, std::string(64, 'v'));
                    put.exec();
                    return absl::OkStatus();
                  })
                  .ok());
    }
    CHECK(wal.restarts() >= 2);
    CHECK(wal.checkpoints() > 0);  // pass 1 copied frames: pass 2 did not do it all
  }
  auto store = OpenStore(path, clock);
  CHECK(store
            ->WithDatabase([&](SQLite::Database& db) {
              CHECK(db.execAndGet("SELECT COUNT(*) FROM settings WHERE key LIKE 'k%'").getInt() ==
                    commits);
              return absl::OkStatus();
            })
            .ok());
}

TEST_CASE("commits are fsynced only when asked (sync_every_commit: synchronous=FULL)") {
  TempDir dir;
  core::ManualClock clock;
  const std::string path = dir.File("store.db");
  auto synchronous = [](KeyStore& store) {
    int mode = -1;
    REQUIRE(store
                .WithDatabase([&](SQLite::Database& db) {
                  mode = db.execAndGet("PRAGMA synchronous").getInt();
                  return absl::OkStatus();
                })
                .ok());
    return mode;
  };
  constexpr int kNormal = 1, kFull = 2;  // SQLite's values
  StoreOptions full = FastOptions(clock);
  full.sync_every_commit = true;
  {
    auto created = KeyStore::Create(path, Pass("p"), KdfProfile::kMinimal, full);
    REQUIRE(created.ok());
    CHECK(synchronous(**created) == kFull);
  }
  CHECK(synchronous(*OpenStore(path, clock, "p")) == kNormal);  // the default
  auto opened = KeyStore::Open(path, Pass("p"), full);
  REQUIRE(opened.ok());
  CHECK(synchronous(**opened) == kFull);
}

TEST_CASE("the KDF profile chosen at creation is stored and reused on open") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  {
    auto store = KeyStore::Create(path, Pass("pw"), KdfProfile::kInteractive, FastOptions(clock));
    REQUIRE(store.ok());
  }
  auto store = KeyStore::Open(path, Pass("pw"), FastOptions(clock));
  REQUIRE(store.ok());
  CHECK((*store)->kdf_params().memlimit == KdfParamsOf(KdfProfile::kInteractive).memlimit);
  CHECK((*store)->kdf_params().opslimit == KdfParamsOf(KdfProfile::kInteractive).opslimit);
}

TEST_CASE("a wrong passphrase fails without modifying the file") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  {
    auto store = CreateStore(path, clock);
    REQUIRE(store->SetIdentity("fed", "node-a", testing::NewKey()).ok());
  }
  Snapshot before(path);
  auto wrong = KeyStore::Open(path, Pass("wrong horse"), FastOptions(clock));
  REQUIRE_FALSE(wrong.ok());
  CHECK(wrong.status().code() == absl::StatusCode::kPermissionDenied);
  CHECK(std::string(wrong.status().message()).find("wrong passphrase") != std::string::npos);
  CHECK(Snapshot(path) == before);
  CHECK_FALSE(FileExists(path + "-wal"));  // no stray files either
  CHECK_FALSE(FileExists(path + "-shm"));
  CHECK_FALSE(testing::FileContains(path, AsBytes("wrong horse")));
  CHECK(OpenStore(path, clock)->HasIdentity());
}

TEST_CASE("a wrong passphrase leaves a crashed writer's WAL alone too") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  CreateStore(path, clock).reset();
  // A child writes and dies without closing: its frames stay in the WAL.
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    auto* db = new SQLite::Database(path, SQLite::OPEN_READWRITE);
    db->exec("INSERT INTO settings VALUES('crashed', x'01')");
    ::_exit(0);  // no destructor, no checkpoint
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  REQUIRE(WIFEXITED(status));
  Snapshot before(path);
  REQUIRE_FALSE(before.wal.empty());
  CHECK(KeyStore::Open(path, Pass("wrong"), FastOptions(clock)).status().code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(Snapshot(path) == before);
  // The right passphrase recovers the committed write.
  auto store = OpenStore(path, clock);
  CHECK(
      store
          ->WithDatabase([](SQLite::Database& db) {
            return db.execAndGet("SELECT count(*) FROM settings WHERE key = 'crashed'").getInt() ==
                           1
                       ? absl::OkStatus()
                       : absl::NotFoundError("lost");
          })
          .ok());
}

TEST_CASE("garbage, empty, truncated, foreign and missing files are refused cleanly") {
  TempDir dir;
  core::ManualClock clock;
  auto open = [&](const std::string& path) {
    return KeyStore::Open(path, Pass("correct horse"), FastOptions(clock)).status();
  };

  CHECK(open(dir.File("missing.db")).code() == absl::StatusCode::kNotFound);

  std::string garbage = dir.File("garbage.db");
  Bytes random = core::RandomBytes(8192);
  WriteAll(garbage, random);
  absl::Status g = open(garbage);
  CHECK(g.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(g.message()).find("not a nodelink key store") != std::string::npos);
  CHECK(ReadAll(garbage) == random);

  std::string empty = dir.File("empty.db");
  WriteAll(empty, Bytes{});
  CHECK(open(empty).code() == absl::StatusCode::kInvalidArgument);
  CHECK(ReadAll(empty).empty());

  // An SQLite header followed by garbage.
  std::string fake = dir.File("fake.db");
  Bytes fake_bytes = ToBytes(std::string("SQLite format 3") + '\0');
  Bytes tail = core::RandomBytes(4096);
  fake_bytes.insert(fake_bytes.end(), tail.begin(), tail.end());
  WriteAll(fake, fake_bytes);
  absl::Status f = open(fake);
  CHECK_FALSE(f.ok());
  CHECK(ReadAll(fake) == fake_bytes);

  // A real SQLite database that is not a key store.
  std::string foreign = dir.File("foreign.db");
  {
    SQLite::Database db(foreign, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE t(x); INSERT INTO t VALUES(1)");
  }
  Bytes foreign_bytes = ReadAll(foreign);
  absl::Status fo = open(foreign);
  CHECK(fo.code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(fo.message()).find("not a nodelink key store") != std::string::npos);
  CHECK(ReadAll(foreign) == foreign_bytes);

  // A real store, truncated to half and to its first page.
  std::string real = dir.File("real.db");
  {
    auto store = CreateStore(real, clock);
    REQUIRE(store->SetIdentity("fed", "node-a", testing::NewKey()).ok());
  }
  Bytes full = ReadAll(real);
  REQUIRE(full.size() > 8192);
  for (size_t keep : {full.size() / 2, size_t{4096}, size_t{1000}, size_t{50}}) {
    CAPTURE(keep);
    std::string truncated = dir.File("truncated-" + std::to_string(keep) + ".db");
    Bytes part(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(keep));
    WriteAll(truncated, part);
    absl::Status t = open(truncated);
    CHECK_FALSE(t.ok());
    CHECK(t.code() != absl::StatusCode::kInternal);
    CHECK(ReadAll(truncated) == part);
  }
}

TEST_CASE("a store from a newer schema version is refused and left alone") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  CreateStore(path, clock).reset();
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec("UPDATE meta SET value = 99 WHERE key = 'schema_version'");
  }
  Snapshot before(path);
  auto store = KeyStore::Open(path, Pass("correct horse"), FastOptions(clock));
  REQUIRE_FALSE(store.ok());
  CHECK(store.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(store.status().message()).find("newer") != std::string::npos);
  CHECK(Snapshot(path) == before);
}

TEST_CASE("a database locked by another connection gives a clear error and changes nothing") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  CreateStore(path, clock).reset();
  Snapshot before(path);
  {
    SQLite::Database other(path, SQLite::OPEN_READWRITE);
    other.exec("BEGIN IMMEDIATE");  // holds the write lock
    auto store = KeyStore::Open(path, Pass("correct horse"), FastOptions(clock));
    REQUIRE_FALSE(store.ok());
    CHECK(store.status().code() == absl::StatusCode::kUnavailable);
    CHECK(std::string(store.status().message()).find("locked") != std::string::npos);
    other.exec("ROLLBACK");
  }
  CHECK(Snapshot(path).db == before.db);

  // An open store meets the lock on its next write.
  auto store = OpenStore(path, clock);
  SQLite::Database other(path, SQLite::OPEN_READWRITE);
  other.exec("BEGIN IMMEDIATE");
  absl::Status locked = store->SetPinPolicy(PinPolicy::kPinned);
  CHECK(locked.code() == absl::StatusCode::kUnavailable);
  other.exec("ROLLBACK");
  CHECK(store->SetPinPolicy(PinPolicy::kPinned).ok());
}

TEST_CASE("key files: 0600, 32 bytes, and the store refuses the wrong kind of key") {
  TempDir dir;
  core::ManualClock clock;
  std::string key_file = dir.File("store.key");
  REQUIRE(CreateKeyFile(key_file).ok());
  struct stat st {};
  REQUIRE(::stat(key_file.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(ReadAll(key_file).size() == kKeyFileBytes);
  CHECK(CreateKeyFile(key_file).code() == absl::StatusCode::kAlreadyExists);

  std::string path = dir.File("store.db");
  {
    auto store = KeyStore::Create(path, StoreKeySource::KeyFile(key_file), KdfProfile::kModerate,
                                  FastOptions(clock));
    REQUIRE(store.ok());
    CHECK((*store)->key_source_kind() == "key-file");
  }
  CHECK(KeyStore::Open(path, StoreKeySource::KeyFile(key_file), FastOptions(clock)).ok());
  Snapshot before(path);
  auto with_pass = KeyStore::Open(path, Pass("correct horse"), FastOptions(clock));
  CHECK(with_pass.status().code() == absl::StatusCode::kInvalidArgument);
  CHECK(std::string(with_pass.status().message()).find("--key-file") != std::string::npos);

  std::string other_key = dir.File("other.key");
  REQUIRE(CreateKeyFile(other_key).ok());
  CHECK(KeyStore::Open(path, StoreKeySource::KeyFile(other_key), FastOptions(clock))
            .status()
            .code() == absl::StatusCode::kPermissionDenied);
  ::chmod(other_key.c_str(), 0644);
  CHECK(KeyStore::Open(path, StoreKeySource::KeyFile(other_key), FastOptions(clock))
            .status()
            .code() == absl::StatusCode::kFailedPrecondition);
  std::string short_key = dir.File("short.key");
  WriteAll(short_key, Bytes(16, 1));
  ::chmod(short_key.c_str(), 0600);
  CHECK(KeyStore::Open(path, StoreKeySource::KeyFile(short_key), FastOptions(clock))
            .status()
            .code() == absl::StatusCode::kInvalidArgument);
  CHECK(Snapshot(path) == before);
}

TEST_CASE("Seal binds the context; tampered, moved and foreign values do not open") {
  TempDir dir;
  core::ManualClock clock;
  auto store = CreateStore(dir.File("a.db"), clock);
  auto other = CreateStore(dir.File("b.db"), clock);  // same passphrase, other salt
  Bytes plain = ToBytes("a secret value");
  auto sealed = store->Seal(plain, "channel:p:00");
  REQUIRE(sealed.ok());
  CHECK(sealed->size() == plain.size() + kSealOverheadBytes);
  CHECK_FALSE(testing::Contains(*sealed, plain));
  auto opened = store->Unseal(*sealed, "channel:p:00");
  REQUIRE(opened.ok());
  CHECK(ToString(opened->ExposeSecret()) == "a secret value");
  CHECK(store->Unseal(*sealed, "channel:p:01").status().code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(other->Unseal(*sealed, "channel:p:00").status().code() ==
        absl::StatusCode::kPermissionDenied);
  Bytes tampered = *sealed;
  tampered[tampered.size() / 2] ^= 1;
  CHECK_FALSE(store->Unseal(tampered, "channel:p:00").ok());
  CHECK(store->Unseal(Bytes(10, 1), "channel:p:00").status().code() ==
        absl::StatusCode::kInvalidArgument);
  CHECK(*store->Seal({}, "empty") != *store->Seal({}, "empty"));  // random nonces
  CHECK(store->Unseal(*store->Seal({}, "empty"), "empty")->empty());
}

TEST_CASE(
    "WithTransaction commits on OK, rolls back on error, and turns exceptions into statuses") {
  TempDir dir;
  core::ManualClock clock;
  auto store = CreateStore(dir.File("store.db"), clock);
  auto count = [&] {
    int n = -1;
    REQUIRE(store
                ->WithDatabase([&](SQLite::Database& db) {
                  n = db.execAndGet("SELECT count(*) FROM settings").getInt();
                  return absl::OkStatus();
                })
                .ok());
    return n;
  };
  CHECK(store
            ->WithTransaction([](SQLite::Database& db) {
              db.exec("INSERT INTO settings VALUES('a', x'01')");
              return absl::OkStatus();
            })
            .ok());
  CHECK(count() == 1);
  absl::Status failed = store->WithTransaction([](SQLite::Database& db) {
    db.exec("INSERT INTO settings VALUES('b', x'01')");
    return absl::AbortedError("changed my mind");
  });
  CHECK(failed.code() == absl::StatusCode::kAborted);
  CHECK(count() == 1);
  absl::Status thrown = store->WithTransaction([](SQLite::Database& db) {
    db.exec("INSERT INTO settings VALUES('c', x'01')");
    db.exec("INSERT INTO no_such_table VALUES(1)");
    return absl::OkStatus();
  });
  CHECK_FALSE(thrown.ok());
  CHECK(count() == 1);

  // Concurrent writers through one store serialize on its mutex.
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        absl::Status s = store->WithTransaction([&](SQLite::Database& db) {
          SQLite::Statement insert(db, "INSERT INTO settings VALUES(?, x'00')");
          insert.bind(1, "k" + std::to_string(t) + "-" + std::to_string(i));
          insert.exec();
          return absl::OkStatus();
        });
        CHECK(s.ok());
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(count() == 101);
}

TEST_CASE("identity: stored sealed, loaded back, once only; CSR from the stored key") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  core::EcPrivateKey key = testing::NewKey();
  core::SecretBytes secret_scalar = *key.ExportScalar();
  Bytes scalar(secret_scalar.ExposeSecret().begin(), secret_scalar.ExposeSecret().end());
  {
    auto store = CreateStore(path, clock);
    CHECK(store->LoadIdentity().status().code() == absl::StatusCode::kNotFound);
    CHECK(store->SetIdentity("fed", "bad id", key).code() == absl::StatusCode::kInvalidArgument);
    REQUIRE(store->SetIdentity("fed", "node-a", key).ok());
    CHECK(store->SetIdentity("fed", "node-b", testing::NewKey()).code() ==
          absl::StatusCode::kAlreadyExists);
  }
  auto store = OpenStore(path, clock);
  auto id = store->LoadIdentity();
  REQUIRE(id.ok());
  CHECK(id->federation == "fed");
  CHECK(id->node_id == "node-a");
  CHECK(id->key.PublicKey() == key.PublicKey());
  CHECK(id->cert_chain_der.empty());
  auto csr = store->CreateIdentityCsr();
  REQUIRE(csr.ok());
  auto info = CheckCsr(*csr);
  REQUIRE(info.ok());
  CHECK(info->key == key.PublicKey());
  CHECK(info->common_name == "node-a");
  CHECK_FALSE(testing::FileContains(path, scalar));
  CHECK_FALSE(testing::FileContains(path + "-wal", scalar));
}

TEST_CASE("certificate import: checked against the anchors, the identity and the clock") {
  TempDir dir;
  core::ManualClock clock;
  CaCredentials ca = testing::MakeCa("fed", clock);
  auto store = CreateStore(dir.File("store.db"), clock);
  core::EcPrivateKey key = testing::NewKey();
  REQUIRE(store->SetIdentity("fed", "node-a", key).ok());
  auto csr = store->CreateIdentityCsr();
  REQUIRE(csr.ok());
  Bytes cert = *IssueParticipantCert(*csr, ca, "fed", "node-a", clock);

  CHECK(store->ImportCertificateChain({cert}, clock.NowMs()).code() ==
        absl::StatusCode::kFailedPrecondition);  // no anchor yet
  CHECK(store->ExportTlsMaterial().status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK_FALSE(store->AddAnchor(AnchorRole::kFederation, cert).ok());  // not a CA
  REQUIRE(store->AddAnchor(AnchorRole::kFederation, ca.cert_der).ok());
  REQUIRE(store->AddAnchor(AnchorRole::kFederation, ca.cert_der).ok());  // idempotent
  CHECK(store->Anchors(AnchorRole::kFederation)->size() == 1);

  Bytes other_key_cert = testing::IssueFromCsr(ca, testing::NewKey(), "fed", "node-a", clock);
  CHECK(store->ImportCertificateChain({other_key_cert}, clock.NowMs()).code() ==
        absl::StatusCode::kInvalidArgument);
  auto other_node = IssueParticipantCert(*csr, ca, "fed", "node-b", clock);
  CHECK_FALSE(store->ImportCertificateChain({*other_node}, clock.NowMs()).ok());
  CHECK_FALSE(store->ImportCertificateChain({cert}, clock.NowMs() + 91ull * 86400000).ok());
  REQUIRE(store->ImportCertificateChain({cert}, clock.NowMs()).ok());
  CHECK(store->LoadIdentity()->cert_chain_der == std::vector<Bytes>{cert});

  auto tls = store->ExportTlsMaterial();
  REQUIRE(tls.ok());
  CHECK(*DecodePemOrDer(tls->ca_pem, kPemCertificate) == std::vector<Bytes>{ca.cert_der});
  CHECK(*DecodePemOrDer(tls->cert_chain_pem, kPemCertificate) == std::vector<Bytes>{cert});
  auto key_back = core::EcPrivateKey::FromPem(tls->key_pem);
  REQUIRE(key_back.ok());
  CHECK(key_back->PublicKey() == key.PublicKey());
  CHECK(tls->crl_pem.empty());

  // A separate hub CA becomes the TLS root; the federation CA stays the peers' anchor.
  CaCredentials hub_ca = testing::MakeCa("hubs", clock);
  REQUIRE(store->AddAnchor(AnchorRole::kHub, hub_ca.cert_der).ok());
  CHECK(*DecodePemOrDer(store->ExportTlsMaterial()->ca_pem, kPemCertificate) ==
        std::vector<Bytes>{hub_ca.cert_der});
  auto verifier = store->MakeParticipantVerifier();
  REQUIRE(verifier.ok());
  CHECK(verifier->anchor_count() == 1);
}

TEST_CASE("CRLs: only from an anchor, never rolled back, and used by the store's verifier") {
  TempDir dir;
  core::ManualClock clock;
  CaCredentials ca = testing::MakeCa("fed", clock);
  auto store = CreateStore(dir.File("store.db"), clock);
  auto crl1 = CreateCrl(ca, {}, 1, clock, 30);
  REQUIRE(crl1.ok());
  CHECK(store->ImportCrl(*crl1).code() == absl::StatusCode::kFailedPrecondition);
  REQUIRE(store->AddAnchor(AnchorRole::kFederation, ca.cert_der).ok());
  CaCredentials other = testing::MakeCa("fed", clock);
  CHECK_FALSE(store->ImportCrl(*CreateCrl(other, {}, 1, clock, 30)).ok());
  REQUIRE(store->ImportCrl(*crl1).ok());
  clock.Advance(60'000);
  core::EcPrivateKey peer = testing::NewKey();
  Bytes peer_cert = testing::IssueFromCsr(ca, peer, "fed", "peer", clock);
  auto serial = DescribeCertificate(peer_cert)->serial;
  auto crl2 = CreateCrl(ca, {{serial, clock.NowMs()}}, 2, clock, 30);
  REQUIRE(store->ImportCrl(*crl2).ok());
  CHECK(store->ImportCrl(*crl1).code() == absl::StatusCode::kFailedPrecondition);
  CHECK(store->Crls()->size() == 1);
  auto verifier = store->MakeParticipantVerifier();
  REQUIRE(verifier.ok());
  CHECK(verifier->Check({peer_cert}, "fed", "peer", clock.NowMs() + 1000).error ==
        CertError::kRevoked);
}

TEST_CASE("migrations: a store is migrated to the next version after the key check, atomically") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  CreateStore(path, clock).reset();

  constexpr int kNow = kStoreSchemaVersion;
  std::vector<Migration> v2 = DefaultMigrations();
  v2.push_back({kNow, kNow + 1, "test table", [](SQLite::Database& db, const StoreSealer& sealer) {
                  db.exec("CREATE TABLE migrated(x BLOB)");
                  auto sealed = sealer.Seal(AsBytes("moved"), "migrated");
                  if (!sealed.ok()) return sealed.status();
                  SQLite::Statement insert(db, "INSERT INTO migrated VALUES(?)");
                  BindBlob(insert, 1, *sealed);
                  insert.exec();
                  return absl::OkStatus();
                }});
  std::vector<Migration> failing = DefaultMigrations();
  failing.push_back({kNow, kNow + 1, "fails halfway", [](SQLite::Database& db, const StoreSealer&) {
                       db.exec("CREATE TABLE half(x)");
                       return absl::InternalError("disk on fire");
                     }});
  StoreOptions options = FastOptions(clock);

  // A wrong passphrase runs no migration.
  options.migrations = &v2;
  Snapshot before(path);
  CHECK(KeyStore::Open(path, Pass("wrong"), options).status().code() ==
        absl::StatusCode::kPermissionDenied);
  CHECK(Snapshot(path) == before);

  // A failing migration leaves the version as it was and no trace.
  options.migrations = &failing;
  auto failed = KeyStore::Open(path, Pass("correct horse"), options);
  REQUIRE_FALSE(failed.ok());
  CHECK(std::string(failed.status().message()).find("disk on fire") != std::string::npos);
  {
    auto store = OpenStore(path, clock);
    CHECK(store->schema_version() == kNow);
    CHECK(store
              ->WithDatabase([](SQLite::Database& db) {
                return db.tableExists("half") ? absl::InternalError("half-applied")
                                              : absl::OkStatus();
              })
              .ok());
  }

  options.migrations = &v2;
  {
    auto store = KeyStore::Open(path, Pass("correct horse"), options);
    REQUIRE(store.ok());
    CHECK((*store)->schema_version() == kNow + 1);
    Bytes sealed;
    REQUIRE((*store)
                ->WithDatabase([&](SQLite::Database& db) {
                  sealed = BlobOf(db.execAndGet("SELECT x FROM migrated"));
                  return absl::OkStatus();
                })
                .ok());
    CHECK(ToString((*store)->Unseal(sealed, "migrated")->ExposeSecret()) == "moved");
  }
  // This build now refuses the newer store.
  CHECK(KeyStore::Open(path, Pass("correct horse"), FastOptions(clock)).status().code() ==
        absl::StatusCode::kFailedPrecondition);
  // A new store created with the longer registry goes through every step.
  auto fresh = KeyStore::Create(dir.File("fresh.db"), Pass("pw"), KdfProfile::kMinimal, options);
  REQUIRE(fresh.ok());
  CHECK((*fresh)->schema_version() == kNow + 1);
}

// A store created at schema `version` (the first `version` default migrations), then opened by
// this build, which migrates it to kStoreSchemaVersion.
std::unique_ptr<KeyStore> OpenMigratedFrom(int version, TempDir& dir, core::ManualClock& clock) {
  const std::string path = dir.File("store.db");
  std::vector<Migration> old(DefaultMigrations().begin(), DefaultMigrations().begin() + version);
  StoreOptions options = FastOptions(clock);
  options.migrations = &old;
  REQUIRE(KeyStore::Create(path, Pass("pw"), KdfProfile::kMinimal, options).ok());
  auto store = KeyStore::Open(path, Pass("pw"), FastOptions(clock));
  REQUIRE(store.ok());
  CHECK((*store)->schema_version() == kStoreSchemaVersion);
  return *std::move(store);
}

TEST_CASE("migrations: a version 1 store gains the body-file columns (version 2)") {
  TempDir dir;
  core::ManualClock clock;
  auto store = OpenMigratedFrom(1, dir, clock);
  CHECK(store
            ->WithDatabase([](SQLite::Database& db) {
              db.exec("SELECT body_key, body_bytes FROM inbox");
              db.exec("SELECT body_key, body_bytes FROM sent");
              return absl::OkStatus();
            })
            .ok());
}

TEST_CASE("migrations: a version 2 store gains the expiry indexes (version 3)") {
  TempDir dir;
  core::ManualClock clock;
  auto store = OpenMigratedFrom(2, dir, clock);
  // The deletes of the expiry pass (overlay/store_journal.cc) search an index instead of scanning
  // tables that hold an hour of traffic.
  const std::vector<std::pair<std::string, std::string>> prunes = {
      {"DELETE FROM sent WHERE sent_at_ms < 1", "sent_by_time"},
      {"DELETE FROM answered WHERE expires_ms < 1", "answered_by_expiry"},
      {"DELETE FROM setup_log WHERE seen_ms < 1", "setup_log_by_time"},
  };
  for (const auto& [sql, index] : prunes) {
    CAPTURE(sql);
    std::string plan;
    REQUIRE(store
                ->WithDatabase([&](SQLite::Database& db) {
                  SQLite::Statement q(db, "EXPLAIN QUERY PLAN " + sql);
                  while (q.executeStep()) plan += q.getColumn(3).getString() + "; ";
                  return absl::OkStatus();
                })
                .ok());
    CAPTURE(plan);
    CHECK(plan.find("USING INDEX " + index) != std::string::npos);
  }
}

TEST_CASE("migrations: a version 3 store's channels gain the setup digests, unknown (version 4)") {
  TempDir dir;
  core::ManualClock clock;
  const std::string path = dir.File("store.db");
  {
    std::vector<Migration> v3(DefaultMigrations().begin(), DefaultMigrations().begin() + 3);
    StoreOptions options = FastOptions(clock);
    options.migrations = &v3;
    auto old = KeyStore::Create(path, Pass("pw"), KdfProfile::kMinimal, options);
    REQUIRE(old.ok());
    REQUIRE((*old)
                ->WithTransaction([](SQLite::Database& db) {
                  db.exec(
                      "INSERT INTO channels(peer, channel_id, secret, initiator, peer_key, "
                      "created_ms) VALUES('peer-1', x'01', NULL, 1, x'', 1)");
                  return absl::OkStatus();
                })
                .ok());
  }
  auto store = KeyStore::Open(path, Pass("pw"), FastOptions(clock));
  REQUIRE(store.ok());
  CHECK((*store)->schema_version() == kStoreSchemaVersion);
  bool unknown = false;
  REQUIRE((*store)
              ->WithDatabase([&](SQLite::Database& db) {
                SQLite::Statement q(db, "SELECT request_digest, reply_digest FROM channels");
                unknown = q.executeStep() && q.getColumn(0).isNull() && q.getColumn(1).isNull();
                return absl::OkStatus();
              })
              .ok());
  CHECK(unknown);  // a channel from before: a second answer to it is not recognised, as before
}

TEST_CASE("every sealed column's SQL context matches the C++ context builders") {
  TempDir dir;
  core::ManualClock clock;
  auto store = CreateStore(dir.File("store.db"), clock);
  Bytes id = {0x00, 0xab, 0xff, 0x10};
  REQUIRE(store
              ->WithTransaction([&](SQLite::Database& db) {
                SQLite::Statement ins(
                    db,
                    "INSERT INTO channels(peer, channel_id, secret, initiator, "
                    "peer_key, created_ms) VALUES('peer-1', ?, x'00', 1, x'', 1)");
                BindBlob(ins, 1, id);
                ins.exec();
                SQLite::Statement inbox(db,
                                        "INSERT INTO inbox(sender, message_id, received_ms, inner) "
                                        "VALUES('peer-1', ?, 1, x'00')");
                BindBlob(inbox, 1, id);
                inbox.exec();
                SQLite::Statement sent(db,
                                       "INSERT INTO sent(recipient, message_id, channel_id, seq, "
                                       "sent_at_ms, inner) VALUES('peer-1', ?, ?, 1, 1, x'00')");
                BindBlob(sent, 1, id);
                BindBlob(sent, 2, id);
                sent.exec();
                db.exec("INSERT INTO answered VALUES('peer-1', 'req-7', 1, x'00')");
                db.exec(
                    "INSERT INTO contexts(researcher, context_id, scheme, state, created_ms, "
                    "updated_ms, params_digest, state_sealed) VALUES('res', 'ctx-1', 1, "
                    "'started', 1, 1, x'', x'00')");
                db.exec("INSERT INTO pairwise_keys VALUES('res', 'ctx-1', 'peer-1', x'00', 1)");
                db.exec("INSERT INTO identity VALUES(1, 'fed', 'me', x'', x'00', 1)");
                return absl::OkStatus();
              })
              .ok());
  std::map<std::string, std::string> expected = {
      {"identity", std::string(kIdentityKeyContext)},
      {"channels", ChannelSecretContext("peer-1", id)},
      {"inbox", InboxContext("peer-1", id)},
      {"sent", SentContext("peer-1", id)},
      {"answered", AnsweredContext("peer-1", "req-7")},
      {"contexts", SecaggStateContext("res", "ctx-1")},
      {"pairwise_keys", PairwiseKeyContext("res", "ctx-1", "peer-1")},
  };
  std::set<std::string> tables;
  for (const SealedColumn& col : SealedColumns()) {
    tables.insert(col.table);
    CAPTURE(col.table);
    CAPTURE(col.column);
    std::string got;
    REQUIRE(store
                ->WithDatabase([&](SQLite::Database& db) {
                  got =
                      db.execAndGet(std::string("SELECT ") + col.context_sql + " FROM " + col.table)
                          .getString();
                  return absl::OkStatus();
                })
                .ok());
    CHECK(got == expected[col.table]);
  }
  CHECK(tables.size() == expected.size());
}

}  // namespace
}  // namespace nodelink::keys

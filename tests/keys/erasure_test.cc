// The sealed-at-rest and erasure properties of the key store (PROTOCOL.md section 5,
// IMPLEMENTATION-NOTES 6.3): no secret in clear in the file or its WAL, and erased secrets gone
// from both once CheckpointErased ran. The scans look at the raw bytes of `store.db` and
// `store.db-wal`; each scan is paired with a positive control (the sealed blob IS found where it
// should be), so a scan that looks at the wrong bytes cannot pass vacuously.
#include <doctest/doctest.h>

#include "context_store_fixture.h"
#include "core/random.h"
#include "keys/context_store.h"
#include "keys/seal_contexts.h"
#include "keys/store_sql.h"
#include "store_test_support.h"

namespace nodelink::keys {
namespace {

using testing::CreateStore;
using testing::FileContains;
using testing::OpenStore;
using testing::Pass;
using testing::TempDir;

struct Files {
  std::string db, wal;
  explicit Files(const std::string& path) : db(path), wal(path + "-wal") {}
  bool AnyContains(ByteView needle) const {
    return FileContains(db, needle) || FileContains(wal, needle);
  }
};

TEST_CASE(
    "no secret in clear: identity scalar, channel secret, passphrase; erased secrets leave "
    "the file and the WAL") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  Files files(path);
  auto store = CreateStore(path, clock, "a passphrase that must not be stored");

  core::EcPrivateKey identity = testing::NewKey();
  core::SecretBytes scalar = *identity.ExportScalar();
  REQUIRE(store->SetIdentity("fed", "node-a", identity).ok());

  // A channel secret with a recognisable pattern, sealed through the store like the overlay does.
  core::SecretBytes secret = core::RandomSecret(32);
  Bytes channel_id = core::RandomBytes(16);
  core::EcPrivateKey peer = testing::NewKey();
  Bytes sealed =
      testing::InsertChannel(*store, "node-b", channel_id, secret, clock.NowMs(), peer.PublicKey());

  // Read it back.
  Bytes stored;
  REQUIRE(store
              ->WithDatabase([&](SQLite::Database& db) {
                SQLite::Statement q(db, "SELECT secret FROM channels WHERE peer = 'node-b'");
                REQUIRE(q.executeStep());
                stored = BlobOf(q.getColumn(0));
                return absl::OkStatus();
              })
              .ok());
  CHECK(stored == sealed);
  auto opened = store->Unseal(stored, ChannelSecretContext("node-b", channel_id));
  REQUIRE(opened.ok());
  CHECK(core::ConstantTimeEquals(*opened, secret));

  // Before a checkpoint: the sealed blob is in the WAL (positive control); no clear secret.
  CHECK(FileContains(files.wal, sealed));
  CHECK_FALSE(files.AnyContains(secret.ExposeSecret()));
  CHECK_FALSE(files.AnyContains(scalar.ExposeSecret()));
  CHECK_FALSE(files.AnyContains(AsBytes("a passphrase that must not be stored")));

  // After a checkpoint: the blob moved into the main file (control); still no clear secret.
  REQUIRE(store->CheckpointErased().ok());
  CHECK(FileContains(files.db, sealed));
  CHECK_FALSE(files.AnyContains(secret.ExposeSecret()));
  CHECK_FALSE(files.AnyContains(scalar.ExposeSecret()));

  // Erase the secret (tombstone, as the overlay does at the end of grace) and checkpoint.
  REQUIRE(store
              ->WithTransaction([&](SQLite::Database& db) {
                db.exec("UPDATE channels SET secret = NULL WHERE peer = 'node-b'");
                return absl::OkStatus();
              })
              .ok());
  CHECK(files.AnyContains(sealed));  // still there until the checkpoint: why it is needed
  REQUIRE(store->CheckpointErased().ok());
  CHECK_FALSE(files.AnyContains(sealed));
  CHECK_FALSE(files.AnyContains(secret.ExposeSecret()));
  auto channels = store->ListChannels();
  REQUIRE(channels.ok());
  REQUIRE(channels->size() == 1);
  CHECK((*channels)[0].state == ChannelState::kTombstone);

  // Reopening the store writes nothing secret either.
  store.reset();
  store = OpenStore(path, clock, "a passphrase that must not be stored");
  CHECK_FALSE(files.AnyContains(sealed));
  CHECK_FALSE(files.AnyContains(scalar.ExposeSecret()));
}

TEST_CASE("channels drop erases rows and their sealed secrets from file and WAL") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  Files files(path);
  auto store = CreateStore(path, clock);
  core::EcPrivateKey peer = testing::NewKey();
  std::vector<Bytes> blobs;
  for (const char* name : {"node-b", "node-c"}) {
    core::SecretBytes secret = core::RandomSecret(32);
    blobs.push_back(testing::InsertChannel(*store, name, core::RandomBytes(16), secret,
                                           clock.NowMs(), peer.PublicKey()));
  }
  REQUIRE(store->CheckpointErased().ok());
  CHECK(FileContains(files.db, blobs[0]));
  CHECK(FileContains(files.db, blobs[1]));
  auto dropped = store->DropChannels("node-b");
  REQUIRE(dropped.ok());
  CHECK(*dropped == 1);
  CHECK_FALSE(files.AnyContains(blobs[0]));
  CHECK(FileContains(files.db, blobs[1]));
  dropped = store->DropChannels("");
  REQUIRE(dropped.ok());
  CHECK(*dropped == 1);
  CHECK_FALSE(files.AnyContains(blobs[1]));
  CHECK(store->ListChannels()->empty());
}

TEST_CASE("passphrase change re-seals everything; the old passphrase no longer opens the store") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  Files files(path);
  auto store = CreateStore(path, clock, "old passphrase");
  core::EcPrivateKey identity = testing::NewKey();
  REQUIRE(store->SetIdentity("fed", "node-a", identity).ok());
  core::SecretBytes secret = core::RandomSecret(32);
  Bytes channel_id = core::RandomBytes(16);
  core::EcPrivateKey peer = testing::NewKey();
  Bytes old_channel_blob =
      testing::InsertChannel(*store, "node-b", channel_id, secret, clock.NowMs(), peer.PublicKey());
  ContextStore contexts(*store);
  core::SecretBytes state = core::SecretBytes::CopyOf(AsBytes("context state"));
  core::SecretBytes pairwise = core::RandomSecret(32);
  REQUIRE(contexts.Put(testing::SampleContext("res", "ctx-1"), &state).ok());
  REQUIRE(contexts.PutPairwiseKey("res", "ctx-1", "node-b", pairwise, clock.NowMs()).ok());
  Bytes message_id = core::RandomBytes(16);
  Bytes inner = ToBytes("an inner message with a share");
  REQUIRE(store
              ->WithTransaction([&](SQLite::Database& db) -> absl::Status {
                auto sealed = store->Seal(inner, InboxContext("node-b", message_id));
                if (!sealed.ok()) return sealed.status();
                SQLite::Statement q(db,
                                    "INSERT INTO inbox(sender, message_id, received_ms, inner) "
                                    "VALUES('node-b', ?, 1, ?)");
                BindBlob(q, 1, message_id);
                BindBlob(q, 2, *sealed);
                q.exec();
                return absl::OkStatus();
              })
              .ok());

  REQUIRE(store->ChangeStoreKey(Pass("new passphrase"), KdfProfile::kMinimal).ok());
  // The running store keeps working with the new key.
  CHECK(core::ConstantTimeEquals(contexts.GetPairwiseKey("res", "ctx-1", "node-b")->value(),
                                 pairwise));
  store.reset();
  CHECK_FALSE(files.AnyContains(old_channel_blob));

  auto old = KeyStore::Open(path, Pass("old passphrase"), testing::FastOptions(clock));
  CHECK(old.status().code() == absl::StatusCode::kPermissionDenied);
  store = OpenStore(path, clock, "new passphrase");
  CHECK(store->LoadIdentity()->key.PublicKey() == identity.PublicKey());
  Bytes channel_blob, inbox_blob;
  REQUIRE(store
              ->WithDatabase([&](SQLite::Database& db) {
                channel_blob = BlobOf(db.execAndGet("SELECT secret FROM channels"));
                inbox_blob = BlobOf(db.execAndGet("SELECT inner FROM inbox"));
                return absl::OkStatus();
              })
              .ok());
  CHECK(channel_blob != old_channel_blob);
  CHECK(core::ConstantTimeEquals(
      *store->Unseal(channel_blob, ChannelSecretContext("node-b", channel_id)), secret));
  CHECK(ToString(store->Unseal(inbox_blob, InboxContext("node-b", message_id))->ExposeSecret()) ==
        "an inner message with a share");
  ContextStore reopened(*store);
  CHECK(ToString((*reopened.GetState("res", "ctx-1"))->ExposeSecret()) == "context state");
  CHECK(core::ConstantTimeEquals(reopened.GetPairwiseKey("res", "ctx-1", "node-b")->value(),
                                 pairwise));

  // To a key file and back to a passphrase.
  std::string key_file = dir.File("store.key");
  REQUIRE(CreateKeyFile(key_file).ok());
  REQUIRE(store->ChangeStoreKey(StoreKeySource::KeyFile(key_file), KdfProfile::kMinimal).ok());
  store.reset();
  CHECK(KeyStore::Open(path, Pass("new passphrase"), testing::FastOptions(clock)).status().code() ==
        absl::StatusCode::kInvalidArgument);
  auto by_file =
      KeyStore::Open(path, StoreKeySource::KeyFile(key_file), testing::FastOptions(clock));
  REQUIRE(by_file.ok());
  CHECK((*by_file)->LoadIdentity().ok());
}

TEST_CASE(
    "a second process's store notices a store-key change instead of sealing with the old "
    "key") {
  TempDir dir;
  core::ManualClock clock;
  std::string path = dir.File("store.db");
  auto first = CreateStore(path, clock, "old");
  auto second = OpenStore(path, clock, "old");
  REQUIRE(first->ChangeStoreKey(Pass("new"), KdfProfile::kMinimal).ok());
  absl::Status stale = second->SetPinPolicy(PinPolicy::kCa);
  CHECK(stale.code() == absl::StatusCode::kFailedPrecondition);
  CHECK(std::string(stale.message()).find("restart") != std::string::npos);
}

}  // namespace
}  // namespace nodelink::keys

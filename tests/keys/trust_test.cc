// Pin policies (PROTOCOL.md section 3), approvals (section 8) and the channel listing.
#include <doctest/doctest.h>

#include "context_store_fixture.h"
#include "core/random.h"
#include "core/status.h"
#include "keys/context_store.h"
#include "keys/fingerprint.h"
#include "store_test_support.h"

namespace nodelink::keys {
namespace {

using testing::CreateStore;
using testing::NewKey;
using testing::TempDir;

using Kind = PinVerdict::Kind;

Kind Verdict(const KeyStore& store, std::string_view node, const core::EcPrivateKey& key) {
  auto verdict = store.CheckPin(node, key.PublicKey());
  REQUIRE(verdict.ok());
  return verdict->kind;
}

TEST_CASE("tofu (the default) records the first key and refuses a changed one until reset") {
  TempDir dir;
  core::ManualClock clock;
  auto store = CreateStore(dir.File("store.db"), clock);
  core::EcPrivateKey first = NewKey();
  core::EcPrivateKey second = NewKey();
  CHECK(*store->GetPinPolicy() == PinPolicy::kTofu);

  CHECK(Verdict(*store, "node-b", first) == Kind::kFirstUse);
  // CheckPin alone changes nothing (a forged setup must not record a key).
  CHECK(Verdict(*store, "node-b", second) == Kind::kFirstUse);
  REQUIRE(store->RecordFirstUse("node-b", first.PublicKey()).ok());
  CHECK(Verdict(*store, "node-b", first) == Kind::kAccepted);
  auto changed = store->CheckPin("node-b", second.PublicKey());
  REQUIRE(changed.ok());
  CHECK(changed->kind == Kind::kKeyChanged);
  CHECK_FALSE(changed->accepted());
  CHECK(changed->message.find(FingerprintHex(second.PublicKey().Fingerprint())) !=
        std::string::npos);
  CHECK(changed->message.find("trust reset node-b") != std::string::npos);
  // Recording again keeps the first key.
  REQUIRE(store->RecordFirstUse("node-b", second.PublicKey()).ok());
  CHECK(Verdict(*store, "node-b", second) == Kind::kKeyChanged);
  // Other nodes are independent.
  CHECK(Verdict(*store, "node-c", second) == Kind::kFirstUse);

  CHECK(*store->ResetTrust("node-b"));
  CHECK_FALSE(*store->ResetTrust("node-b"));
  CHECK(Verdict(*store, "node-b", second) == Kind::kFirstUse);
  REQUIRE(store->RecordFirstUse("node-b", second.PublicKey()).ok());
  CHECK(Verdict(*store, "node-b", second) == Kind::kAccepted);
  CHECK(Verdict(*store, "node-b", first) == Kind::kKeyChanged);
}

TEST_CASE("pinned refuses unlisted keys; listed pins bind under every policy") {
  TempDir dir;
  core::ManualClock clock;
  auto store = CreateStore(dir.File("store.db"), clock);
  core::EcPrivateKey good = NewKey();
  core::EcPrivateKey rotated = NewKey();
  core::EcPrivateKey evil = NewKey();
  REQUIRE(store->SetPinPolicy(PinPolicy::kPinned).ok());
  auto none = store->CheckPin("researcher", good.PublicKey());
  CHECK(none->kind == Kind::kNotPinned);
  CHECK(none->message.find("trust pin researcher SHA256:") != std::string::npos);

  REQUIRE(store->AddPin("researcher", good.PublicKey().Fingerprint()).ok());
  CHECK(Verdict(*store, "researcher", good) == Kind::kAccepted);
  CHECK(Verdict(*store, "researcher", evil) == Kind::kNotPinned);
  REQUIRE(store->AddPin("researcher", rotated.PublicKey().Fingerprint()).ok());
  CHECK(Verdict(*store, "researcher", rotated) == Kind::kAccepted);
  CHECK(*store->RemovePins("researcher", good.PublicKey().Fingerprint()) == 1);
  CHECK(Verdict(*store, "researcher", good) == Kind::kNotPinned);
  // Recording under `pinned` does nothing.
  REQUIRE(store->RecordFirstUse("other", evil.PublicKey()).ok());
  CHECK(Verdict(*store, "other", evil) == Kind::kNotPinned);

  // Pins still bind under ca and tofu; unpinned nodes follow the policy.
  REQUIRE(store->SetPinPolicy(PinPolicy::kCa).ok());
  CHECK(Verdict(*store, "researcher", evil) == Kind::kNotPinned);
  CHECK(Verdict(*store, "other", evil) == Kind::kAccepted);
  REQUIRE(store->SetPinPolicy(PinPolicy::kTofu).ok());
  CHECK(Verdict(*store, "researcher", evil) == Kind::kNotPinned);
  CHECK(*store->RemovePins("researcher", {}) == 1);
  CHECK(Verdict(*store, "researcher", evil) == Kind::kFirstUse);

  CHECK_FALSE(store->AddPin("researcher", Bytes(31, 0)).ok());
  CHECK_FALSE(store->AddPin("bad id", Bytes(32, 0)).ok());
}

TEST_CASE("approvals: researchers by name, co-parties by name, by pin, or by '*'") {
  TempDir dir;
  core::ManualClock clock;
  auto store = CreateStore(dir.File("store.db"), clock);
  CHECK_FALSE(store->IsResearcher("res"));
  CHECK_FALSE(store->IsApprovedCoParty("node-b"));
  REQUIRE(store->SetApproval("res", ApprovalRole::kResearcher, true).ok());
  CHECK(store->IsResearcher("res"));
  CHECK_FALSE(store->IsApprovedCoParty("res"));
  REQUIRE(store->SetApproval("node-b", ApprovalRole::kCoParty, true).ok());
  CHECK(store->IsApprovedCoParty("node-b"));
  CHECK_FALSE(store->IsApprovedCoParty("node-c"));
  REQUIRE(store->AddPin("node-c", NewKey().PublicKey().Fingerprint()).ok());
  CHECK(store->IsApprovedCoParty("node-c"));
  CHECK_FALSE(store->IsApprovedCoParty("node-d"));
  CHECK(store->SetApproval("*", ApprovalRole::kResearcher, true).code() ==
        absl::StatusCode::kInvalidArgument);
  REQUIRE(store->SetApproval("*", ApprovalRole::kCoParty, true).ok());
  CHECK(store->IsApprovedCoParty("node-d"));
  CHECK_FALSE(store->IsApprovedCoParty("bad id"));
  REQUIRE(store->SetApproval("*", ApprovalRole::kCoParty, false).ok());
  REQUIRE(store->SetApproval("res", ApprovalRole::kResearcher, false).ok());
  CHECK_FALSE(store->IsApprovedCoParty("node-d"));
  CHECK_FALSE(store->IsResearcher("res"));

  core::EcPrivateKey b = NewKey();
  REQUIRE(store->RecordFirstUse("node-b", b.PublicKey()).ok());
  auto list = store->ListTrust();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 2);
  CHECK((*list)[0].node_id == "node-b");
  CHECK((*list)[0].approved_co_party);
  CHECK((*list)[0].tofu_fingerprint == b.PublicKey().Fingerprint());
  CHECK((*list)[1].node_id == "node-c");
  CHECK((*list)[1].pins.size() == 1);
}

TEST_CASE("channels: states, renewal of the newest live channel, drop") {
  TempDir dir;
  core::ManualClock clock;
  auto store = CreateStore(dir.File("store.db"), clock);
  core::EcPrivateKey peer = NewKey();
  core::SecretBytes s = core::RandomSecret(32);
  Bytes old_id(16, 1), cur_id(16, 2), dead_id(16, 3);
  testing::InsertChannel(*store, "node-b", old_id, s, 1000, peer.PublicKey(), 5000);
  testing::InsertChannel(*store, "node-b", cur_id, s, 4000, peer.PublicKey());
  testing::InsertChannel(*store, "node-b", dead_id, s, 500, peer.PublicKey(), 900);
  REQUIRE(store
              ->WithTransaction([&](SQLite::Database& db) {
                SQLite::Statement q(db, "UPDATE channels SET secret = NULL WHERE channel_id = ?");
                BindBlob(q, 1, dead_id);
                q.exec();
                return absl::OkStatus();
              })
              .ok());
  auto list = store->ListChannels();
  REQUIRE(list.ok());
  REQUIRE(list->size() == 3);
  CHECK((*list)[0].channel_id == cur_id);
  CHECK((*list)[0].state == ChannelState::kLiveCurrent);
  CHECK((*list)[1].state == ChannelState::kLiveGrace);
  CHECK((*list)[2].state == ChannelState::kTombstone);
  CHECK((*list)[0].peer_fingerprint == peer.PublicKey().Fingerprint());

  REQUIRE(store->RequestRenewal("node-b").ok());
  list = store->ListChannels();
  CHECK((*list)[0].renew_requested);
  CHECK_FALSE((*list)[1].renew_requested);
  CHECK(store->RequestRenewal("node-z").code() == absl::StatusCode::kNotFound);
  CHECK(*store->DropChannels("node-b") == 3);
  CHECK(store->ListChannels()->empty());
}

TEST_CASE("secagg contexts: at most once, one input per context, sealed state and pairwise keys") {
  TempDir dir;
  core::ManualClock clock;
  auto store = CreateStore(dir.File("store.db"), clock);
  ContextStore contexts(*store);
  SecaggContext c = testing::SampleContext("res", "ctx-1");
  c.input_digest = Bytes(32, 7);
  REQUIRE(contexts.Put(c, nullptr).ok());
  CHECK(contexts.Put(c, nullptr).code() == absl::StatusCode::kAlreadyExists);
  SecaggContext reuse = testing::SampleContext("res", "ctx-2");
  reuse.input_digest = Bytes(32, 7);
  CHECK(contexts.Put(reuse, nullptr).code() == absl::StatusCode::kAlreadyExists);
  SecaggContext other = testing::SampleContext("res2", "ctx-1");  // another researcher: distinct
  REQUIRE(contexts.Put(other, nullptr).ok());

  core::SecretBytes key = core::RandomSecret(32);
  REQUIRE(contexts.PutPairwiseKey("res", "ctx-1", "node-b", key, 2000).ok());
  CHECK(contexts.PutPairwiseKey("res", "nope", "node-b", key, 2000).code() ==
        absl::StatusCode::kNotFound);
  auto got = contexts.GetPairwiseKey("res", "ctx-1", "node-b");
  REQUIRE(got.ok());
  REQUIRE(got->has_value());
  CHECK(core::ConstantTimeEquals(got->value(), key));
  CHECK_FALSE(contexts.GetPairwiseKey("res", "ctx-1", "node-c")->has_value());

  core::SecretBytes state = core::SecretBytes::CopyOf(AsBytes("shares"));
  REQUIRE(contexts.Update("res", "ctx-1", ContextState::kFinished, &state, 3000).ok());
  CHECK(contexts.Update("res", "nope", ContextState::kFinished, nullptr, 3000).code() ==
        absl::StatusCode::kNotFound);
  auto read = contexts.Get("res", "ctx-1");
  REQUIRE(read.ok());
  REQUIRE(read->has_value());
  CHECK((*read)->state == ContextState::kFinished);
  CHECK((*read)->parties == std::vector<std::string>{"node-a", "node-b", "node-c"});
  CHECK((*read)->has_state);
  CHECK((*read)->pairwise_key_count == 1);
  CHECK((*read)->updated_ms == 3000);
  CHECK(ToString((*contexts.GetState("res", "ctx-1"))->ExposeSecret()) == "shares");
  CHECK(contexts.List()->size() == 2);

  CHECK(*contexts.Drop("res", "ctx-1"));
  CHECK_FALSE(*contexts.Drop("res", "ctx-1"));
  CHECK_FALSE(contexts.Get("res", "ctx-1")->has_value());
  CHECK_FALSE(contexts.GetPairwiseKey("res", "ctx-1", "node-b")->has_value());
  // The input is free again once its context is gone.
  CHECK(contexts.Put(reuse, nullptr).ok());
}

}  // namespace
}  // namespace nodelink::keys

namespace nodelink::keys {
namespace {

TEST_CASE(
    "pin check and first-use record inside the overlay's transaction; rollback records "
    "nothing") {
  testing::TempDir dir;
  core::ManualClock clock;
  auto store = testing::CreateStore(dir.File("store.db"), clock);
  core::EcPrivateKey key = testing::NewKey();
  absl::Status aborted = store->WithTransaction([&](SQLite::Database& db) -> absl::Status {
    auto verdict = KeyStore::CheckPinIn(db, "node-b", key.PublicKey());
    if (!verdict.ok()) return verdict.status();
    CHECK(verdict->kind == PinVerdict::Kind::kFirstUse);
    NL_RETURN_IF_ERROR(KeyStore::RecordFirstUseIn(db, "node-b", key.PublicKey(), 42));
    return absl::AbortedError("a later check failed");
  });
  CHECK(aborted.code() == absl::StatusCode::kAborted);
  CHECK(store->CheckPin("node-b", key.PublicKey())->kind == PinVerdict::Kind::kFirstUse);
  REQUIRE(store
              ->WithTransaction([&](SQLite::Database& db) {
                return KeyStore::RecordFirstUseIn(db, "node-b", key.PublicKey(), 42);
              })
              .ok());
  CHECK(store->CheckPin("node-b", key.PublicKey())->kind == PinVerdict::Kind::kAccepted);
  CHECK((*store->ListTrust())[0].first_seen_ms == 42);
}

}  // namespace
}  // namespace nodelink::keys

// A federation in one process for channel-manager tests: a real CA, real key stores (SQLite files
// in a temporary directory) with real certificates, and an in-process relay standing in for the
// hub, which the test drives step by step (hold, drop, replay, deliver) so that races such as
// simultaneous setups happen deterministically.
#pragma once

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "core/ec.h"
#include "keys/key_store.h"
#include "keys/x509.h"
#include "overlay/channel_manager.h"
#include "overlay/store_authenticator.h"
#include "overlay/store_journal.h"
#include "process/temp_dir.h"

namespace nodelink::overlay::testing {

inline constexpr char kFederation[] = "fed";

using TempDir = process::TempDir;

struct TestCa {
  explicit TestCa(core::Clock& clock, const std::string& federation = kFederation)
      : credentials{core::EcPrivateKey::Generate().value(), {}} {
    credentials.cert_der =
        keys::CreateCaCertificate(credentials.key, federation, "Test CA", clock, 3650).value();
  }
  keys::CaCredentials credentials;
};

class Relay;

// The node's real journal, with a hook a test can set to stop a reader of sent copies once it has
// read them (to interleave a send with the handling of a ChannelUnknown; it runs on the reader's
// thread: set it before the reader starts and clear it after), a switch that makes commits fail,
// and a count of the inbox rows its commits wrote.
class HookedJournal final : public ChannelJournal {
 public:
  explicit HookedJournal(keys::KeyStore& store) : journal_(store) {}
  std::function<void()> after_sent_on_channel;
  // Set, every commit fails from then on, as a store that broke (or a node that died) would.
  std::atomic<bool> fail_commits{false};
  std::atomic<size_t> inbox_rows_written{0};

  absl::StatusOr<JournalSnapshot> Load() override { return journal_.Load(); }
  absl::Status Commit(JournalBatch batch) override {
    if (fail_commits.load()) return absl::InternalError("test: the store fails to commit");
    inbox_rows_written += batch.put_inbox.size();
    return journal_.Commit(std::move(batch));
  }
  absl::StatusOr<std::optional<SentRow>> FindSent(std::string_view recipient,
                                                  ByteView message_id) override {
    return journal_.FindSent(recipient, message_id);
  }
  absl::StatusOr<std::vector<SentRow>> SentOnChannel(std::string_view recipient,
                                                     ByteView channel_id,
                                                     uint64_t min_seq) override {
    auto rows = journal_.SentOnChannel(recipient, channel_id, min_seq);
    if (after_sent_on_channel) after_sent_on_channel();
    return rows;
  }
  absl::StatusOr<std::optional<Bytes>> FindAnswered(std::string_view peer,
                                                    std::string_view request_id,
                                                    uint64_t now_ms) override {
    return journal_.FindAnswered(peer, request_id, now_ms);
  }
  absl::Status ForEachAnswered(
      const std::function<void(std::string_view, std::string_view, uint64_t)>& each) override {
    return journal_.ForEachAnswered(each);
  }
  absl::StatusOr<std::vector<std::string>> TakeRenewRequests() override {
    return journal_.TakeRenewRequests();
  }

 private:
  StoreJournal journal_;
};

// One participant: its store, journal, authenticator and channel manager.
struct TestNode {
  std::string id;
  std::string store_path;
  std::unique_ptr<keys::KeyStore> store;
  std::unique_ptr<HookedJournal> journal;
  std::unique_ptr<StoreAuthenticator> authenticator;
  std::unique_ptr<EnvelopeSink> sink;
  std::unique_ptr<ChannelManager> manager;

  std::mutex mu;
  std::vector<InboxMessage> received;                 // opened sealed messages, in order
  std::vector<messages::ReceiveCode> outcomes;        // every Open outcome, in order
  std::condition_variable changed;
  int opens_pending = 0;

  size_t CountOutcome(messages::ReceiveCode code) {
    std::lock_guard lock(mu);
    return static_cast<size_t>(std::count(outcomes.begin(), outcomes.end(), code));
  }
  std::vector<std::string> ReceivedPayloads() {
    std::lock_guard lock(mu);
    std::vector<std::string> out;
    for (const InboxMessage& m : received) out.push_back(m.inner.app().payload());
    return out;
  }
};

// The body files of one store (keys/store_bodies.h), with their contents.
inline std::map<std::string, std::string> BodyFiles(const TestNode& node) {
  std::map<std::string, std::string> files;
  const std::filesystem::path dir = node.store_path + "-bodies";
  if (!std::filesystem::exists(dir)) return files;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    files[entry.path().filename().string()] =
        std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  return files;
}

inline size_t CountPrefixed(const std::map<std::string, std::string>& files,
                            std::string_view prefix) {
  return static_cast<size_t>(std::count_if(
      files.begin(), files.end(), [&](const auto& f) { return f.first.starts_with(prefix); }));
}

// Stands in for the hub: keeps every envelope a node sends in a FIFO per recipient until the test
// delivers it. Accepts everything at once unless told to reject.
class Relay {
 public:
  explicit Relay(core::ManualClock& clock) : clock_(clock) {}

  class Sink final : public EnvelopeSink {
   public:
    Sink(Relay& relay, std::string owner) : relay_(relay), owner_(std::move(owner)) {}
    void Send(v1::Envelope envelope, std::function<void(HubAnswer)> done) override {
      HubAnswer answer{true, v1::CODE_UNSPECIFIED, ""};
      {
        std::lock_guard lock(relay_.mu_);
        auto reject = relay_.reject_to_.find(envelope.recipient());
        if (reject != relay_.reject_to_.end()) {
          answer = HubAnswer{false, reject->second, "test relay refuses"};
        } else {
          relay_.queues_[envelope.recipient()].push_back(std::move(envelope));
          relay_.sent_ += 1;
        }
      }
      relay_.changed_.notify_all();
      done(answer);
    }

   private:
    Relay& relay_;
    std::string owner_;
  };

  void Add(TestNode& node) { nodes_[node.id] = &node; }
  void RejectTo(const std::string& recipient, v1::Code code) {
    std::lock_guard lock(mu_);
    reject_to_[recipient] = code;
  }

  // Envelopes queued for `recipient`, in order (copies).
  std::vector<v1::Envelope> Queued(const std::string& recipient) {
    std::lock_guard lock(mu_);
    auto& q = queues_[recipient];
    return std::vector<v1::Envelope>(q.begin(), q.end());
  }
  // Removes and returns what is queued for `recipient`, after waiting (bounded) until at least
  // `at_least` envelopes are there: a node may send from its commit thread.
  std::vector<v1::Envelope> Take(const std::string& recipient, size_t at_least = 0) {
    std::unique_lock lock(mu_);
    changed_.wait_for(lock, std::chrono::seconds(10),
                      [&] { return queues_[recipient].size() >= at_least; });
    auto& q = queues_[recipient];
    std::vector<v1::Envelope> out(q.begin(), q.end());
    q.clear();
    return out;
  }

  // Opens `envelope` at its recipient (as the router would: one at a time) and waits for the
  // outcome to be durable. Deliveries rotate between Open, OpenAlone and OpenAndHandle, the
  // router's three ways (by load), so that every test covers all.
  messages::ReceiveCode Deliver(const v1::Envelope& envelope) {
    TestNode& node = *nodes_.at(envelope.recipient());
    std::mutex m;
    std::condition_variable cv;
    std::optional<messages::ReceiveCode> code;
    auto take = [&node](const InboxMessage& message) {
      std::lock_guard lock(node.mu);
      node.received.push_back(message);
      node.manager->Complete(message.inbox_id);
    };
    auto handle = [&](const InboxMessage& message, const std::function<void()>& place_record) {
      CommitQueue::CallerScope commit_after;  // as the router's dispatch
      take(message);
      place_record();
    };
    auto done = [&](OpenOutcome outcome) {
      {
        std::lock_guard lock(node.mu);
        node.outcomes.push_back(outcome.code);
      }
      if (outcome.message) take(*outcome.message);
      std::lock_guard lock(m);
      code = outcome.code;
      cv.notify_all();
    };
    switch (++deliveries_ % 3) {
      case 0:
        node.manager->Open(envelope, done);
        break;
      case 1:
        node.manager->OpenAlone(envelope, done);
        break;
      default:
        node.manager->OpenAndHandle(envelope, handle, done);
    }
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return code.has_value(); }));
    return *code;
  }

  // Delivers everything queued, including what deliveries cause, until nothing is left.
  // Envelopes a node sends from a background thread (after a commit) are waited for briefly.
  void Pump() {
    for (int idle_rounds = 0; idle_rounds < 3;) {
      std::optional<v1::Envelope> next;
      {
        std::unique_lock lock(mu_);
        for (auto& [recipient, q] : queues_) {
          if (!q.empty() && nodes_.count(recipient) != 0) {
            next = std::move(q.front());
            q.pop_front();
            break;
          }
        }
        if (!next) {
          // Commit threads may still be about to send (a reply, a drained queue): wait a little
          // for the relay to change rather than declare it empty at once.
          changed_.wait_for(lock, std::chrono::milliseconds(50));
          ++idle_rounds;
          continue;
        }
      }
      idle_rounds = 0;
      Deliver(*next);
    }
  }

  uint64_t sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  core::ManualClock& clock_;
  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, std::deque<v1::Envelope>> queues_;
  std::map<std::string, v1::Code> reject_to_;
  std::map<std::string, TestNode*> nodes_;
  uint64_t sent_ = 0;
  std::atomic<uint64_t> deliveries_{0};
};

// Everything a test needs: clock, CA, relay and nodes.
class Federation {
 public:
  explicit Federation(ChannelManagerOptions options = {}) : options_(options), ca_(clock_), relay_(clock_) {}

  TestNode& AddNode(const std::string& id) {
    auto node = std::make_unique<TestNode>();
    node->id = id;
    node->store_path = dir_.File(id + ".db");
    keys::StoreOptions store_options;
    store_options.clock = &clock_;
    node->store = keys::KeyStore::Create(node->store_path,
                                         keys::StoreKeySource::Passphrase(Passphrase()),
                                         keys::KdfProfile::kMinimal, store_options)
                      .value();
    auto key = core::EcPrivateKey::Generate().value();
    REQUIRE(node->store->SetIdentity(kFederation, id, key).ok());
    REQUIRE(node->store->AddAnchor(keys::AnchorRole::kFederation, ca_.credentials.cert_der).ok());
    Bytes csr = node->store->CreateIdentityCsr().value();
    Bytes cert =
        keys::IssueParticipantCert(csr, ca_.credentials, kFederation, id, clock_).value();
    REQUIRE(node->store->ImportCertificateChain({cert}, clock_.NowMs()).ok());
    TestNode& ref = *node;
    nodes_[id] = std::move(node);
    StartManager(ref);
    relay_.Add(ref);
    return ref;
  }

  // (Re)creates the node's manager from its store, as a restart does.
  void StartManager(TestNode& node) {
    node.manager.reset();
    node.authenticator.reset();
    node.journal.reset();
    if (!node.store) {
      keys::StoreOptions store_options;
      store_options.clock = &clock_;
      node.store = keys::KeyStore::Open(node.store_path,
                                        keys::StoreKeySource::Passphrase(Passphrase()),
                                        store_options)
                       .value();
    }
    node.journal = std::make_unique<HookedJournal>(*node.store);
    node.authenticator = StoreAuthenticator::Create(*node.store).value();
    node.sink = std::make_unique<Relay::Sink>(relay_, node.id);
    keys::Identity id = node.store->LoadIdentity().value();
    LocalIdentity identity{id.federation, id.node_id, std::move(id.key), id.cert_chain_der};
    node.manager = ChannelManager::Create(std::move(identity), options_, clock_, *node.sink,
                                          *node.authenticator, *node.journal)
                       .value();
  }

  // Stops the node and closes its store (StartManager opens it again): a restart, or a moment
  // to copy or replace the store file.
  void Close(TestNode& node) {
    node.manager.reset();
    node.authenticator.reset();
    node.journal.reset();
    node.store.reset();
  }
  // The node loses its channels, as after `nodelink-keys channels drop` (what a store restored
  // from a backup must do), and starts again.
  void DropChannels(TestNode& node) {
    node.manager.reset();
    REQUIRE(node.store->DropChannels("").ok());
    StartManager(node);
  }
  void Restart(TestNode& node) {
    Close(node);
    StartManager(node);
  }

  // Sends an app message and returns a future-like status holder.
  struct SendResult {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<absl::Status> status;
    absl::Status Wait() {
      std::unique_lock lock(mu);
      REQUIRE(cv.wait_for(lock, std::chrono::seconds(20), [&] { return status.has_value(); }));
      return *status;
    }
    bool Done() {
      std::lock_guard lock(mu);
      return status.has_value();
    }
  };
  std::shared_ptr<SendResult> SendApp(TestNode& from, const std::string& to,
                                      const std::string& payload) {
    auto result = std::make_shared<SendResult>();
    v1::Inner inner;
    inner.mutable_app()->set_type("test");
    inner.mutable_app()->set_payload(payload);
    from.manager->Send(to, inner, [result](absl::Status s) {
      std::lock_guard lock(result->mu);
      result->status = s;
      result->cv.notify_all();
    });
    return result;
  }

  core::ManualClock& clock() { return clock_; }
  Relay& relay() { return relay_; }
  TestCa& ca() { return ca_; }
  TempDir& dir() { return dir_; }
  TestNode& node(const std::string& id) { return *nodes_.at(id); }

  static core::SecretBytes Passphrase() { return core::SecretBytes::CopyOf(AsBytes("test pass")); }

 private:
  ChannelManagerOptions options_;
  core::ManualClock clock_;
  TempDir dir_{"nodelink-overlay"};
  TestCa ca_;
  Relay relay_;
  std::map<std::string, std::unique_ptr<TestNode>> nodes_;
};

}  // namespace nodelink::overlay::testing

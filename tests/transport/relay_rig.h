// The relay without gRPC, for its tests: fake sessions, the in-memory store behind the real
// committer, a ManualClock for rate limits, expiry and held-back pushes.
#pragma once

#include <doctest/doctest.h>

#include <deque>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "process/wait_for.h"
#include "transport/memory_queue_store.h"
#include "transport/relay.h"

namespace nodelink::transport::testing {

using std::chrono::milliseconds;
inline constexpr milliseconds kWait{10'000};

inline std::string Id(int n) {
  std::string id(16, '\0');
  id[0] = static_cast<char>(n);
  id[15] = static_cast<char>(n >> 8);
  return id;
}

inline v1::Envelope Env(const std::string& sender, const std::string& recipient, const std::string& id,
                 const std::string& fed = "fed") {
  v1::Envelope e;
  e.set_version(1);
  e.set_federation(fed);
  e.set_sender(sender);
  e.set_recipient(recipient);
  e.set_message_id(id);
  e.set_sent_at_ms(1'700'000'000'000);
  v1::Sealed* s = e.mutable_sealed();
  s->set_channel_id(std::string(16, 'c'));
  s->set_salt(std::string(32, 's'));
  s->set_nonce(std::string(12, 'n'));
  s->set_ciphertext(std::string(40, 'x'));
  s->set_seq(1);
  return e;
}

class FakeSession final : public Session {
 public:
  struct Sent {
    v1::HubFrame frame;
    FrameKind kind;
    uint64_t queue_id;
  };
  void Send(v1::HubFrame frame, FrameKind kind, uint64_t queue_id) override {
    std::lock_guard lock(mu_);
    sent_.push_back({std::move(frame), kind, queue_id});
  }
  void End(absl::Status status) override {
    std::lock_guard lock(mu_);
    ended_ = status;
  }
  std::vector<Sent> sent() const {
    std::lock_guard lock(mu_);
    return sent_;
  }
  std::optional<absl::Status> ended() const {
    std::lock_guard lock(mu_);
    return ended_;
  }
  std::vector<v1::Envelope> pushed() const {
    std::vector<v1::Envelope> out;
    for (const Sent& s : sent()) {
      if (s.frame.has_envelope()) out.push_back(s.frame.envelope());
    }
    return out;
  }
  size_t CountAccepted() const {
    size_t n = 0;
    for (const Sent& s : sent()) n += s.frame.has_accepted() ? 1 : 0;
    return n;
  }
  std::vector<v1::Rejected> rejected() const {
    std::vector<v1::Rejected> out;
    for (const Sent& s : sent()) {
      if (s.frame.has_rejected()) out.push_back(s.frame.rejected());
    }
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Sent> sent_;
  std::optional<absl::Status> ended_;
};

struct Rig {
  // Sessions live in the rig, declared first so that they go last: a committer completion may
  // push to a session until committer->Stop() (the relay's contract: detach before destroying).
  std::deque<FakeSession> sessions;
  FakeSession& NewSession() { return sessions.emplace_back(); }

  // store: the in-memory one unless given.
  explicit Rig(RelayOptions o = {}, QueueBounds bounds = {},
               std::unique_ptr<QueueStore> store = nullptr) {
    if (o.federation.empty()) o.federation = "fed";
    if (store == nullptr) store = std::make_unique<MemoryQueueStore>();
    committer =
        std::make_unique<QueueCommitter>(std::move(store), CommitterOptions{256, bounds, 1000});
    relay = std::make_unique<Relay>(std::move(o), *committer, clock, counters);
  }
  ~Rig() { committer->Stop(); }  // no completion runs after this; sessions may then go
  // Returns once the committer has run everything posted before the call (a fetch round trip):
  // the fetches a relay call started are done, and what they pushed is in the sessions.
  void Settle() {
    std::promise<void> done;
    REQUIRE(committer->Fetch("settle", 0, 1, 1, [&](auto) { done.set_value(); }));
    done.get_future().get();
  }
  core::ManualClock clock;
  HubCounters counters;
  std::unique_ptr<QueueCommitter> committer;
  std::unique_ptr<Relay> relay;
};

inline bool Eventually(const std::function<bool()>& f) { return process::WaitFor(f, kWait); }

}  // namespace nodelink::transport::testing

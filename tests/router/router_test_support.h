// In-process implementations of the overlay seam (overlay/delivery.h) for the router's tests: an
// opener that "opens" an envelope by parsing the Inner the test put in Sealed.ciphertext (with the
// recipient check of PROTOCOL.md section 7 check 2, and a `done` that can be held back to simulate
// commit batching), and a sender that records what it sends and can loop it into another router.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "core/clock.h"
#include "overlay/delivery.h"
#include "router/router.h"

namespace nodelink::router::testing {

// A bounded poll loop for an event another thread causes (never a fixed sleep).
bool Eventually(const std::function<bool()>& condition,
                std::chrono::milliseconds limit = std::chrono::seconds(20));

// A one-shot gate: threads Wait() until someone Open()s it (bounded, so a broken test ends).
class Gate {
 public:
  void Open();
  // Returns false if the gate did not open within `limit`.
  bool Wait(std::chrono::milliseconds limit = std::chrono::seconds(20));
  bool is_open() const;

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
};

// An envelope from `sender` to `recipient` whose Sealed.ciphertext is `inner` serialized.
v1::Envelope MakeEnvelope(const std::string& sender, const std::string& recipient,
                          const v1::Inner& inner, uint64_t seq = 1);
v1::Inner AppInner(const std::string& type, const std::string& payload = "");

class TestOpener final : public overlay::EnvelopeOpener {
 public:
  enum class DoneMode {
    kInline,        // done runs inside Open
    kHeld,          // done runs at ReleaseHeld(), in open order
    kCommitThread,  // done runs on a separate "commit" thread, in open order, in batches
  };

  TestOpener(std::string self, core::Clock& clock, DoneMode mode = DoneMode::kInline);
  ~TestOpener() override;

  void Open(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done) override;
  // Counted, then as Open.
  void OpenAlone(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done) override;
  // Counted as alone, then as Open, with an opened message given to `handle` before `done` runs,
  // as the overlay does: inline, `done` runs when the caller places the record; held, at
  // ReleaseHeld.
  using Handle = std::function<void(overlay::InboxMessage, std::function<void()>)>;
  void OpenAndHandle(v1::Envelope envelope, Handle handle,
                     std::function<void(overlay::OpenOutcome)> done) override;
  void Complete(uint64_t inbox_id, std::function<void()> durable = nullptr) override;
  std::vector<overlay::InboxMessage> PendingInbox() override;

  // Envelopes with this payload (AppMessage.payload) are refused with `code` after being "stored"
  // (to check that a refused outcome never reaches a handler).
  void RefuseType(const std::string& app_type, messages::ReceiveCode code);
  void SetPendingInbox(std::vector<overlay::InboxMessage> pending);
  // Runs the held `done` callbacks (DoneMode::kHeld), oldest first. Returns how many.
  size_t ReleaseHeld();
  size_t held() const;

  // Open calls that overlapped another Open of the same sender (must stay 0).
  size_t overlapping_opens() const;
  std::map<uint64_t, int> completed() const;  // inbox_id -> Complete calls
  size_t alone_opens() const;                 // OpenAlone and OpenAndHandle calls
  size_t open_and_handle_calls() const;       // OpenAndHandle calls

 private:
  overlay::OpenOutcome Decide(const v1::Envelope& envelope);
  void OpenImpl(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done,
                const Handle* handle);
  void RunCommitThread();

  const std::string self_;
  core::Clock& clock_;
  const DoneMode mode_;
  mutable std::mutex mu_;
  std::condition_variable commit_cv_;
  bool stopping_ = false;
  std::set<std::string> opening_;
  size_t overlapping_ = 0;
  size_t alone_opens_ = 0;
  size_t open_and_handle_calls_ = 0;
  uint64_t next_inbox_id_ = 1;
  std::map<std::string, messages::ReceiveCode> refuse_;
  std::deque<std::pair<std::function<void(overlay::OpenOutcome)>, overlay::OpenOutcome>> held_;
  std::map<uint64_t, int> completed_;
  std::vector<overlay::InboxMessage> pending_;
  std::thread commit_thread_;
};

struct SentInner {
  std::string peer;
  v1::Inner inner;
};

class LoopSender final : public overlay::InnerSender {
 public:
  explicit LoopSender(std::string self) : self_(std::move(self)) {}

  void Send(const std::string& peer, v1::Inner inner,
            std::function<void(absl::Status)> done) override;

  // Sends to `peer` become envelopes submitted to `router`.
  void Connect(const std::string& peer, Router* router);
  // Sends to `peer` succeed but never arrive (a silent party).
  void SetSilent(const std::string& peer);
  // Sends to `peer` fail with `status`.
  void SetFailing(const std::string& peer, absl::Status status);
  // Hold every `done` until ReleaseDone() (to show that sends are issued without waiting).
  void HoldDone(bool hold);
  size_t ReleaseDone();

  std::vector<SentInner> sent() const;
  std::vector<SentInner> SentTo(const std::string& peer) const;
  size_t sent_count() const;

 private:
  const std::string self_;
  mutable std::mutex mu_;
  std::vector<SentInner> sent_;
  std::map<std::string, Router*> routes_;
  std::set<std::string> silent_;
  std::map<std::string, absl::Status> failing_;
  bool hold_ = false;
  std::vector<std::function<void()>> held_;
  uint64_t seq_ = 0;
};

// Counts Delivered calls per message id.
class AckRecorder {
 public:
  Acknowledge Callback();
  size_t total() const;
  // Message ids acknowledged more than once.
  size_t repeated() const;
  bool Acked(const v1::Envelope& envelope) const;
  // Runs in each acknowledgement, before it is recorded, with the message id (set it before the
  // router starts): lets a test hold a receipt back, and what follows it on that thread.
  std::function<void(const std::string&)> before_ack;

 private:
  mutable std::mutex mu_;
  std::map<std::string, int> acks_;
  size_t total_ = 0;
};

}  // namespace nodelink::router::testing

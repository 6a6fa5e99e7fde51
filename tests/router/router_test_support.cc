#include "router_test_support.h"

#include <utility>

#include "core/random.h"

namespace nodelink::router::testing {

bool Eventually(const std::function<bool()>& condition, std::chrono::milliseconds limit) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

void Gate::Open() {
  {
    std::lock_guard lock(mu_);
    open_ = true;
  }
  cv_.notify_all();
}

bool Gate::Wait(std::chrono::milliseconds limit) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, limit, [this] { return open_; });
}

bool Gate::is_open() const {
  std::lock_guard lock(mu_);
  return open_;
}

v1::Envelope MakeEnvelope(const std::string& sender, const std::string& recipient,
                          const v1::Inner& inner, uint64_t seq) {
  v1::Envelope envelope;
  envelope.set_version(1);
  envelope.set_federation("fed");
  envelope.set_sender(sender);
  envelope.set_recipient(recipient);
  envelope.set_message_id(ToString(core::RandomBytes(16)));
  envelope.set_sent_at_ms(1'700'000'000'000);
  v1::Sealed* sealed = envelope.mutable_sealed();
  sealed->set_channel_id(std::string(16, 'c'));
  sealed->set_seq(seq);
  sealed->set_ciphertext(inner.SerializeAsString());
  return envelope;
}

v1::Inner AppInner(const std::string& type, const std::string& payload) {
  v1::Inner inner;
  inner.mutable_app()->set_type(type);
  inner.mutable_app()->set_payload(payload);
  return inner;
}

// ---------------------------------------------------------------------------------------------

TestOpener::TestOpener(std::string self, core::Clock& clock, DoneMode mode)
    : self_(std::move(self)), clock_(clock), mode_(mode) {
  if (mode_ == DoneMode::kCommitThread) commit_thread_ = std::thread([this] { RunCommitThread(); });
}

TestOpener::~TestOpener() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  commit_cv_.notify_all();
  if (commit_thread_.joinable()) commit_thread_.join();
}

overlay::OpenOutcome TestOpener::Decide(const v1::Envelope& envelope) {
  overlay::OpenOutcome outcome;
  // PROTOCOL.md section 7, check 2 (the real check lives in the overlay).
  if (envelope.recipient() != self_) {
    outcome.code = messages::ReceiveCode::kMisrouted;
    return outcome;
  }
  v1::Inner inner;
  if (!envelope.has_sealed() || !inner.ParseFromString(envelope.sealed().ciphertext())) {
    outcome.code = messages::ReceiveCode::kMalformed;
    return outcome;
  }
  std::lock_guard lock(mu_);
  if (inner.has_app()) {
    if (auto it = refuse_.find(inner.app().type()); it != refuse_.end()) {
      outcome.code = it->second;
      return outcome;
    }
  }
  overlay::InboxMessage message;
  message.inbox_id = next_inbox_id_++;
  message.sender = envelope.sender();
  message.message_id = ToBytes(envelope.message_id());
  message.sent_at_ms = envelope.sent_at_ms();
  message.received_ms = clock_.NowMs();
  message.inner = std::move(inner);
  outcome.message = std::move(message);
  return outcome;
}

void TestOpener::OpenAlone(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done) {
  {
    std::lock_guard lock(mu_);
    ++alone_opens_;
  }
  Open(std::move(envelope), std::move(done));
}

size_t TestOpener::alone_opens() const {
  std::lock_guard lock(mu_);
  return alone_opens_;
}

void TestOpener::OpenAndHandle(v1::Envelope envelope, Handle handle,
                               std::function<void(overlay::OpenOutcome)> done) {
  {
    std::lock_guard lock(mu_);
    ++alone_opens_;
    ++open_and_handle_calls_;
  }
  OpenImpl(std::move(envelope), std::move(done), &handle);
}

size_t TestOpener::open_and_handle_calls() const {
  std::lock_guard lock(mu_);
  return open_and_handle_calls_;
}

void TestOpener::Open(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done) {
  OpenImpl(std::move(envelope), std::move(done), nullptr);
}

void TestOpener::OpenImpl(v1::Envelope envelope, std::function<void(overlay::OpenOutcome)> done,
                          const TestOpener::Handle* handle) {
  const std::string sender = envelope.sender();
  {
    std::lock_guard lock(mu_);
    if (!opening_.insert(sender).second) ++overlapping_;
  }
  overlay::OpenOutcome outcome = Decide(envelope);
  // As the overlay's OpenAndHandle: the message to `handle` before its outcome is "durable".
  std::optional<overlay::InboxMessage> opened;
  if (handle != nullptr && outcome.code == messages::ReceiveCode::kOk && outcome.message) {
    opened = std::move(outcome.message);
    outcome.message.reset();
  }
  // Widen the window in which an overlapping Open of the same sender would be seen.
  std::this_thread::yield();
  bool inline_done = false;
  {
    std::lock_guard lock(mu_);
    opening_.erase(sender);
    if (mode_ == DoneMode::kInline) {
      inline_done = true;
    } else {
      held_.emplace_back(std::move(done), std::move(outcome));
    }
  }
  if (!inline_done) commit_cv_.notify_one();
  if (opened && inline_done) {  // "durable" once the caller places the record
    (*handle)(std::move(*opened), [done = std::move(done), outcome = std::move(outcome)]() mutable {
      done(std::move(outcome));
    });
    return;
  }
  if (opened) (*handle)(std::move(*opened), [] {});
  if (inline_done) done(std::move(outcome));
}

void TestOpener::RunCommitThread() {
  std::unique_lock lock(mu_);
  while (true) {
    commit_cv_.wait(lock, [this] { return stopping_ || !held_.empty(); });
    if (held_.empty() && stopping_) return;
    // One "transaction" commits whatever has queued up, then the callbacks run in order.
    auto batch = std::move(held_);
    held_.clear();
    lock.unlock();
    for (auto& [done, outcome] : batch) done(std::move(outcome));
    lock.lock();
  }
}

size_t TestOpener::ReleaseHeld() {
  std::deque<std::pair<std::function<void(overlay::OpenOutcome)>, overlay::OpenOutcome>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(held_);
  }
  for (auto& [done, outcome] : batch) done(std::move(outcome));
  return batch.size();
}

size_t TestOpener::held() const {
  std::lock_guard lock(mu_);
  return held_.size();
}

void TestOpener::Complete(uint64_t inbox_id, std::function<void()> durable) {
  {
    std::lock_guard lock(mu_);
    ++completed_[inbox_id];
  }
  if (durable) durable();
}

std::vector<overlay::InboxMessage> TestOpener::PendingInbox() {
  std::lock_guard lock(mu_);
  return pending_;
}

void TestOpener::RefuseType(const std::string& app_type, messages::ReceiveCode code) {
  std::lock_guard lock(mu_);
  refuse_[app_type] = code;
}

void TestOpener::SetPendingInbox(std::vector<overlay::InboxMessage> pending) {
  std::lock_guard lock(mu_);
  pending_ = std::move(pending);
}

size_t TestOpener::overlapping_opens() const {
  std::lock_guard lock(mu_);
  return overlapping_;
}

std::map<uint64_t, int> TestOpener::completed() const {
  std::lock_guard lock(mu_);
  return completed_;
}

// ---------------------------------------------------------------------------------------------

void LoopSender::Send(const std::string& peer, v1::Inner inner,
                      std::function<void(absl::Status)> done) {
  Router* route = nullptr;
  absl::Status status;
  uint64_t seq;
  {
    std::lock_guard lock(mu_);
    sent_.push_back(SentInner{peer, inner});
    seq = ++seq_;
    if (auto it = failing_.find(peer); it != failing_.end()) {
      status = it->second;
    } else if (!silent_.count(peer)) {
      if (auto r = routes_.find(peer); r != routes_.end()) route = r->second;
    }
  }
  if (route != nullptr) route->Submit(MakeEnvelope(self_, peer, inner, seq));
  {
    std::lock_guard lock(mu_);
    if (hold_) {
      held_.push_back([done = std::move(done), status] { done(status); });
      return;
    }
  }
  done(status);  // not under the lock: done may send again
}

void LoopSender::Connect(const std::string& peer, Router* router) {
  std::lock_guard lock(mu_);
  routes_[peer] = router;
}

void LoopSender::SetSilent(const std::string& peer) {
  std::lock_guard lock(mu_);
  silent_.insert(peer);
}

void LoopSender::SetFailing(const std::string& peer, absl::Status status) {
  std::lock_guard lock(mu_);
  failing_[peer] = std::move(status);
}

void LoopSender::HoldDone(bool hold) {
  std::lock_guard lock(mu_);
  hold_ = hold;
}

size_t LoopSender::ReleaseDone() {
  std::vector<std::function<void()>> held;
  {
    std::lock_guard lock(mu_);
    held.swap(held_);
  }
  for (auto& done : held) done();
  return held.size();
}

std::vector<SentInner> LoopSender::sent() const {
  std::lock_guard lock(mu_);
  return sent_;
}

std::vector<SentInner> LoopSender::SentTo(const std::string& peer) const {
  std::lock_guard lock(mu_);
  std::vector<SentInner> out;
  for (const SentInner& s : sent_) {
    if (s.peer == peer) out.push_back(s);
  }
  return out;
}

size_t LoopSender::sent_count() const {
  std::lock_guard lock(mu_);
  return sent_.size();
}

// ---------------------------------------------------------------------------------------------

Acknowledge AckRecorder::Callback() {
  return [this](ByteView message_id) {
    if (before_ack) before_ack(ToString(message_id));
    std::lock_guard lock(mu_);
    ++acks_[ToString(message_id)];
    ++total_;
  };
}

size_t AckRecorder::total() const {
  std::lock_guard lock(mu_);
  return total_;
}

size_t AckRecorder::repeated() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [id, count] : acks_) n += count > 1 ? 1 : 0;
  return n;
}

bool AckRecorder::Acked(const v1::Envelope& envelope) const {
  std::lock_guard lock(mu_);
  auto it = acks_.find(envelope.message_id());
  return it != acks_.end() && it->second == 1;
}

}  // namespace nodelink::router::testing

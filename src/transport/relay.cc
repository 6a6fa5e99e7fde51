#include "transport/relay.h"

#include <algorithm>
#include <future>
#include <memory>
#include <utility>

#include "messages/envelope_check.h"
#include "messages/names.h"
#include "spdlog/spdlog.h"

namespace nodelink::transport {

namespace {

constexpr size_t kNoticeSlack = 16;  // extra rows per fetch, for notices (they take no credit)
// Envelopes up to this size are pushed from memory when their recipient waits (Relay::PushNow);
// larger ones are read back from the queue, so the hub holds one copy of each.
constexpr size_t kPushNowMaxBytes = 64 << 10;

// Ids read from the network are logged only when they are valid names (no control characters).
std::string_view SafeId(const std::string& id) {
  return messages::IsValidName(id) ? std::string_view(id) : std::string_view("<not a valid id>");
}

void CountRejected(HubCounters& counters, v1::Code code) {
  const auto i = static_cast<size_t>(code);
  if (i < kRejectCodeSlots) counters.rejected[i].fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

Relay::Relay(RelayOptions options, QueueCommitter& committer, const core::Clock& clock,
             HubCounters& counters)
    : options_(std::move(options)),
      committer_(committer),
      clock_(clock),
      counters_(counters),
      rate_(options_.rate, clock) {
  if (options_.faults.any()) faults_.emplace(options_.faults);
}

absl::Status Relay::Attach(Session* session, const std::string& node_id, uint32_t max_in_flight) {
  std::lock_guard lock(mu_);
  if (stopped_) return absl::UnavailableError("the hub is shutting down; reconnect later");
  if (options_.members && !options_.members->contains(node_id)) {
    return absl::PermissionDeniedError("participant " + node_id +
                                       " is not a member of this hub's federation");
  }
  auto [it, inserted] = conns_.try_emplace(node_id);
  Conn& c = it->second;
  if (!inserted && c.session != nullptr) {
    spdlog::info("hub: participant {} opened a newer stream; ending the older one", node_id);
    c.session->End(absl::AbortedError("replaced by a newer stream of the same participant"));
    counters_.streams_replaced.fetch_add(1, std::memory_order_relaxed);
  } else {
    counters_.connected.fetch_add(1, std::memory_order_relaxed);
  }
  c = Conn{};
  c.session = session;
  c.epoch = next_epoch_++;
  uint32_t mif = max_in_flight == 0 ? options_.default_max_in_flight : max_in_flight;
  c.max_in_flight = std::clamp<uint32_t>(mif, 1, options_.max_in_flight_cap);
  counters_.streams_opened.fetch_add(1, std::memory_order_relaxed);

  v1::HubFrame frame;
  v1::Welcome* w = frame.mutable_welcome();
  w->set_protocol_version(messages::kProtocolVersion);
  w->set_hub_id(options_.hub_id);
  w->set_hub_time_ms(clock_.NowMs());
  w->set_max_envelope_bytes(options_.max_envelope_bytes);
  w->set_queue_ttl_ms(options_.queue_ttl_ms);
  session->Send(std::move(frame), Session::FrameKind::kWelcome, 0);
  spdlog::info("hub: participant {} connected (max_in_flight {})", node_id, c.max_in_flight);
  MaybeFetch(node_id, c);
  return absl::OkStatus();
}

void Relay::Detach(Session* session, const std::string& node_id) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(node_id);
  if (it == conns_.end() || it->second.session != session) return;
  conns_.erase(it);
  counters_.connected.fetch_sub(1, std::memory_order_relaxed);
  spdlog::info("hub: participant {} disconnected", node_id);
}

void Relay::EndAll(const absl::Status& status) {
  std::lock_guard lock(mu_);
  stopped_ = true;
  for (auto& [node, c] : conns_) {
    if (c.session != nullptr) c.session->End(status);
  }
}

uint64_t Relay::EpochOf(const std::string& node_id) {
  auto it = conns_.find(node_id);
  return it == conns_.end() ? 0 : it->second.epoch;
}

void Relay::Reject(Session* session, const v1::Envelope& e, v1::Code code, std::string detail) {
  CountRejected(counters_, code);
  spdlog::debug("hub: rejected envelope from {} to {}: {} ({})", SafeId(e.sender()),
                SafeId(e.recipient()), v1::Code_Name(code), detail);
  v1::HubFrame frame;
  v1::Rejected* r = frame.mutable_rejected();
  r->set_message_id(e.message_id());
  r->set_code(code);
  r->set_detail(std::move(detail));
  session->Send(std::move(frame), Session::FrameKind::kAnswer, 0);
}

std::optional<std::pair<v1::Code, std::string>> Relay::CheckEnvelope(const std::string& node_id,
                                                                     const v1::Envelope& e) {
  // PROTOCOL 4 acceptance rules; the size is that of the serialized Envelope.
  const size_t size = e.ByteSizeLong();
  if (size > options_.max_envelope_bytes) {
    return std::make_pair(v1::TOO_LARGE, "envelope is " + std::to_string(size) +
                                             " bytes; this hub accepts at most " +
                                             std::to_string(options_.max_envelope_bytes));
  }
  if (e.version() != messages::kProtocolVersion) {
    return std::make_pair(
        v1::UNSUPPORTED_VERSION,
        "envelope version " + std::to_string(e.version()) + " is not supported (1)");
  }
  if (e.sender() != node_id) {
    // Only a valid name is logged: the field is attacker-controlled.
    spdlog::warn("hub: participant {} sent an envelope claiming sender '{}': IMPERSONATION",
                 node_id, SafeId(e.sender()));
    return std::make_pair(v1::IMPERSONATION,
                          "sender must be the authenticated participant " + node_id);
  }
  if (!rate_.Allow(node_id)) {
    return std::make_pair(v1::RATE_LIMITED,
                          std::string("sender exceeded the hub's rate limit; slow down"));
  }
  messages::EnvelopeVerdict verdict = messages::CheckWellFormed(e);
  if (!verdict.ok()) return std::make_pair(v1::MALFORMED, std::move(verdict.detail));
  if (e.federation() != options_.federation) {
    return std::make_pair(v1::WRONG_FEDERATION,
                          "this hub serves federation " + options_.federation);
  }
  if (options_.members && !options_.members->contains(e.recipient())) {
    return std::make_pair(v1::UNKNOWN_DESTINATION,
                          "recipient " + e.recipient() + " is not a member of the federation");
  }
  return std::nullopt;
}

void Relay::OnEnvelope(Session* session, const std::string& node_id, const v1::Envelope& e) {
  // Checks and serialization (a copy of up to max_envelope_bytes) run outside the registry lock;
  // one stream's envelopes arrive one at a time, so their order is kept.
  std::optional<std::pair<v1::Code, std::string>> refusal = CheckEnvelope(node_id, e);
  std::string body;
  if (!refusal) body = e.SerializeAsString();

  std::lock_guard lock(mu_);
  auto it = conns_.find(node_id);
  if (it == conns_.end() || it->second.session != session) return;  // replaced: no answer
  if (refusal) return Reject(session, e, refusal->first, std::move(refusal->second));
  // A small envelope for a recipient that waits is kept as parsed, so that the hub pushes it while
  // its append commits instead of reading it back from the queue (PushNow). Under load recipients
  // have rows queued, and nothing is copied.
  auto staged = std::make_shared<Staged>();
  if (body.size() <= kPushNowMaxBytes && Waiting(e.recipient()) != nullptr) {
    *staged->pushable.mutable_envelope() = e;
  }
  const uint64_t epoch = it->second.epoch;
  const uint64_t now = clock_.NowMs();
  AppendRequest request{
      e.sender(), e.recipient(), e.message_id(), now, now + options_.queue_ttl_ms, std::move(body)};
  // Both run on the thread of the committer's pass, OnStaged first.
  const bool posted = committer_.Append(
      std::move(request),
      [this, node_id, epoch, recipient = e.recipient(), message_id = e.message_id(),
       staged](const absl::StatusOr<AppendResult>& r) {
        OnAppended(node_id, epoch, recipient, message_id, staged->pushed, r);
      },
      [this, recipient = e.recipient(), message_id = e.message_id(),
       staged](const AppendResult& r) { OnStaged(recipient, message_id, *staged, r); });
  if (!posted) session->End(absl::UnavailableError("the hub is shutting down; reconnect later"));
}

void Relay::Answer(const std::string& sender, uint64_t epoch, v1::HubFrame frame) {
  auto it = conns_.find(sender);
  if (it == conns_.end() || it->second.session == nullptr) return;  // it will resend
  // A newer stream of the sender gets the answer too (it matches it to its outbox by id), but it
  // is not the answer to an envelope read on that stream.
  const auto kind =
      it->second.epoch == epoch ? Session::FrameKind::kAnswer : Session::FrameKind::kNotice;
  it->second.session->Send(std::move(frame), kind, 0);
}

void Relay::OnStaged(const std::string& recipient, const std::string& message_id, Staged& staged,
                     const AppendResult& result) {
  if (result.outcome != AppendOutcome::kQueued) return;
  std::lock_guard lock(mu_);
  // In commit order, before the commit: a row this recipient waits for is pushed now, or the
  // recipient is marked as having rows queued, so that no later row is pushed ahead of this one.
  staged.pushed = staged.pushable.has_envelope() &&
                  PushNow(recipient, result.id, message_id, staged.pushable);
  if (!staged.pushed) NotifyQueued(recipient);  // its fetch runs after this commit
}

void Relay::OnAppended(const std::string& sender, uint64_t sender_epoch,
                       const std::string& recipient, const std::string& message_id, bool pushed,
                       const absl::StatusOr<AppendResult>& result) {
  std::lock_guard lock(mu_);
  // Nothing durable to answer: end the stream so that the client resends after reconnecting. The
  // same when the commit of an envelope already pushed failed on a full disk: refused, it would
  // be sent again as a new message by its sender, whereas its resend is a duplicate that the
  // recipient acknowledges (PROTOCOL 7). The pushed row's id is not handed out again while the
  // store is open (queue_store.h), so the recipient's receipt for it deletes nothing.
  if (!result.ok() || (pushed && result->outcome != AppendOutcome::kQueued)) {
    auto it = conns_.find(sender);
    if (it != conns_.end() && it->second.epoch == sender_epoch && it->second.session) {
      it->second.session->End(absl::UnavailableError("the hub could not store the envelope"));
    }
    return;
  }
  v1::HubFrame frame;
  switch (result->outcome) {
    case AppendOutcome::kQueued:  // pushed or announced to the recipient by OnStaged
      counters_.accepted.fetch_add(1, std::memory_order_relaxed);
      frame.mutable_accepted()->set_message_id(message_id);
      Answer(sender, sender_epoch, std::move(frame));
      return;
    case AppendOutcome::kDuplicate:
      counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
      frame.mutable_accepted()->set_message_id(message_id);
      Answer(sender, sender_epoch, std::move(frame));
      return;
    case AppendOutcome::kQueueFull:
      return AnswerQueueFull(sender, sender_epoch, message_id,
                             "the queue of " + recipient + " is at its bound; retry later");
    case AppendOutcome::kDiskFull:
      return AnswerQueueFull(sender, sender_epoch, message_id,
                             "the hub's disk is full or nearly full; retry later");
  }
}

void Relay::AnswerQueueFull(const std::string& sender, uint64_t sender_epoch,
                            const std::string& message_id, std::string detail) {
  CountRejected(counters_, v1::QUEUE_FULL);
  v1::HubFrame frame;
  v1::Rejected* r = frame.mutable_rejected();
  r->set_message_id(message_id);
  r->set_code(v1::QUEUE_FULL);
  r->set_detail(std::move(detail));
  Answer(sender, sender_epoch, std::move(frame));
}

Relay::Conn* Relay::Waiting(const std::string& recipient) {
  auto it = conns_.find(recipient);
  if (it == conns_.end() || it->second.session == nullptr) return nullptr;
  Conn& c = it->second;
  return c.more || c.fetching ? nullptr : &c;
}

bool Relay::PushNow(const std::string& recipient, uint64_t queue_id, const std::string& message_id,
                    v1::HubFrame& frame) {
  Conn* c = Waiting(recipient);
  // Waiting, every row of this recipient's below `queue_id` has been handled (the last fetch
  // found nothing above the cursor, and each append staged since was pushed here), so pushing
  // this one now keeps the queue's order.
  const uint64_t bytes = frame.envelope().ByteSizeLong();
  if (c == nullptr || queue_id <= c->cursor || !HasRoom(*c, message_id, bytes)) return false;
  ++c->commit_gen;
  counters_.pushed_at_once.fetch_add(1, std::memory_order_relaxed);
  PushRow(recipient, *c, std::move(frame), queue_id, message_id, bytes);
  return true;
}

void Relay::NotifyQueued(const std::string& recipient) {
  auto it = conns_.find(recipient);
  if (it == conns_.end() || it->second.session == nullptr) return;
  ++it->second.commit_gen;
  it->second.more = true;
  MaybeFetch(recipient, it->second);
}

void Relay::MaybeFetch(const std::string& node_id, Conn& c) {
  if (c.session == nullptr || c.fetching || !c.more) return;
  if (c.in_flight.size() >= c.max_in_flight) return;
  if (!c.in_flight.empty() && c.in_flight_bytes >= options_.max_in_flight_bytes) return;
  const size_t credits = c.max_in_flight - c.in_flight.size();
  const uint64_t byte_room =
      std::max<uint64_t>(1, options_.max_in_flight_bytes > c.in_flight_bytes
                                ? options_.max_in_flight_bytes - c.in_flight_bytes
                                : 0);
  c.fetching = true;
  const uint64_t epoch = c.epoch;
  const uint64_t gen = c.commit_gen;
  const bool posted =
      committer_.Fetch(node_id, c.cursor, credits + kNoticeSlack, byte_room,
                       [this, node_id, epoch, gen](absl::StatusOr<std::vector<QueuedItem>> rows) {
                         OnFetched(node_id, epoch, gen, std::move(rows));
                       });
  if (!posted) c.fetching = false;
}

void Relay::OnFetched(const std::string& node_id, uint64_t epoch, uint64_t gen,
                      absl::StatusOr<std::vector<QueuedItem>> rows) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(node_id);
  if (it == conns_.end() || it->second.epoch != epoch) return;
  Conn& c = it->second;
  c.fetching = false;
  if (!rows.ok()) {
    spdlog::error("hub: reading the queue of {} failed: {}", node_id, rows.status().ToString());
    c.session->End(absl::UnavailableError("the hub could not read its queue; reconnect later"));
    return;
  }
  bool waiting_for_ack = false;
  for (QueuedItem& row : *rows) {
    if (row.kind == QueuedKind::kExpiredNotice) {
      v1::HubFrame frame;
      if (!frame.mutable_rejected()->ParseFromString(row.body)) {
        spdlog::error("hub: queue row {} holds an unreadable notice; deleting it", row.id);
        committer_.Delete(row.id);
      } else {
        c.session->Send(std::move(frame), Session::FrameKind::kNotice, row.id);
        counters_.notices_sent.fetch_add(1, std::memory_order_relaxed);
      }
      c.cursor = row.id;
      continue;
    }
    if (!HasRoom(c, row.message_id, row.body.size())) {
      waiting_for_ack = true;
      break;
    }
    v1::HubFrame frame;
    if (!frame.mutable_envelope()->ParseFromString(row.body)) {
      spdlog::error("hub: queue row {} holds an unreadable envelope; deleting it", row.id);
      committer_.Delete(row.id);
      c.cursor = row.id;
      continue;
    }
    PushRow(node_id, c, std::move(frame), row.id, row.message_id, row.body.size());
  }
  if (waiting_for_ack) {
    c.more = true;  // OnDelivered fetches again
    return;
  }
  // An empty fetch with no commit since it started means the queue is drained above the cursor.
  c.more = !rows->empty() || c.commit_gen != gen;
  MaybeFetch(node_id, c);
}

bool Relay::HasRoom(const Conn& c, const std::string& message_id, uint64_t bytes) const {
  if (c.in_flight.size() >= c.max_in_flight) return false;
  if (!c.in_flight.empty() && c.in_flight_bytes + bytes > options_.max_in_flight_bytes) {
    return false;
  }
  // One envelope per message id in flight, so that Delivered is unambiguous (see relay.h).
  return std::none_of(c.in_flight.begin(), c.in_flight.end(),
                      [&](const InFlight& f) { return f.message_id == message_id; });
}

void Relay::PushRow(const std::string& node_id, Conn& c, v1::HubFrame frame, uint64_t queue_id,
                    const std::string& message_id, uint64_t bytes) {
  c.cursor = queue_id;
  const Fault fault = faults_ ? faults_->Choose(frame.envelope()) : Fault::kNone;
  if (fault != Fault::kNone) {
    counters_.faults_injected[static_cast<size_t>(fault)].fetch_add(1, std::memory_order_relaxed);
  }
  if (fault == Fault::kDrop) {  // accepted, then lost: as if the recipient had acknowledged it
    committer_.Delete(queue_id);
    return;
  }
  c.in_flight.push_back({queue_id, message_id, bytes});
  c.in_flight_bytes += bytes;
  counters_.pushed.fetch_add(1, std::memory_order_relaxed);
  uint64_t& high = pushed_high_[node_id];
  if (queue_id <= high) {
    counters_.redeliveries.fetch_add(1, std::memory_order_relaxed);
  } else {
    high = queue_id;
  }
  Push(c, std::move(frame), queue_id, fault);
}

void Relay::Push(Conn& c, v1::HubFrame frame, uint64_t queue_id, Fault fault) {
  switch (fault) {
    case Fault::kCorrupt:
      faults_->Corrupt(*frame.mutable_envelope());
      break;
    case Fault::kDuplicate:
      c.session->Send(frame, Session::FrameKind::kPush, queue_id);  // a copy; the original below
      break;
    case Fault::kReorder:
    case Fault::kDelay:
      c.held.push_back({clock_.NowMs() + faults_->options().delay_ms, fault == Fault::kReorder,
                        std::move(frame), queue_id});
      return;
    default:
      break;
  }
  c.session->Send(std::move(frame), Session::FrameKind::kPush, queue_id);
  if (!c.held.empty()) SendHeld(c, true, clock_.NowMs());
}

void Relay::SendHeld(Conn& c, bool after_push, uint64_t now_ms) {
  for (auto it = c.held.begin(); it != c.held.end();) {
    if ((after_push && it->after_next_push) || it->due_ms <= now_ms) {
      c.session->Send(std::move(it->frame), Session::FrameKind::kPush, it->queue_id);
      it = c.held.erase(it);
    } else {
      ++it;
    }
  }
}

void Relay::ReleaseHeldPushes() {
  if (!faults_) return;
  std::lock_guard lock(mu_);
  const uint64_t now = clock_.NowMs();
  for (auto& [node, c] : conns_) {
    if (c.session != nullptr && !c.held.empty()) SendHeld(c, false, now);
  }
}

void Relay::OnDelivered(Session* session, const std::string& node_id,
                        const std::string& message_id) {
  std::lock_guard lock(mu_);
  auto it = conns_.find(node_id);
  if (it == conns_.end() || it->second.session != session) {
    counters_.delivered_unmatched.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Conn& c = it->second;
  auto f = std::find_if(c.in_flight.begin(), c.in_flight.end(),
                        [&](const InFlight& x) { return x.message_id == message_id; });
  if (f == c.in_flight.end()) {
    // Not pushed on this stream (a stale or repeated receipt): ignored. An envelope is deleted
    // only by a receipt on the stream that pushed it.
    counters_.delivered_unmatched.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  committer_.Delete(f->id);
  c.in_flight_bytes -= f->bytes;
  c.in_flight.erase(f);
  counters_.delivered.fetch_add(1, std::memory_order_relaxed);
  MaybeFetch(node_id, c);
}

void Relay::OnNoticeWritten(uint64_t queue_id) { committer_.Delete(queue_id); }

absl::StatusOr<uint64_t> Relay::ExpireNow() {
  auto done = std::make_shared<std::promise<absl::StatusOr<uint64_t>>>();
  std::future<absl::StatusOr<uint64_t>> result = done->get_future();
  const uint64_t ttl = options_.queue_ttl_ms;
  const uint64_t window = std::max(options_.dedup_window_ms, ttl);
  NoticeBodyBuilder notice = [ttl](const QueuedItem& expired) {
    v1::Rejected r;
    r.set_message_id(expired.message_id);
    r.set_code(v1::EXPIRED);
    r.set_detail("not delivered to " + expired.recipient +
                 " within the hub's queue time to live (" + std::to_string(ttl) + " ms)");
    return r.SerializeAsString();
  };
  const bool posted = committer_.Expire(
      clock_.NowMs(), window, ttl, std::move(notice), [this, done](absl::StatusOr<ExpireResult> r) {
        if (!r.ok()) {
          done->set_value(r.status());
          return;
        }
        counters_.expired.fetch_add(r->expired_envelopes, std::memory_order_relaxed);
        {
          std::lock_guard lock(mu_);
          for (const QueuedItem& n : r->notices) {
            spdlog::info("hub: envelope from {} to {} expired; notice queued for {}", n.recipient,
                         n.sender, n.recipient);
            NotifyQueued(n.recipient);
          }
        }
        done->set_value(r->expired_envelopes);
      });
  if (!posted) return absl::UnavailableError("the hub is shutting down");
  return result.get();
}

}  // namespace nodelink::transport

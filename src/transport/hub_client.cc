#include "transport/hub_client.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <list>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

#include "core/thread_name.h"
#include "messages/envelope_check.h"
#include "messages/names.h"
#include "nodelink/v1/hub.grpc.pb.h"
#include "spdlog/spdlog.h"
#include "transport/abseil_mode.h"
#include "transport/completion_readers.h"
#include "transport/identity.h"

namespace nodelink::transport {

namespace {

std::atomic<uint64_t> g_client_instances{0};

// How long a push's handling may keep the thread that read it before the other reader takes over
// the completion queue. Longer than a small message's handling on a busy two-core machine
// (round-trip p99 2-3 ms, bench/RESULTS.md), short enough that a slow handler costs the stream
// little.
constexpr std::chrono::microseconds kReaderTakeoverAfter{2000};

}  // namespace

class HubClient::Impl {
 public:
  class Stream;

  Impl(HubClientOptions options, EnvelopeHandler on_envelope)
      : options_(std::move(options)),
        on_envelope_(std::move(on_envelope)),
        clock_(options_.clock != nullptr ? options_.clock : &core::SystemClock::Get()),
        rng_(std::random_device{}()),
        readers_(cq_, &Impl::Complete, kReaderTakeoverAfter) {}

  absl::Status Init();
  void Send(v1::Envelope envelope, std::function<void(HubAnswer)> done);
  void Acknowledge(std::string message_id);
  bool WaitConnected(std::chrono::milliseconds timeout);
  std::optional<v1::Welcome> welcome() const;
  void Stop();
  HubClientStats stats() const;

  // From the stream's reactions (gRPC threads), without the stream's lock held. Returns a pushed
  // envelope to hand to on_envelope_ (the caller does, with no lock held).
  std::optional<v1::Envelope> OnFrame(Stream* stream, v1::HubFrame& frame);
  void OnStreamDone(Stream* stream, const grpc::Status& status);

 private:
  struct OutboxEntry {
    v1::Envelope envelope;
    std::function<void(HubAnswer)> done;
    uint64_t written_epoch = 0;  // the stream it was last written on (0 = never)
    size_t bytes = 0;
  };

  void Post(std::function<void()> task);  // runs on the transport thread
  void RunWorker();
  static void Complete(void* tag, bool ok);  // a completion of cq_, on a reader thread
  void StartStreamLocked();
  void WriteEntryLocked(OutboxEntry& entry);
  void Answer(const std::string& message_id, HubAnswer answer, const v1::Rejected* rejected);

  const HubClientOptions options_;
  const EnvelopeHandler on_envelope_;
  core::Clock* const clock_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Hub::Stub> stub_;

  mutable std::mutex mu_;
  std::condition_variable cv_;        // worker: tasks, reconnect time, exit
  std::condition_variable state_cv_;  // WaitConnected, Stop
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  bool worker_exit_ = false;
  bool connect_pending_ = true;
  std::chrono::steady_clock::time_point connect_at_{};
  uint32_t failed_attempts_ = 0;
  std::mt19937_64 rng_;

  Stream* stream_ = nullptr;  // current stream; cleared (under mu_) before it is deleted
  uint64_t epoch_ = 0;        // of the current stream
  bool welcomed_ = false;     // on the current stream
  std::optional<v1::Welcome> welcome_;
  std::list<OutboxEntry> outbox_;
  std::unordered_map<std::string, uint32_t> pushed_unacked_;  // on the current stream, by id
  HubClientStats stats_;
  std::thread worker_;
  grpc::CompletionQueue cq_;  // every stream's; shut down and drained by Stop()
  CompletionReaders readers_;  // the two nl-hub-cq threads that take turns reading cq_
};

// One attempt: an asynchronous bidi call on the client's completion queue, whose polling thread
// (one of the two nl-hub-cq, CompletionReaders) runs every completion. Not the callback API: its
// two "nexting" threads per process handed the poller to each other on every completion, ~10
// thread runs per round trip in each participant for 4 frames (bench/RESULTS.md, fifteenth
// session); CompletionReaders hands over only when lent work outlasts 2 ms. Tags never complete
// inside the call that starts them, so ops start under the locks. The call ends once its read
// side fails and no write is outstanding: then Finish, and its status goes to the owner.
class HubClient::Impl::Stream {
 public:
  Stream(Impl* owner, uint64_t epoch) : owner_(owner), epoch_(epoch) {}
  uint64_t epoch() const { return epoch_; }

  void Begin(v1::Hub::Stub* stub, grpc::CompletionQueue* cq, v1::ClientFrame hello) {
    std::lock_guard lock(mu_);
    call_ = stub->PrepareAsyncConnect(&context_, cq);
    queue_.push_back(std::move(hello));  // written once the call has started
    call_->StartCall(&start_);
  }

  void Write(v1::ClientFrame frame) {
    std::lock_guard lock(mu_);
    WriteLocked(std::move(frame));
  }

  void Cancel() { context_.TryCancel(); }

  // On the completion queue's thread. Nothing touches `this` after OnStreamDone (the owner
  // deletes the stream on its transport thread: see OnStreamDone).
  struct Tag {
    Stream* stream;
  };
  void Complete(const Tag* tag, bool ok) {
    std::unique_lock lock(mu_);
    if (tag == &start_) {
      if (!ok) return EndReadsLocked(lock);
      started_ = true;
      call_->Read(&in_, &read_);
      if (!queue_.empty()) WriteFrontLocked();
    } else if (tag == &read_) {
      if (!ok) return EndReadsLocked(lock);
      lock.unlock();
      Impl* const owner = owner_;
      std::optional<v1::Envelope> pushed = owner->OnFrame(this, in_);
      in_.Clear();
      // Handed over here, before the next read starts: reads of a stream complete one at a time,
      // in order, and the next stream starts only after this one ended, so pushes arrive one at a
      // time in hub order. What the receiver hands back runs on this thread, lent (see
      // CompletionReaders), once the next read is under way.
      PushWork work;
      if (pushed) work = owner->on_envelope_(*std::move(pushed), owner->readers_.CanLend());
      lock.lock();
      call_->Read(&in_, &read_);
      if (!work) return;
      lock.unlock();  // from here on, `this` may be deleted (the other reader may end the stream)
      owner->readers_.Lend(work);
    } else if (tag == &write_) {
      queue_.pop_front();
      writing_ = false;
      if (reads_ended_) return MaybeFinishLocked(lock);
      if (ok && !queue_.empty()) WriteFrontLocked();
    } else if (tag == &finish_) {
      finished_ = true;
      return MaybeDoneLocked(lock);
    }
  }

 private:
  void WriteFrontLocked() {
    grpc::WriteOptions options;
    if (queue_.size() > 1) options.set_buffer_hint();  // a burst: sent together, the last flushes
    writing_ = true;
    call_->Write(queue_.front(), options, &write_);
  }

  void WriteLocked(v1::ClientFrame frame) {
    if (reads_ended_) return;  // the call is ending: the hub will get it on the next stream
    queue_.push_back(std::move(frame));
    if (started_ && !writing_) WriteFrontLocked();
  }

  void EndReadsLocked(std::unique_lock<std::mutex>& lock) {
    reads_ended_ = true;
    MaybeFinishLocked(lock);
  }

  // Finish once nothing is outstanding but the finish itself.
  void MaybeFinishLocked(std::unique_lock<std::mutex>& lock) {
    if (writing_) return;
    if (!finish_started_) {
      finish_started_ = true;
      call_->Finish(&status_, &finish_);
    }
    MaybeDoneLocked(lock);
  }

  void MaybeDoneLocked(std::unique_lock<std::mutex>& lock) {
    if (!finished_ || writing_) return;
    const grpc::Status status = status_;
    lock.unlock();
    owner_->OnStreamDone(this, status);
  }

  Impl* const owner_;
  const uint64_t epoch_;
  // Tags: their addresses tell the completions apart.
  Tag start_{this}, read_{this}, write_{this}, finish_{this};
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriter<v1::ClientFrame, v1::HubFrame>> call_;
  v1::HubFrame in_;
  grpc::Status status_;
  std::mutex mu_;
  std::deque<v1::ClientFrame> queue_;  // front() is being written while writing_
  bool started_ = false;
  bool writing_ = false;
  bool reads_ended_ = false;
  bool finish_started_ = false;
  bool finished_ = false;
};

absl::Status HubClient::Impl::Init() {
  if (!messages::IsValidName(options_.federation) || !messages::IsValidName(options_.node_id)) {
    return absl::InvalidArgumentError("hub client: federation and node id must be valid names");
  }
  if (options_.target.empty()) return absl::InvalidArgumentError("hub client: no hub target");
  grpc::ChannelArguments args;
  // Unlimited here, enforced in code against Welcome.max_envelope_bytes: a receive limit below
  // what the hub pushes would loop forever through redelivery (IMPLEMENTATION-NOTES 4.4).
  args.SetMaxReceiveMessageSize(-1);
  args.SetMaxSendMessageSize(-1);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 30'000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 10'000);
  args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, static_cast<int>(options_.initial_backoff_ms));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, static_cast<int>(options_.initial_backoff_ms));
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, static_cast<int>(options_.max_backoff_ms));
  // Each client gets its own subchannel, i.e. its own TCP connection (IMPLEMENTATION-NOTES 4.7).
  args.SetInt("nodelink.client_instance", static_cast<int>(g_client_instances.fetch_add(1)));
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options_.tls) {
    if (!options_.tls_target_name_override.empty()) {
      args.SetSslTargetNameOverride(options_.tls_target_name_override);
    }
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = options_.tls->ca_pem;
    ssl.pem_cert_chain = options_.tls->cert_chain_pem;
    ssl.pem_private_key = std::string(AsStringView(options_.tls->key_pem.ExposeSecret()));
    creds = grpc::SslCredentials(ssl);
    // The one place the identity key leaves SecretBytes: gRPC keeps its own copy inside the
    // credentials; ours is wiped now that the channel's credentials exist.
    core::WipeString(ssl.pem_private_key);
  } else {
    if (!IsLoopbackAddress(options_.target)) {
      return absl::InvalidArgumentError("insecure hub client refuses non-loopback target " +
                                        options_.target + "; give TLS material");
    }
    spdlog::warn("hub client {}: INSECURE development mode (no TLS)", options_.node_id);
    creds = grpc::InsecureChannelCredentials();
  }
  channel_ = grpc::CreateCustomChannel(options_.target, creds, args);
  stub_ = v1::Hub::NewStub(channel_);
  if (absl::Status s = readers_.Start("nl-hub-cq"); !s.ok()) return s;
  worker_ = std::thread([this] {
    core::NameThisThread("nl-transport");
    RunWorker();
  });
  return absl::OkStatus();
}

void HubClient::Impl::Complete(void* tag, bool ok) {
  const auto* t = static_cast<const Stream::Tag*>(tag);
  t->stream->Complete(t, ok);
}

void HubClient::Impl::Post(std::function<void()> task) {
  tasks_.push_back(std::move(task));  // caller holds mu_
  cv_.notify_all();
}

void HubClient::Impl::RunWorker() {
  std::unique_lock lock(mu_);
  for (;;) {
    if (!tasks_.empty()) {
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      lock.lock();
      continue;
    }
    if (worker_exit_) return;
    if (connect_pending_ && !stopping_) {
      if (std::chrono::steady_clock::now() >= connect_at_) {
        connect_pending_ = false;
        StartStreamLocked();
        continue;
      }
      cv_.wait_until(lock, connect_at_);
      continue;
    }
    cv_.wait(lock);
  }
}

void HubClient::Impl::StartStreamLocked() {
  ++epoch_;
  welcomed_ = false;
  pushed_unacked_.clear();
  ++stats_.streams_started;
  stream_ = new Stream(this, epoch_);
  v1::ClientFrame hello;
  v1::Hello* h = hello.mutable_hello();
  h->set_protocol_version(1);
  h->set_federation(options_.federation);
  h->set_node_id(options_.node_id);
  h->set_max_in_flight(options_.max_in_flight);
  // Completions never run inside the call that starts an op, so holding mu_ is safe.
  stream_->Begin(stub_.get(), &cq_, std::move(hello));
}

void HubClient::Impl::WriteEntryLocked(OutboxEntry& entry) {
  if (entry.written_epoch != 0) ++stats_.resends;
  entry.written_epoch = epoch_;
  ++stats_.envelopes_written;
  v1::ClientFrame frame;
  *frame.mutable_envelope() = entry.envelope;
  stream_->Write(std::move(frame));
}

void HubClient::Impl::Send(v1::Envelope envelope, std::function<void(HubAnswer)> done) {
  std::unique_lock lock(mu_);
  const size_t bytes = envelope.ByteSizeLong();
  if (stopping_) {
    // No transport thread any more once stopped: answered here, on the caller's thread.
    HubAnswer stopped{false, v1::CODE_UNSPECIFIED, "hub client stopped; the envelope was not sent"};
    if (worker_exit_) {
      lock.unlock();
      done(stopped);
    } else {
      Post([done = std::move(done), stopped] { done(stopped); });
    }
    return;
  }
  if (welcome_ && bytes > welcome_->max_envelope_bytes()) {
    const uint64_t max = welcome_->max_envelope_bytes();
    Post([done = std::move(done), bytes, max] {
      done({false, v1::TOO_LARGE,
            "envelope is " + std::to_string(bytes) + " bytes; the hub accepts at most " +
                std::to_string(max)});
    });
    return;
  }
  outbox_.push_back(OutboxEntry{std::move(envelope), std::move(done), 0, bytes});
  if (stream_ != nullptr && welcomed_) WriteEntryLocked(outbox_.back());
}

void HubClient::Impl::Acknowledge(std::string message_id) {
  std::lock_guard lock(mu_);
  auto it = pushed_unacked_.find(message_id);
  if (stream_ == nullptr || !welcomed_ || it == pushed_unacked_.end()) {
    ++stats_.acks_dropped;  // pushed on an ended stream: it will be pushed again (see header)
    return;
  }
  if (--it->second == 0) pushed_unacked_.erase(it);
  ++stats_.acks_sent;
  v1::ClientFrame frame;
  frame.mutable_delivered()->set_message_id(std::move(message_id));
  stream_->Write(std::move(frame));
}

void HubClient::Impl::Answer(const std::string& message_id, HubAnswer answer,
                             const v1::Rejected* rejected) {
  // Answers come in send order, so the match is almost always at the front.
  auto it = std::find_if(outbox_.begin(), outbox_.end(), [&](const OutboxEntry& e) {
    return e.envelope.message_id() == message_id;
  });
  if (it == outbox_.end()) {
    if (rejected != nullptr) {
      spdlog::info("hub client {}: hub gave up on an envelope already accepted: {} ({})",
                   options_.node_id, v1::Code_Name(rejected->code()), rejected->detail());
      if (options_.on_late_rejection) {
        Post([cb = options_.on_late_rejection, r = *rejected] { cb(r); });
      }
    }
    return;  // an answer repeated after a resend
  }
  Post([done = std::move(it->done), answer = std::move(answer)] { done(answer); });
  outbox_.erase(it);
}

std::optional<v1::Envelope> HubClient::Impl::OnFrame(Stream* stream, v1::HubFrame& frame) {
  std::lock_guard lock(mu_);
  if (stream != stream_) return std::nullopt;
  switch (frame.frame_case()) {
    case v1::HubFrame::kWelcome: {
      welcomed_ = true;
      welcome_ = frame.welcome();
      failed_attempts_ = 0;
      ++stats_.welcomes;
      const uint64_t now = clock_->NowMs();
      const uint64_t hub = welcome_->hub_time_ms();
      stats_.clock_offset_ms = static_cast<int64_t>(now) - static_cast<int64_t>(hub);
      if ((now > hub ? now - hub : hub - now) > messages::kMaxClockSkewMs) {
        spdlog::warn(
            "hub client {}: clock differs from the hub's by more than 10 minutes; "
            "receivers will refuse its envelopes as STALE; fix the clock",
            options_.node_id);
      }
      spdlog::info("hub client {}: connected to hub {}", options_.node_id, welcome_->hub_id());
      // Resend, in order, everything the hub has not answered (same message ids: the hub's dedup
      // answers Accepted for those it already holds).
      const uint64_t max = welcome_->max_envelope_bytes();
      for (auto it = outbox_.begin(); it != outbox_.end();) {
        if (it->bytes > max) {
          const size_t bytes = it->bytes;
          Post([done = std::move(it->done), bytes, max] {
            done({false, v1::TOO_LARGE,
                  "envelope is " + std::to_string(bytes) + " bytes; the hub accepts at most " +
                      std::to_string(max)});
          });
          it = outbox_.erase(it);
          continue;
        }
        WriteEntryLocked(*it);
        ++it;
      }
      state_cv_.notify_all();
      return std::nullopt;
    }
    case v1::HubFrame::kAccepted:
      Answer(frame.accepted().message_id(), HubAnswer{true, v1::CODE_UNSPECIFIED, ""}, nullptr);
      return std::nullopt;
    case v1::HubFrame::kRejected:
      Answer(frame.rejected().message_id(),
             HubAnswer{false, frame.rejected().code(), frame.rejected().detail()},
             &frame.rejected());
      return std::nullopt;
    case v1::HubFrame::kEnvelope: {
      ++stats_.pushed;
      v1::Envelope envelope;
      envelope.Swap(frame.mutable_envelope());
      if (welcome_ && envelope.ByteSizeLong() > welcome_->max_envelope_bytes()) {
        // Enforced here rather than by gRPC's receive limit (see Init). Refused envelopes are
        // acknowledged too (PROTOCOL 4), so this one cannot loop through redelivery.
        spdlog::warn("hub client {}: refused an envelope over the announced limit",
                     options_.node_id);
        v1::ClientFrame ack;
        ack.mutable_delivered()->set_message_id(envelope.message_id());
        stream_->Write(std::move(ack));
        return std::nullopt;
      }
      ++pushed_unacked_[envelope.message_id()];
      return envelope;
    }
    case v1::HubFrame::FRAME_NOT_SET:
      break;
  }
  return std::nullopt;
}

void HubClient::Impl::OnStreamDone(Stream* stream, const grpc::Status& status) {
  std::lock_guard lock(mu_);
  Post([stream] { delete stream; });  // on the transport thread, which Stop() drains
  const bool was_welcomed = stream == stream_ && welcomed_;
  if (stream == stream_) {
    stream_ = nullptr;
    welcomed_ = false;
    pushed_unacked_.clear();
  }
  state_cv_.notify_all();
  if (stopping_) return;
  if (was_welcomed) {
    spdlog::info("hub client {}: stream to the hub ended ({}: {}); reconnecting", options_.node_id,
                 static_cast<int>(status.error_code()), status.error_message());
  } else if (status.error_code() == grpc::StatusCode::UNAVAILABLE) {
    // A refused client certificate looks exactly like a hub that is down (IMPLEMENTATION-NOTES 2).
    spdlog::warn(
        "hub client {}: TLS handshake failed or hub unreachable; check certificate and "
        "CA ({})",
        options_.node_id, status.error_message());
  } else {
    spdlog::warn("hub client {}: the hub refused the stream ({}: {})", options_.node_id,
                 static_cast<int>(status.error_code()), status.error_message());
  }
  // Exponential backoff with jitter: uniform in [d/2, d], d = initial * 2^failures, capped.
  const uint64_t base =
      std::min<uint64_t>(options_.max_backoff_ms, static_cast<uint64_t>(options_.initial_backoff_ms)
                                                      << std::min<uint32_t>(failed_attempts_, 20));
  if (!was_welcomed) ++failed_attempts_;
  const uint64_t delay =
      base / 2 + std::uniform_int_distribution<uint64_t>(0, base - base / 2)(rng_);
  connect_pending_ = true;
  connect_at_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(delay);
  cv_.notify_all();
}

bool HubClient::Impl::WaitConnected(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return state_cv_.wait_for(lock, timeout, [this] { return welcomed_ && stream_ != nullptr; });
}

std::optional<v1::Welcome> HubClient::Impl::welcome() const {
  std::lock_guard lock(mu_);
  return welcome_;
}

HubClientStats HubClient::Impl::stats() const {
  std::lock_guard lock(mu_);
  HubClientStats stats = stats_;
  stats.reader_takeovers = readers_.takeovers();
  return stats;
}

void HubClient::Impl::Stop() {
  std::unique_lock lock(mu_);
  if (stopping_) {
    state_cv_.wait(lock, [this] { return worker_exit_; });
    return;
  }
  stopping_ = true;
  if (stream_ != nullptr) stream_->Cancel();
  state_cv_.wait(lock, [this] { return stream_ == nullptr; });
  for (OutboxEntry& e : outbox_) {
    Post([done = std::move(e.done)] {
      done({false, v1::CODE_UNSPECIFIED,
            "hub client stopped before the hub answered; the envelope may or may not be queued"});
    });
  }
  outbox_.clear();
  worker_exit_ = true;
  cv_.notify_all();
  state_cv_.notify_all();
  lock.unlock();
  if (worker_.joinable()) worker_.join();  // it deleted the last stream
  cq_.Shutdown();  // no op is outstanding: every stream ended before its deletion
  readers_.Join();
}

HubClient::HubClient(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
HubClient::~HubClient() { Stop(); }

absl::StatusOr<std::unique_ptr<HubClient>> HubClient::Start(HubClientOptions options,
                                                            EnvelopeHandler on_envelope) {
  SkipAbseilDeadlockDetection();
  auto impl = std::make_shared<Impl>(std::move(options), std::move(on_envelope));
  if (absl::Status s = impl->Init(); !s.ok()) return s;
  return std::unique_ptr<HubClient>(new HubClient(std::move(impl)));
}

void HubClient::Send(v1::Envelope envelope, std::function<void(HubAnswer)> done) {
  impl_->Send(std::move(envelope), std::move(done));
}
void HubClient::Acknowledge(std::string message_id) { impl_->Acknowledge(std::move(message_id)); }
bool HubClient::WaitConnected(std::chrono::milliseconds timeout) {
  return impl_->WaitConnected(timeout);
}
std::optional<v1::Welcome> HubClient::welcome() const { return impl_->welcome(); }
void HubClient::Stop() { impl_->Stop(); }
HubClientStats HubClient::stats() const { return impl_->stats(); }

}  // namespace nodelink::transport

// Shared by the in-process and the process tests: envelopes, a recording HubClient receiver, and
// raw streams for protocol-level checks.
#pragma once

#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>
#include <string>
#include <vector>

#include "core/random.h"
#include "nodelink/v1/hub.grpc.pb.h"
#include "transport/hub_client.h"

namespace nodelink::testing {

inline std::string RandomId() {
  Bytes b = core::RandomBytes(16);
  return ToString(b);
}

inline v1::Envelope MakeEnvelope(const std::string& fed, const std::string& sender,
                                 const std::string& recipient, std::string id = RandomId(),
                                 size_t payload = 40) {
  v1::Envelope e;
  e.set_version(1);
  e.set_federation(fed);
  e.set_sender(sender);
  e.set_recipient(recipient);
  e.set_message_id(std::move(id));
  e.set_sent_at_ms(1'700'000'000'000);
  v1::Sealed* s = e.mutable_sealed();
  s->set_channel_id(std::string(16, 'c'));
  s->set_salt(std::string(32, 's'));
  s->set_nonce(std::string(12, 'n'));
  s->set_ciphertext(std::string(payload, 'x'));
  s->set_seq(1);
  return e;
}

// For clients whose pushes the test does not look at.
inline transport::EnvelopeHandler IgnorePushes() {
  return [](v1::Envelope, bool) -> transport::PushWork { return nullptr; };
}

// Collects what a HubClient receives; acknowledges each envelope at once when `auto_ack`.
class Inbox {
 public:
  explicit Inbox(bool auto_ack = true) : auto_ack_(auto_ack) {}
  void Bind(transport::HubClient* client) {
    std::lock_guard lock(mu_);
    client_ = client;
  }
  transport::EnvelopeHandler Callback() {
    return [this](v1::Envelope e, bool) -> transport::PushWork {
      transport::HubClient* c;
      {
        std::lock_guard lock(mu_);
        received_.push_back(e);
        c = client_;
        cv_.notify_all();
      }
      if (auto_ack_ && c != nullptr) c->Acknowledge(e.message_id());
      return nullptr;
    };
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return received_.size() >= n; });
  }
  std::vector<v1::Envelope> received() const {
    std::lock_guard lock(mu_);
    return received_;
  }

 private:
  const bool auto_ack_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  transport::HubClient* client_ = nullptr;
  std::vector<v1::Envelope> received_;
};

// Collects the answers of Send calls.
class Answers {
 public:
  std::function<void(transport::HubAnswer)> Callback(std::string id) {
    return [this, id](transport::HubAnswer a) {
      std::lock_guard lock(mu_);
      answers_.emplace_back(id, a);
      cv_.notify_all();
    };
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return answers_.size() >= n; });
  }
  std::vector<std::pair<std::string, transport::HubAnswer>> all() const {
    std::lock_guard lock(mu_);
    return answers_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::pair<std::string, transport::HubAnswer>> answers_;
};

inline std::shared_ptr<grpc::Channel> RawChannel(const std::string& target,
                                                 const transport::TlsMaterial* tls) {
  grpc::ChannelArguments args;
  static int instance = 0;
  args.SetInt("test.instance", ++instance);  // own connection each time
  if (tls == nullptr)
    return grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = tls->ca_pem;
  ssl.pem_cert_chain = tls->cert_chain_pem;
  ssl.pem_private_key = std::string(AsStringView(tls->key_pem.ExposeSecret()));
  return grpc::CreateCustomChannel(target, grpc::SslCredentials(ssl), args);
}

inline v1::ClientFrame HelloFrame(const std::string& fed, const std::string& node) {
  v1::ClientFrame f;
  f.mutable_hello()->set_protocol_version(1);
  f.mutable_hello()->set_federation(fed);
  f.mutable_hello()->set_node_id(node);
  return f;
}

// Writes `frames` on a fresh stream, then reads until the hub ends it; returns the final status
// and what was read.
struct RawResult {
  grpc::Status status;
  std::vector<v1::HubFrame> frames;
};
inline RawResult RawExchange(std::shared_ptr<grpc::Channel> channel,
                             const std::vector<v1::ClientFrame>& frames, size_t read_before_close,
                             std::chrono::milliseconds deadline = std::chrono::seconds(20)) {
  auto stub = v1::Hub::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + deadline);
  auto stream = stub->Connect(&ctx);
  RawResult r;
  for (const v1::ClientFrame& f : frames) {
    if (!stream->Write(f)) break;
  }
  v1::HubFrame in;
  while (r.frames.size() < read_before_close && stream->Read(&in)) r.frames.push_back(in);
  if (r.frames.size() >= read_before_close) stream->WritesDone();
  while (stream->Read(&in)) r.frames.push_back(in);
  r.status = stream->Finish();
  return r;
}

}  // namespace nodelink::testing

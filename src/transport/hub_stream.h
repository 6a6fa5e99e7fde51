// One participant's Connect stream on the hub: a gRPC callback reactor (no thread per stream)
// that establishes the identity, reads frames into the Relay and writes the relay's frames.
// Follows IMPLEMENTATION-NOTES 4.1-4.3: one outstanding read and one outstanding write, a deque
// write queue, Finish exactly once (after the last queued write), `delete this` only in OnDone
// after Relay::Detach.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>

#include "nodelink/v1/hub.grpc.pb.h"
#include "transport/hub_server.h"
#include "transport/metrics.h"
#include "transport/relay.h"

namespace nodelink::transport {

class HubStream;

// What every stream shares; owned by the HubServer, outlives every stream.
struct StreamEnvironment {
  Relay* relay = nullptr;
  HubCounters* counters = nullptr;
  std::string federation;
  bool insecure = false;  // identity from Hello (development only, loopback only)
  StreamLimits limits;

  // Every live stream, so that shutdown can end those that have not said Hello yet.
  std::mutex live_mu;
  std::set<HubStream*> live;
  bool shutting_down = false;
};

class HubStream final : public grpc::ServerBidiReactor<v1::ClientFrame, v1::HubFrame>,
                        public Session {
 public:
  HubStream(grpc::CallbackServerContext* context, StreamEnvironment& env);

  // Session (called by the relay under its lock).
  void Send(v1::HubFrame frame, FrameKind kind, uint64_t queue_id) override;
  void End(absl::Status status) override;

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  struct Outgoing {
    v1::HubFrame frame;
    FrameKind kind;
    uint64_t queue_id;
    size_t bytes;
  };
  ~HubStream() = default;

  void Refuse(grpc::StatusCode code, const std::string& message);
  void FinishOnce(grpc::Status status);
  void FinishLocked(grpc::Status status);
  void MaybeStartReadLocked();
  void WriteFrontLocked();
  void HandleHello(const v1::Hello& hello);

  StreamEnvironment& env_;
  std::string cert_node_id_;  // from the certificate (TLS mode), before Hello
  std::string node_id_;       // once attached
  bool attached_ = false;     // touched only by the constructor and OnReadDone (sequential)
  v1::ClientFrame in_;

  std::mutex mu_;
  std::deque<Outgoing> queue_;  // front() is being written while writing_
  uint64_t queued_bytes_ = 0;
  bool writing_ = false;
  bool reading_ = false;
  bool read_paused_ = false;
  bool read_side_closed_ = false;  // the client half-closed: finish once all is answered
  bool finish_requested_ = false;
  bool finished_ = false;
  grpc::Status final_status_;
  size_t unanswered_ = 0;
  std::deque<size_t> unanswered_sizes_;
  uint64_t unanswered_bytes_ = 0;
};

// The nodelink.v1.Hub service: one HubStream per Connect.
class HubService final : public v1::Hub::CallbackService {
 public:
  explicit HubService(StreamEnvironment& env) : env_(env) {}
  grpc::ServerBidiReactor<v1::ClientFrame, v1::HubFrame>* Connect(
      grpc::CallbackServerContext* context) override {
    return new HubStream(context, env_);
  }

 private:
  StreamEnvironment& env_;
};

// Converts between absl and gRPC status codes (same numbering).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace nodelink::transport

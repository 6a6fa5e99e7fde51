// One participant's Connect stream on the hub: an asynchronous bidi call on the hub's completion
// queue (completion_target.h). It establishes the identity, reads frames into the Relay and writes
// the relay's frames. Follows IMPLEMENTATION-NOTES 4.1-4.3 as before: one outstanding read and one
// outstanding write, a deque write queue, Finish exactly once (after the last queued write), and
// the stream is deleted only after Relay::Detach, once every operation it started has completed.
#pragma once

#include <grpcpp/grpcpp.h>

#include <cstdint>
#include <deque>
#include <mutex>
#include <set>
#include <string>

#include "nodelink/v1/hub.grpc.pb.h"
#include "transport/completion_target.h"
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
  v1::Hub::AsyncService* service = nullptr;
  grpc::ServerCompletionQueue* cq = nullptr;
  CallCount* calls = nullptr;

  // Every live stream, so that shutdown can end those that have not said Hello yet.
  std::mutex live_mu;
  std::set<HubStream*> live;
  bool shutting_down = false;  // streams accepted from now on are ended at once
};

class HubStream final : public Session, public CompletionTarget {
 public:
  // Asks gRPC for the next Connect call; its stream then asks for the one after it. Does nothing
  // once env.calls is closed.
  static void Listen(StreamEnvironment& env);

  // Session (called by the relay under its lock).
  void Send(v1::HubFrame frame, FrameKind kind, uint64_t queue_id) override;
  void End(absl::Status status) override;

  void Complete(CompletionTag* tag, bool ok) override;

 private:
  struct Outgoing {
    v1::HubFrame frame;
    FrameKind kind;
    uint64_t queue_id;
    size_t bytes;
  };
  explicit HubStream(StreamEnvironment& env) : env_(env) {}
  ~HubStream() = default;

  void OnAccepted();
  void OnReadDone(bool ok);
  void OnWriteDone(bool ok);
  void OnCallDone();
  // Once the call is over and nothing started is outstanding: Detach, forget, delete.
  void RetireIfDone();
  void Delete();  // delete this, then count it gone

  void Refuse(grpc::StatusCode code, const std::string& message);
  void FinishOnce(grpc::Status status);
  void FinishLocked(grpc::Status status);
  void MaybeStartReadLocked();
  void WriteFrontLocked();
  void HandleHello(const v1::Hello& hello);

  StreamEnvironment& env_;
  grpc::ServerContext context_;
  grpc::ServerAsyncReaderWriter<v1::HubFrame, v1::ClientFrame> call_{&context_};
  CompletionTag accepted_{this}, read_{this}, write_{this}, finish_{this}, call_done_{this};
  std::string cert_node_id_;  // from the certificate (TLS mode), before Hello
  std::string node_id_;       // once attached
  bool attached_ = false;     // touched only on the queue's thread, by reads (sequential)
  v1::ClientFrame in_;

  std::mutex mu_;
  std::deque<Outgoing> queue_;  // front() is being written while writing_
  uint64_t queued_bytes_ = 0;
  bool writing_ = false;
  bool reading_ = false;  // a read is outstanding, or its frame is being handled
  bool read_paused_ = false;
  bool read_side_closed_ = false;  // the client half-closed: finish once all is answered
  bool finish_requested_ = false;
  bool finished_ = false;        // Finish was called
  bool finish_done_ = false;     // ... and its tag came back
  bool call_done_seen_ = false;  // the AsyncNotifyWhenDone tag came back
  grpc::Status final_status_;
  size_t unanswered_ = 0;
  std::deque<size_t> unanswered_sizes_;
  uint64_t unanswered_bytes_ = 0;
};

// Converts between absl and gRPC status codes (same numbering).
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace nodelink::transport

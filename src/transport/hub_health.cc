#include "transport/hub_health.h"

#include <optional>
#include <string>
#include <string_view>

#include "transport/completion_target.h"
#include "transport/wire_bytes.h"

namespace nodelink::transport {

namespace {

constexpr char kCheck[] = "/grpc.health.v1.Health/Check";
constexpr char kWatch[] = "/grpc.health.v1.Health/Watch";

// HealthCheckResponse.ServingStatus
enum : uint8_t { kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// HealthCheckRequest{service = 1}; nullopt if it does not parse.
std::optional<std::string> ServiceOf(const grpc::ByteBuffer& request) {
  const std::string bytes = Flatten(request);
  WireReader r{bytes};
  std::string service;
  while (!r.in.empty()) {
    uint32_t number = 0, wire = 0;
    uint64_t value = 0;
    std::string_view sub;
    if (!r.Field(number, wire, value, sub)) return std::nullopt;
    if (number == 1 && wire == 2) service = std::string(sub);
  }
  return service;
}

bool Known(const std::string& service) { return service.empty() || service == "nodelink.v1.Hub"; }

grpc::ByteBuffer Response(uint8_t status) {  // HealthCheckResponse{status = 1}
  return BufferOf(std::string{'\x08', static_cast<char>(status)});
}

}  // namespace

HealthService::HealthService() {
  AddMethod(
      new grpc::internal::RpcServiceMethod(kCheck, grpc::internal::RpcMethod::NORMAL_RPC, nullptr));
  AddMethod(new grpc::internal::RpcServiceMethod(
      kWatch, grpc::internal::RpcMethod::SERVER_STREAMING, nullptr));
  MarkMethodRaw(0);
  MarkMethodRaw(1);
}

void HealthService::RequestCheck(grpc::ServerContext* context, grpc::ByteBuffer* request,
                                 grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder,
                                 grpc::ServerCompletionQueue* cq, void* tag) {
  RequestAsyncUnary(0, context, request, responder, cq, cq, tag);
}

void HealthService::RequestWatch(grpc::ServerContext* context, grpc::ByteBuffer* request,
                                 grpc::ServerAsyncWriter<grpc::ByteBuffer>* writer,
                                 grpc::ServerCompletionQueue* cq, void* tag) {
  RequestAsyncServerStreaming(1, context, request, writer, cq, cq, tag);
}

// One Check or Watch call. Its state is guarded by the owner's mutex; it deletes itself once the
// call is over and nothing it started is outstanding (completion_target.h).
class HealthCall final : public CompletionTarget {
 public:
  HealthCall(HubHealth& owner, bool watch) : owner_(owner), watch_(watch) {
    context_.AsyncNotifyWhenDone(&call_done_);  // returned only if the call starts
    if (watch_) {
      owner_.service_.RequestWatch(&context_, &request_, &writer_, owner_.cq_, &accepted_);
    } else {
      owner_.service_.RequestCheck(&context_, &request_, &responder_, owner_.cq_, &accepted_);
    }
  }

  void Complete(CompletionTag* tag, bool ok) override {
    std::unique_lock lock(owner_.mu_);
    if (tag == &accepted_) {
      if (!ok) {  // the server is shutting down: the call never started
        lock.unlock();
        return Delete();
      }
      owner_.ListenLocked(watch_);
      OnAcceptedLocked();
    } else if (tag == &write_) {
      writing_ = false;
      if (!ok || call_done_seen_) {
        FinishLocked(grpc::Status::CANCELLED);
      } else if (!owner_.serving_) {
        OnNotServingLocked();
      }
    } else if (tag == &finish_) {
      finish_done_ = true;
    } else if (tag == &call_done_) {
      // Before Finish only if cancelled; Finish waits for a write in flight, which then fails.
      call_done_seen_ = true;
      if (!writing_) FinishLocked(grpc::Status::CANCELLED);
    }
    if (!call_done_seen_ || !finish_done_ || writing_) return;
    owner_.watchers_.erase(this);
    lock.unlock();
    Delete();
  }

  // The hub stops serving: the watcher hears NOT_SERVING (after a write in flight), then ends.
  void OnNotServingLocked() {
    if (writing_ || finish_started_) return;  // the write's completion finishes the call
    if (Known(service_)) {
      finish_started_ = true;
      writer_.WriteAndFinish(Response(kNotServing), grpc::WriteOptions(), grpc::Status::OK,
                             &finish_);
    } else {
      FinishLocked(grpc::Status::OK);
    }
  }

 private:
  ~HealthCall() = default;
  void Delete() {
    CallCount* calls = owner_.calls_;
    delete this;
    calls->Remove();
  }

  void OnAcceptedLocked() {
    std::optional<std::string> service = ServiceOf(request_);
    if (!service) {
      return FinishLocked(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "HealthCheckRequest does not parse"));
    }
    service_ = *std::move(service);
    const uint8_t status = !Known(service_)  ? kServiceUnknown
                           : owner_.serving_ ? kServing
                                             : kNotServing;
    if (!watch_) {
      finish_started_ = true;
      if (status == kServiceUnknown) {
        responder_.FinishWithError(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service"),
                                   &finish_);
      } else {
        responder_.Finish(Response(status), grpc::Status::OK, &finish_);
      }
      return;
    }
    if (!owner_.serving_) {
      finish_started_ = true;
      writer_.WriteAndFinish(Response(status), grpc::WriteOptions(), grpc::Status::OK, &finish_);
      return;
    }
    owner_.watchers_.insert(this);
    writing_ = true;
    writer_.Write(Response(status), &write_);
  }

  void FinishLocked(const grpc::Status& status) {
    if (finish_started_) return;
    finish_started_ = true;
    if (watch_) {
      writer_.Finish(status, &finish_);
    } else {
      responder_.FinishWithError(status, &finish_);
    }
  }

  HubHealth& owner_;
  const bool watch_;
  grpc::ServerContext context_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncResponseWriter<grpc::ByteBuffer> responder_{&context_};  // Check
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_{&context_};             // Watch
  CompletionTag accepted_{this}, write_{this}, finish_{this}, call_done_{this};
  std::string service_;
  bool writing_ = false;
  bool finish_started_ = false;
  bool finish_done_ = false;
  bool call_done_seen_ = false;
};

void HubHealth::Start(grpc::ServerCompletionQueue* cq, CallCount* calls) {
  std::lock_guard lock(mu_);
  cq_ = cq;
  calls_ = calls;
  ListenLocked(/*watch=*/false);
  ListenLocked(/*watch=*/true);
}

void HubHealth::ListenLocked(bool watch) {
  if (calls_->Add()) new HealthCall(*this, watch);  // deletes itself
}

void HubHealth::SetNotServing() {
  std::lock_guard lock(mu_);
  if (!serving_) return;
  serving_ = false;
  for (HealthCall* call : watchers_) call->OnNotServingLocked();
}

}  // namespace nodelink::transport

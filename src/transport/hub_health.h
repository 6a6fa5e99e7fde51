// grpc.health.v1.Health (Check and Watch) on the hub's completion queue, without generated code.
// gRPC's default health service would bring the callback API's threads back into the hub, and
// with them the poller hand-offs that the Connect streams left (completion_target.h). The hub
// knows two services, "" (the whole server) and "nodelink.v1.Hub": SERVING from the start,
// NOT_SERVING once shutdown begins; any other name is NOT_FOUND for Check and SERVICE_UNKNOWN for
// Watch, as the health checking protocol says.
#pragma once

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/async_stream.h>
#include <grpcpp/impl/codegen/async_unary_call.h>
#include <grpcpp/impl/codegen/service_type.h>

#include <mutex>
#include <set>

#include "transport/completion_target.h"

namespace nodelink::transport {

class HealthCall;

// The two methods, registered raw and asynchronous: requests and responses are ByteBuffers.
class HealthService final : public grpc::Service {
 public:
  HealthService();
  void RequestCheck(grpc::ServerContext* context, grpc::ByteBuffer* request,
                    grpc::ServerAsyncResponseWriter<grpc::ByteBuffer>* responder,
                    grpc::ServerCompletionQueue* cq, void* tag);
  void RequestWatch(grpc::ServerContext* context, grpc::ByteBuffer* request,
                    grpc::ServerAsyncWriter<grpc::ByteBuffer>* writer,
                    grpc::ServerCompletionQueue* cq, void* tag);
};

class HubHealth {
 public:
  // Register service() before the server starts; Start() once it has, with its queue.
  HealthService* service() { return &service_; }
  // `calls` counts the health calls too; none is asked for once it is closed.
  void Start(grpc::ServerCompletionQueue* cq, CallCount* calls);
  // NOT_SERVING from now on; each Watch gets it and ends. Idempotent.
  void SetNotServing();

 private:
  friend class HealthCall;
  void ListenLocked(bool watch);

  HealthService service_;
  grpc::ServerCompletionQueue* cq_ = nullptr;
  CallCount* calls_ = nullptr;
  std::mutex mu_;  // everything below, and every HealthCall's state
  bool serving_ = true;
  std::set<HealthCall*> watchers_;
};

}  // namespace nodelink::transport

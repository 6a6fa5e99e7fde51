#include "transport/probe.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <condition_variable>
#include <mutex>

#include "transport/identity.h"
#include "transport/wire_bytes.h"

namespace nodelink::transport {

namespace {

absl::StatusOr<std::shared_ptr<grpc::Channel>> MakeChannel(const ProbeOptions& o) {
  grpc::ChannelArguments args;
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (o.tls) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = o.tls->ca_pem;
    ssl.pem_cert_chain = o.tls->cert_chain_pem;
    ssl.pem_private_key = std::string(AsStringView(o.tls->key_pem.ExposeSecret()));
    creds = grpc::SslCredentials(ssl);
    core::WipeString(ssl.pem_private_key);  // gRPC holds its own copy
    if (!o.tls_target_name_override.empty()) {
      args.SetSslTargetNameOverride(o.tls_target_name_override);
    }
  } else {
    if (!IsLoopbackAddress(o.target)) {
      return absl::InvalidArgumentError(
          "a probe without TLS only dials loopback addresses; "
          "give --ca for " +
          o.target);
    }
    creds = grpc::InsecureChannelCredentials();
  }
  return grpc::CreateCustomChannel(o.target, creds, args);
}

absl::Status FromGrpc(const grpc::Status& s) {
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), s.error_message());
}

// The reflection call: write one list_services request, read one response, finish. The caller
// owns it and destroys it after OnDone, on its own thread: a ClientContext destroyed inside a gRPC
// callback may drop the last reference to the channel there, which gRPC does not support.
class ListServicesCall final : public grpc::ClientBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  ListServicesCall(grpc::GenericStub& stub, std::chrono::milliseconds timeout) {
    context_.set_deadline(std::chrono::system_clock::now() + timeout);
    // ServerReflectionRequest{list_services = ""}: field 7, length 0.
    request_ = BufferOf(std::string("\x3a\x00", 2));
    stub.PrepareBidiStreamingCall(&context_,
                                  "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                                  grpc::StubOptions(), this);
    StartWrite(&request_);
    StartRead(&response_);
    StartCall();
  }
  void OnWriteDone(bool ok) override {
    if (ok) StartWritesDone();
  }
  void OnReadDone(bool ok) override {
    if (ok) got_ = Flatten(response_);
  }
  void OnDone(const grpc::Status& s) override {
    std::lock_guard lock(mu_);
    status_ = s;
    done_ = true;
    cv_.notify_all();
  }
  absl::StatusOr<std::string> Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return done_; });
    if (!got_.empty()) return got_;
    if (!status_.ok()) return FromGrpc(status_);
    return absl::DataLossError("the reflection service sent no response");
  }

 private:
  grpc::ClientContext context_;
  grpc::ByteBuffer request_, response_;
  std::string got_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  grpc::Status status_;
};

// The health call's state, owned by the caller (see ListServicesCall); the completion only
// signals.
struct HealthCall {
  grpc::ClientContext context;
  grpc::ByteBuffer request, response;
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  grpc::Status status;
};

}  // namespace

absl::StatusOr<ServingStatus> CheckHealth(const ProbeOptions& options, const std::string& service) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
  if (!channel.ok()) return channel.status();
  grpc::GenericStub stub(*channel);
  HealthCall call;
  call.context.set_deadline(std::chrono::system_clock::now() + options.timeout);
  call.request = BufferOf(HealthCheckRequestBytes(service));
  stub.UnaryCall(&call.context, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &call.request,
                 &call.response, [&call](grpc::Status s) {
                   std::lock_guard lock(call.mu);
                   call.status = std::move(s);
                   call.done = true;
                   call.cv.notify_all();
                 });
  {
    std::unique_lock lock(call.mu);
    call.cv.wait(lock, [&call] { return call.done; });
  }
  if (!call.status.ok()) return FromGrpc(call.status);
  const std::string bytes = Flatten(call.response);
  WireReader r{bytes};
  uint64_t status = 0;
  while (!r.in.empty()) {
    uint32_t number = 0, wire = 0;
    uint64_t value = 0;
    std::string_view sub;
    if (!r.Field(number, wire, value, sub)) return absl::DataLossError("bad health response");
    if (number == 1 && wire == 0) status = value;
  }
  if (status > 3) return absl::DataLossError("unknown serving status");
  return static_cast<ServingStatus>(status);
}

absl::StatusOr<std::vector<std::string>> ListServices(const ProbeOptions& options) {
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = MakeChannel(options);
  if (!channel.ok()) return channel.status();
  grpc::GenericStub stub(*channel);
  ListServicesCall call(stub, options.timeout);
  absl::StatusOr<std::string> bytes = call.Wait();
  if (!bytes.ok()) return bytes.status();
  std::vector<std::string> names;
  WireReader top{*bytes};
  while (!top.in.empty()) {
    uint32_t number = 0, wire = 0;
    uint64_t value = 0;
    std::string_view sub;
    if (!top.Field(number, wire, value, sub)) return absl::DataLossError("bad reflection reply");
    if (number == 7) return absl::UnavailableError("the reflection service answered an error");
    if (number != 6 || wire != 2) continue;  // list_services_response
    WireReader list{sub};
    while (!list.in.empty()) {
      std::string_view service;
      if (!list.Field(number, wire, value, service)) return absl::DataLossError("bad list");
      if (number != 1 || wire != 2) continue;
      WireReader entry{service};
      while (!entry.in.empty()) {
        std::string_view name;
        if (!entry.Field(number, wire, value, name)) return absl::DataLossError("bad entry");
        if (number == 1 && wire == 2) names.emplace_back(name);
      }
    }
  }
  return names;
}

}  // namespace nodelink::transport

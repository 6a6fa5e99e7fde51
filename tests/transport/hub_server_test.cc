// The hub in-process: real gRPC over real TLS on 127.0.0.1:0, HubClients and raw streams.
// Stream errors of PROTOCOL 4, health and reflection, expiry with a ManualClock, bounds, sizes,
// backpressure.
#include "transport/hub_server.h"

#include <doctest/doctest.h>
#include <grpcpp/generic/generic_stub.h>

#include <thread>

#include "hub_test_util.h"
#include "process/temp_dir.h"
#include "process/wait_for.h"
#include "test_pki.h"
#include "transport/library_logs.h"
#include "transport/probe.h"
#include "transport/wire_bytes.h"

namespace nodelink::transport {
namespace {

using std::chrono::milliseconds;
using testing::HelloFrame;
using testing::MakeEnvelope;
using testing::RawChannel;
using testing::RawExchange;
constexpr milliseconds kWait{20'000};
constexpr size_t kUntilEnd = static_cast<size_t>(-1);

using testing::OtherPki;
using testing::Pki;

HubServerOptions TlsOptions(const std::string& data_dir) {
  RouteLibraryLogsToSpdlog();
  HubServerOptions o;
  o.federation = "fed";
  o.tls = Pki().HubTls();
  o.data_dir = data_dir;
  o.expiry_interval_ms = 0;
  return o;
}

std::unique_ptr<HubServer> StartHub(HubServerOptions o) {
  auto hub = HubServer::Start(std::move(o));
  REQUIRE_MESSAGE(hub.ok(), hub.status().ToString());
  return *std::move(hub);
}

std::unique_ptr<HubClient> StartClient(const HubServer& hub, const std::string& node,
                                       testing::Inbox* inbox, bool tls = true,
                                       std::function<void(v1::Rejected)> late = nullptr) {
  HubClientOptions o;
  o.target = hub.address();
  o.federation = "fed";
  o.node_id = node;
  o.initial_backoff_ms = 20;
  o.max_backoff_ms = 200;
  o.on_late_rejection = std::move(late);
  if (tls) o.tls = Pki().Material(Pki().IssueParticipant(node));
  auto c = HubClient::Start(std::move(o),
                            inbox != nullptr ? inbox->Callback() : testing::IgnorePushes());
  REQUIRE(c.ok());
  if (inbox != nullptr) inbox->Bind(c->get());
  return *std::move(c);
}

TEST_CASE("hub: start-up refuses inconsistent options") {
  process::TempDir dir;
  auto refused = [](HubServerOptions o) {
    return HubServer::Start(std::move(o)).status().code() == absl::StatusCode::kInvalidArgument;
  };
  HubServerOptions both = TlsOptions(dir.path());
  both.insecure = true;
  CHECK(refused(std::move(both)));
  auto insecure = [](std::string address, std::string fed) {
    HubServerOptions o;
    o.federation = std::move(fed);
    o.insecure = true;
    o.queue = QueueBackend::kMemory;
    o.listen_address = std::move(address);
    return o;
  };
  CHECK(refused(insecure("0.0.0.0:0", "fed")));
  CHECK(refused(insecure("10.0.0.1:0", "fed")));
  CHECK(refused(insecure("127.0.0.1:0", "bad fed")));
  CHECK(refused(TlsOptions("")));  // durable queue without a data directory
  // A second hub on the same port fails: SO_REUSEPORT is off.
  auto first = StartHub(TlsOptions(dir.path()));
  process::TempDir dir2;
  HubServerOptions same = TlsOptions(dir2.path());
  same.listen_address = first->address();
  CHECK_FALSE(HubServer::Start(std::move(same)).ok());
}

TEST_CASE("hub: TLS relay between two clients, offline delivery in order, metrics") {
  process::TempDir dir;
  HubServerOptions o = TlsOptions(dir.path());
  o.metrics_listen = "127.0.0.1:0";
  auto hub = StartHub(std::move(o));
  testing::Inbox inbox_b;
  auto a = StartClient(*hub, "node-a", nullptr);
  REQUIRE(a->WaitConnected(kWait));
  REQUIRE(a->welcome()->max_envelope_bytes() == 16u << 20);
  testing::Answers answers;
  std::vector<std::string> ids;
  for (int i = 0; i < 20; ++i) {
    ids.push_back(testing::RandomId());
    a->Send(MakeEnvelope("fed", "node-a", "node-b", ids.back()), answers.Callback(ids.back()));
  }
  REQUIRE(answers.WaitFor(20, kWait));
  for (const auto& [id, ans] : answers.all()) CHECK(ans.accepted);
  auto b = StartClient(*hub, "node-b", &inbox_b);  // connects after the sends: offline delivery
  REQUIRE(inbox_b.WaitFor(20, kWait));
  auto got = inbox_b.received();
  for (size_t i = 0; i < ids.size(); ++i) CHECK(got[i].message_id() == ids[i]);
  REQUIRE(process::WaitFor([&] { return hub->counters().queued.items == 0; }, kWait));
  const HubMetricsSnapshot m = hub->counters();
  CHECK(m.accepted == 20);
  CHECK(m.delivered == 20);
  CHECK(m.connected == 2);
  CHECK(hub->metrics_port() > 0);
  const std::string text = hub->MetricsText();
  CHECK(text.find("nodelink_hub_envelopes_accepted_total 20") != std::string::npos);
  CHECK(text.find("nodelink_hub_envelopes_rejected_total{code=\"QUEUE_FULL\"} 0") !=
        std::string::npos);
}

TEST_CASE("hub: stream errors follow PROTOCOL 4") {
  process::TempDir dir;
  HubServerOptions o = TlsOptions(dir.path());
  o.members = std::vector<std::string>{"node-a", "node-b", "node-c"};
  auto hub = StartHub(std::move(o));
  const std::string target = hub->address();
  TlsMaterial a = Pki().Material(Pki().IssueParticipant("node-a"));

  SUBCASE("no client certificate: UNAUTHENTICATED at Connect") {
    TlsMaterial anonymous;
    anonymous.ca_pem = a.ca_pem;
    auto r = RawExchange(RawChannel(target, &anonymous), {HelloFrame("fed", "node-a")}, kUntilEnd);
    CHECK(r.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    CHECK(r.frames.empty());
  }
  SUBCASE("a certificate of another CA fails the handshake") {
    TlsMaterial other = OtherPki().Material(OtherPki().IssueParticipant("node-a"));
    other.ca_pem = a.ca_pem;  // trusts the right hub; presents a foreign client certificate
    auto r = RawExchange(RawChannel(target, &other), {HelloFrame("fed", "node-a")}, kUntilEnd,
                         milliseconds(5000));
    CHECK(r.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  }
  SUBCASE("certificate URI of another federation or two nodelink URIs: UNAUTHENTICATED") {
    for (const std::vector<std::string>& uris :
         {std::vector<std::string>{"nodelink://other/node-a"},
          std::vector<std::string>{"nodelink://fed/node-a", "nodelink://fed/node-b"}}) {
      TlsMaterial m = Pki().Material(Pki().IssueParticipant("node-a", uris));
      auto r = RawExchange(RawChannel(target, &m), {HelloFrame("fed", "node-a")}, kUntilEnd);
      CHECK(r.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
    }
  }
  SUBCASE("frame before Hello: FAILED_PRECONDITION") {
    v1::ClientFrame env;
    *env.mutable_envelope() = MakeEnvelope("fed", "node-a", "node-b");
    auto r = RawExchange(RawChannel(target, &a), {env}, kUntilEnd);
    CHECK(r.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    v1::ClientFrame ack;
    ack.mutable_delivered()->set_message_id(testing::RandomId());
    CHECK(RawExchange(RawChannel(target, &a), {ack}, kUntilEnd).status.error_code() ==
          grpc::StatusCode::FAILED_PRECONDITION);
  }
  SUBCASE("second Hello: FAILED_PRECONDITION after the Welcome") {
    auto r = RawExchange(RawChannel(target, &a),
                         {HelloFrame("fed", "node-a"), HelloFrame("fed", "node-a")}, kUntilEnd);
    CHECK(r.status.error_code() == grpc::StatusCode::FAILED_PRECONDITION);
    REQUIRE(r.frames.size() == 1);
    CHECK(r.frames[0].has_welcome());
  }
  SUBCASE("Hello that disagrees with the certificate: PERMISSION_DENIED") {
    CHECK(RawExchange(RawChannel(target, &a), {HelloFrame("fed", "node-b")}, kUntilEnd)
              .status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
    CHECK(RawExchange(RawChannel(target, &a), {HelloFrame("other", "node-a")}, kUntilEnd)
              .status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  SUBCASE("a certified non-member: PERMISSION_DENIED") {
    TlsMaterial x = Pki().Material(Pki().IssueParticipant("node-x"));
    CHECK(RawExchange(RawChannel(target, &x), {HelloFrame("fed", "node-x")}, kUntilEnd)
              .status.error_code() == grpc::StatusCode::PERMISSION_DENIED);
  }
  SUBCASE("impersonation: Rejected{IMPERSONATION}, the stream goes on") {
    v1::ClientFrame forged, honest;
    *forged.mutable_envelope() = MakeEnvelope("fed", "node-b", "node-c");
    *honest.mutable_envelope() = MakeEnvelope("fed", "node-a", "node-c");
    auto r = RawExchange(RawChannel(target, &a), {HelloFrame("fed", "node-a"), forged, honest}, 3);
    CHECK(r.status.ok());
    REQUIRE(r.frames.size() == 3);
    CHECK(r.frames[1].rejected().code() == v1::IMPERSONATION);
    CHECK(r.frames[1].rejected().message_id() == forged.envelope().message_id());
    CHECK(r.frames[2].accepted().message_id() == honest.envelope().message_id());
  }
  SUBCASE("a frame that does not parse ends that stream only") {
    v1::ClientFrame bad;
    *bad.mutable_envelope() = MakeEnvelope("fed", "node-a", "node-c");
    bad.mutable_envelope()->set_sender(std::string("\xff\xfe", 2));  // invalid UTF-8
    auto r = RawExchange(RawChannel(target, &a), {HelloFrame("fed", "node-a"), bad}, kUntilEnd);
    REQUIRE(r.frames.size() == 1);  // Welcome, then the stream ended (gRPC hides which frame)
    auto again = RawExchange(RawChannel(target, &a), {HelloFrame("fed", "node-a")}, 1);
    CHECK(again.status.ok());
    CHECK(again.frames.at(0).has_welcome());
  }
}

TEST_CASE("hub: a revoked participant certificate is refused (CRL)") {
  process::TempDir dir;
  testing::IssuedCert good = Pki().IssueParticipant("node-a");
  testing::IssuedCert revoked = Pki().IssueParticipant("node-b");
  Pki().Revoke(revoked);
  auto hub = StartHub(TlsOptions(dir.path()));  // without the CRL: both connect
  HubServerOptions o = TlsOptions(dir.path() + "/crl-hub");
  o.tls = Pki().HubTls(/*with_crl=*/true);
  auto crl_hub = StartHub(std::move(o));
  TlsMaterial g = Pki().Material(good), r = Pki().Material(revoked);
  CHECK(RawExchange(RawChannel(hub->address(), &r), {HelloFrame("fed", "node-b")}, 1).status.ok());
  CHECK(RawExchange(RawChannel(crl_hub->address(), &g), {HelloFrame("fed", "node-a")}, 1)
            .status.ok());
  CHECK(RawExchange(RawChannel(crl_hub->address(), &r), {HelloFrame("fed", "node-b")}, kUntilEnd,
                    milliseconds(5000))
            .status.error_code() == grpc::StatusCode::UNAVAILABLE);
}

TEST_CASE("hub: health SERVING and reflection, reachable without a client certificate") {
  process::TempDir dir;
  auto hub = StartHub(TlsOptions(dir.path()));
  ProbeOptions probe;
  probe.target = hub->address();
  probe.tls = TlsMaterial{};
  probe.tls->ca_pem = testing::ReadWholeFile(Pki().ca_path());
  auto overall = CheckHealth(probe, "");
  REQUIRE(overall.ok());
  CHECK(*overall == ServingStatus::kServing);
  auto service = CheckHealth(probe, "nodelink.v1.Hub");
  REQUIRE(service.ok());
  CHECK(*service == ServingStatus::kServing);
  CHECK(CheckHealth(probe, "no.such.Service").status().code() == absl::StatusCode::kNotFound);
  // A name longer than 127 bytes (its length is a two-byte varint) is asked about too.
  CHECK(CheckHealth(probe, std::string(200, 's')).status().code() == absl::StatusCode::kNotFound);
  auto services = ListServices(probe);
  REQUIRE_MESSAGE(services.ok(), services.status().ToString());
  auto has = [&](const std::string& s) {
    return std::find(services->begin(), services->end(), s) != services->end();
  };
  CHECK(has("nodelink.v1.Hub"));
  CHECK(has("grpc.health.v1.Health"));
  CHECK(has("grpc.reflection.v1alpha.ServerReflection"));
  hub->Shutdown();
  CHECK_FALSE(CheckHealth(probe, "").ok());
}

// grpc.health.v1.Health/Watch, spoken as raw bytes over a generic call: the first message, then
// NOT_SERVING when the hub shuts down, then the end of the stream.
class HealthWatch {
 public:
  HealthWatch(const std::shared_ptr<grpc::Channel>& channel, const std::string& service)
      : stub_(channel) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    call_ = stub_.PrepareCall(&context_, "/grpc.health.v1.Health/Watch", &cq_);
    call_->StartCall(Tag(1));
    REQUIRE(Await(1));
    call_->Write(BufferOf(HealthCheckRequestBytes(service)), Tag(2));
    REQUIRE(Await(2));
    call_->WritesDone(Tag(3));
    REQUIRE(Await(3));
  }
  ~HealthWatch() {
    cq_.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
    }
  }
  // The next status sent (HealthCheckResponse.status), or -1 once the stream has ended.
  int Next() {
    grpc::ByteBuffer response;
    call_->Read(&response, Tag(4));
    if (!Await(4)) return -1;
    const std::string bytes = Flatten(response);
    REQUIRE(bytes.size() == 2);
    REQUIRE(bytes[0] == '\x08');
    return bytes[1];
  }
  grpc::Status Finish() {
    grpc::Status status;
    call_->Finish(&status, Tag(5));
    REQUIRE(Await(5));
    return status;
  }

 private:
  static void* Tag(intptr_t n) { return reinterpret_cast<void*>(n); }
  bool Await(intptr_t n) {
    void* tag = nullptr;
    bool ok = false;
    REQUIRE(cq_.Next(&tag, &ok));
    REQUIRE(tag == Tag(n));
    return ok;
  }
  grpc::GenericStub stub_;
  grpc::ClientContext context_;
  grpc::CompletionQueue cq_;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call_;
};

TEST_CASE("hub: health Watch says SERVING, then NOT_SERVING at shutdown, then ends") {
  process::TempDir dir;
  auto hub = StartHub(TlsOptions(dir.path()));
  TlsMaterial ca_only;
  ca_only.ca_pem = testing::ReadWholeFile(Pki().ca_path());
  auto channel = RawChannel(hub->address(), &ca_only);
  HealthWatch whole(channel, ""), service(channel, "nodelink.v1.Hub"), unknown(channel, "no.Such");
  CHECK(whole.Next() == 1);    // SERVING
  CHECK(service.Next() == 1);  // SERVING
  CHECK(unknown.Next() == 3);  // SERVICE_UNKNOWN
  std::thread stop([&] { hub->Shutdown(); });
  CHECK(whole.Next() == 2);  // NOT_SERVING
  CHECK(service.Next() == 2);
  CHECK(whole.Next() == -1);
  CHECK(service.Next() == -1);
  CHECK(unknown.Next() == -1);
  CHECK(whole.Finish().ok());
  CHECK(service.Finish().ok());
  CHECK(unknown.Finish().ok());
  stop.join();
}

TEST_CASE("hub: expiry with an injected clock sends Rejected{EXPIRED} to the sender") {
  process::TempDir dir;
  core::ManualClock clock;
  HubServerOptions o = TlsOptions(dir.path());
  o.clock = &clock;
  o.queue_ttl_ms = 60'000;
  auto hub = StartHub(std::move(o));
  std::mutex mu;
  std::vector<v1::Rejected> late;
  auto a = StartClient(*hub, "node-a", nullptr, true, [&](v1::Rejected r) {
    std::lock_guard lock(mu);
    late.push_back(r);
  });
  REQUIRE(a->WaitConnected(kWait));
  CHECK(a->welcome()->queue_ttl_ms() == 60'000);
  testing::Answers answers;
  const std::string id = testing::RandomId();
  a->Send(MakeEnvelope("fed", "node-a", "node-offline", id), answers.Callback(id));
  REQUIRE(answers.WaitFor(1, kWait));
  CHECK(answers.all()[0].second.accepted);
  clock.Advance(59'999);
  CHECK(*hub->ExpireNow() == 0);
  clock.Advance(1);
  CHECK(*hub->ExpireNow() == 1);
  REQUIRE(process::WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return !late.empty();
      },
      kWait));
  std::lock_guard lock(mu);
  CHECK(late[0].code() == v1::EXPIRED);
  CHECK(late[0].message_id() == id);
  CHECK(hub->counters().expired == 1);
}

TEST_CASE("hub: queue bounds and sizes reach the sender's waiting call") {
  process::TempDir dir;
  HubServerOptions o = TlsOptions(dir.path());
  o.queue_bounds = QueueBounds{3, 0};
  o.max_envelope_bytes = 2048;
  auto hub = StartHub(std::move(o));
  auto a = StartClient(*hub, "node-a", nullptr);
  REQUIRE(a->WaitConnected(kWait));
  testing::Answers answers;
  for (int i = 0; i < 4; ++i) {
    const std::string id = testing::RandomId();
    a->Send(MakeEnvelope("fed", "node-a", "node-b", id), answers.Callback(id));
  }
  // Over the announced size: refused locally, never written (it would loop through resends).
  const std::string big = testing::RandomId();
  a->Send(MakeEnvelope("fed", "node-a", "node-b", big, 4096), answers.Callback(big));
  REQUIRE(answers.WaitFor(5, kWait));
  int accepted = 0, full = 0, too_large = 0;
  for (const auto& [id, ans] : answers.all()) {
    accepted += ans.accepted ? 1 : 0;
    full += ans.code == v1::QUEUE_FULL ? 1 : 0;
    too_large += ans.code == v1::TOO_LARGE ? 1 : 0;
    if (ans.code == v1::QUEUE_FULL) CHECK_FALSE(ans.detail.empty());
  }
  CHECK(accepted == 3);
  CHECK(full == 1);
  CHECK(too_large == 1);
  // The hub enforces the size too, measured on the serialized Envelope.
  TlsMaterial m = Pki().Material(Pki().IssueParticipant("node-c"));
  v1::ClientFrame oversize;
  *oversize.mutable_envelope() = MakeEnvelope("fed", "node-c", "node-b", testing::RandomId(), 4096);
  auto r = RawExchange(RawChannel(hub->address(), &m), {HelloFrame("fed", "node-c"), oversize}, 2);
  REQUIRE(r.frames.size() == 2);
  CHECK(r.frames[1].rejected().code() == v1::TOO_LARGE);
}

TEST_CASE("hub: a participant that sends but does not read stops being read, then resumes") {
  process::TempDir dir;
  HubServerOptions o = TlsOptions(dir.path());
  o.stream_limits = StreamLimits{16, 1 << 20, 16, 1 << 20};
  o.queue = QueueBackend::kMemory;
  auto hub = StartHub(std::move(o));
  TlsMaterial m = Pki().Material(Pki().IssueParticipant("node-a"));
  auto stub = v1::Hub::NewStub(RawChannel(hub->address(), &m));
  grpc::ClientContext ctx;
  auto stream = stub->Connect(&ctx);
  REQUIRE(stream->Write(HelloFrame("fed", "node-a")));
  constexpr int kCount = 3000;
  std::thread writer([&] {
    for (int i = 0; i < kCount; ++i) {
      v1::ClientFrame f;
      *f.mutable_envelope() = MakeEnvelope("fed", "node-a", "node-b", testing::RandomId(), 400);
      if (!stream->Write(f)) break;
    }
    stream->WritesDone();
  });
  // Nothing is read by the client yet: the hub's answers pile up until it stops reading.
  REQUIRE(process::WaitFor([&] { return hub->counters().reads_paused > 0; }, kWait));
  int accepted = 0;
  v1::HubFrame in;
  while (accepted < kCount && stream->Read(&in)) accepted += in.has_accepted() ? 1 : 0;
  writer.join();
  CHECK(accepted == kCount);
  ctx.TryCancel();
  stream->Finish();
}

// The server's shutdown can return while the stalled push's completion is still to run, and that
// completion starts a Finish: the hub's completion queue must still be up then
// (completion_target.h).
TEST_CASE("hub: shutdown with a push stalled on a participant that never reads") {
  process::TempDir dir;
  HubServerOptions o = TlsOptions(dir.path());
  o.queue = QueueBackend::kMemory;
  auto hub = StartHub(std::move(o));
  TlsMaterial ma = Pki().Material(Pki().IssueParticipant("node-a"));
  TlsMaterial mb = Pki().Material(Pki().IssueParticipant("node-b"));
  auto stub_a = v1::Hub::NewStub(RawChannel(hub->address(), &ma));
  auto stub_b = v1::Hub::NewStub(RawChannel(hub->address(), &mb));
  grpc::ClientContext ctx_a, ctx_b;
  auto a = stub_a->Connect(&ctx_a);  // says Hello, then never reads
  REQUIRE(a->Write(HelloFrame("fed", "node-a")));
  REQUIRE(process::WaitFor([&] { return hub->counters().connected == 1; }, kWait));
  auto b = stub_b->Connect(&ctx_b);
  REQUIRE(b->Write(HelloFrame("fed", "node-b")));
  constexpr int kCount = 4;  // 1 MiB each: more than node-a's flow-control window
  for (int i = 0; i < kCount; ++i) {
    v1::ClientFrame f;
    *f.mutable_envelope() = MakeEnvelope("fed", "node-b", "node-a", testing::RandomId(), 1 << 20);
    REQUIRE(b->Write(f));
  }
  int accepted = 0;
  v1::HubFrame in;
  while (accepted < kCount && b->Read(&in)) accepted += in.has_accepted() ? 1 : 0;
  REQUIRE(accepted == kCount);
  REQUIRE(process::WaitFor([&] { return hub->counters().pushed >= 1; }, kWait));
  hub->Shutdown(milliseconds(200));  // returns, and the process is still here
  ctx_a.TryCancel();
  ctx_b.TryCancel();
  a->Finish();
  b->Finish();
}

TEST_CASE("hub: insecure development mode takes the identity from Hello, loopback only") {
  HubServerOptions o;
  o.federation = "fed";
  o.insecure = true;
  o.queue = QueueBackend::kMemory;
  o.expiry_interval_ms = 0;
  auto hub = StartHub(std::move(o));
  testing::Inbox inbox;
  auto a = StartClient(*hub, "node-a", nullptr, false);
  auto b = StartClient(*hub, "node-b", &inbox, false);
  REQUIRE(b->WaitConnected(kWait));
  testing::Answers answers;
  a->Send(MakeEnvelope("fed", "node-a", "node-b", "0123456789abcdef"), answers.Callback("x"));
  REQUIRE(inbox.WaitFor(1, kWait));
  CHECK(inbox.received()[0].message_id() == "0123456789abcdef");
  REQUIRE(answers.WaitFor(1, kWait));  // before `answers` goes out of scope
  CHECK(answers.all()[0].second.accepted);
  HubClientOptions remote;
  remote.target = "10.1.2.3:443";
  remote.federation = "fed";
  remote.node_id = "node-a";
  CHECK(HubClient::Start(std::move(remote), testing::IgnorePushes()).status().code() ==
        absl::StatusCode::kInvalidArgument);
}

TEST_CASE("hub client: Stop fails what is still in the outbox, exactly once") {
  HubClientOptions o;
  o.target = "127.0.0.1:1";  // nothing listens: the client keeps retrying
  o.federation = "fed";
  o.node_id = "node-a";
  o.initial_backoff_ms = 10;
  o.max_backoff_ms = 20;
  auto c = HubClient::Start(std::move(o), testing::IgnorePushes());
  REQUIRE(c.ok());
  testing::Answers answers;
  (*c)->Send(MakeEnvelope("fed", "node-a", "node-b"), answers.Callback("1"));
  CHECK_FALSE((*c)->WaitConnected(milliseconds(50)));
  (*c)->Stop();
  REQUIRE(answers.WaitFor(1, kWait));
  CHECK_FALSE(answers.all()[0].second.accepted);
  CHECK(answers.all()[0].second.detail.find("stopped") != std::string::npos);
  (*c)->Send(MakeEnvelope("fed", "node-a", "node-b"), answers.Callback("2"));
  REQUIRE(answers.WaitFor(2, kWait));
  CHECK(answers.all().size() == 2);
  CHECK((*c)->stats().streams_started >= 1);
}

}  // namespace
}  // namespace nodelink::transport

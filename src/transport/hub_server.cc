#include "transport/hub_server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <thread>

#include "core/status.h"
#include "core/thread_name.h"
#include "messages/names.h"
#include "spdlog/spdlog.h"
#include "transport/abseil_mode.h"
#include "transport/hub_health.h"
#include "transport/hub_stream.h"
#include "transport/identity.h"
#include "transport/memory_queue_store.h"
#include "transport/metrics_http.h"
#include "transport/queue_committer.h"
#include "transport/relay.h"
#include "transport/tls_files.h"

namespace nodelink::transport {

namespace {

constexpr uint64_t kFrameOverheadBytes = 64 << 10;  // PROTOCOL 4: limits above max + 64 KiB

absl::Status Validate(const HubServerOptions& o) {
  if (!messages::IsValidName(o.federation)) {
    return absl::InvalidArgumentError("the federation name is missing or not a valid name");
  }
  if (o.tls.has_value() == o.insecure) {
    return absl::InvalidArgumentError(
        "choose TLS (certificate, key, CA) or the explicit insecure development mode");
  }
  if (o.insecure && !IsLoopbackAddress(o.listen_address)) {
    return absl::InvalidArgumentError("insecure mode refuses to listen on " + o.listen_address +
                                      "; it is for development on a loopback address only");
  }
  if (o.tls && (o.tls->cert_chain_pem.empty() || o.tls->key_pem.empty() || o.tls->ca_pem.empty())) {
    return absl::InvalidArgumentError("TLS needs the hub certificate, its key and the CA");
  }
  if (o.queue == QueueBackend::kSqlite && o.data_dir.empty()) {
    return absl::InvalidArgumentError("the durable queue needs a data directory (--data-dir)");
  }
  if (o.max_envelope_bytes == 0 || o.max_envelope_bytes > (1ull << 30)) {
    return absl::InvalidArgumentError("max envelope bytes must be in 1..1 GiB");
  }
  if (o.queue_ttl_ms == 0) return absl::InvalidArgumentError("queue time to live must be > 0");
  if (o.members) {
    for (const std::string& m : *o.members) {
      if (!messages::IsValidName(m)) {
        return absl::InvalidArgumentError("member '" + m + "' is not a valid node id");
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

class HubServer::Impl {
 public:
  ~Impl() { Shutdown(std::chrono::seconds(2)); }

  absl::Status Init(HubServerOptions options);
  void Shutdown(std::chrono::milliseconds grace);
  // Calls `task` every `period` until Shutdown.
  void RunEvery(std::chrono::milliseconds period, const std::function<void()>& task);

  HubServerOptions options_;
  core::Clock* clock_ = nullptr;
  HubCounters counters_;
  std::unique_ptr<QueueCommitter> committer_;
  std::unique_ptr<Relay> relay_;
  StreamEnvironment env_;
  std::unique_ptr<v1::Hub::AsyncService> service_;
  HubHealth health_;
  // Declared before server_ so that the server goes first.
  std::unique_ptr<grpc::ServerCompletionQueue> cq_;
  CallCount calls_;        // alive on cq_
  std::thread cq_thread_;  // nl-hub-cq: every call's completions (completion_target.h)
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<MetricsHttpServer> metrics_;
  int port_ = 0;
  std::string host_;
  std::string temp_crl_dir_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool shutdown_ = false;
  std::thread expiry_thread_;
  std::thread fault_thread_;  // releases held-back pushes (--inject-faults only)
};

void HubServer::Impl::RunEvery(std::chrono::milliseconds period,
                               const std::function<void()>& task) {
  std::unique_lock lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return shutdown_; })) {
    lock.unlock();
    task();
    lock.lock();
  }
}

absl::Status HubServer::Impl::Init(HubServerOptions options) {
  options_ = std::move(options);
  NL_RETURN_IF_ERROR(Validate(options_));
  clock_ = options_.clock != nullptr ? options_.clock : &core::SystemClock::Get();

  std::unique_ptr<QueueStore> store;
  if (options_.queue == QueueBackend::kSqlite) {
    std::error_code ec;
    std::filesystem::create_directories(options_.data_dir, ec);
    if (ec) {
      return absl::UnavailableError("cannot create data directory " + options_.data_dir + ": " +
                                    ec.message());
    }
    // Said plainly here, rather than as SQLite's "unable to open database file" (a read-only
    // mount refuses even root).
    if (::access(options_.data_dir.c_str(), W_OK) != 0) {
      return absl::UnavailableError("cannot write to data directory " + options_.data_dir + ": " +
                                    std::strerror(errno) + "; the durable queue lives there");
    }
    SqliteQueueOptions sqlite;
    sqlite.path = options_.data_dir + "/queue.db";
    sqlite.synchronous = options_.synchronous;
    sqlite.min_free_bytes = options_.min_free_bytes;
    NL_ASSIGN_OR_RETURN(store, SqliteQueueStore::Open(sqlite));
  } else {
    store = std::make_unique<MemoryQueueStore>();
    spdlog::warn("hub: in-memory queue: accepted envelopes are LOST if the hub stops");
  }
  CommitterOptions copts;
  copts.max_batch = options_.max_commit_batch;
  copts.bounds = options_.queue_bounds;
  // A commit that waits for the disk would stall every stream on nl-hub-cq (queue_committer.h).
  copts.caller_passes =
      options_.queue != QueueBackend::kSqlite || options_.synchronous != SqliteSynchronous::kFull;
  committer_ = std::make_unique<QueueCommitter>(std::move(store), copts);

  RelayOptions ropts;
  ropts.federation = options_.federation;
  ropts.hub_id = options_.hub_id;
  if (options_.members) ropts.members.emplace(options_.members->begin(), options_.members->end());
  ropts.max_envelope_bytes = options_.max_envelope_bytes;
  ropts.queue_ttl_ms = options_.queue_ttl_ms;
  ropts.dedup_window_ms = options_.dedup_window_ms;
  ropts.default_max_in_flight = options_.default_max_in_flight;
  ropts.max_in_flight_cap = options_.max_in_flight_cap;
  ropts.max_in_flight_bytes = options_.max_in_flight_bytes;
  ropts.rate = options_.rate;
  ropts.faults = options_.faults;
  relay_ = std::make_unique<Relay>(std::move(ropts), *committer_, *clock_, counters_);

  env_.relay = relay_.get();
  env_.counters = &counters_;
  env_.federation = options_.federation;
  env_.insecure = options_.insecure;
  env_.limits = options_.stream_limits;

  std::shared_ptr<grpc::ServerCredentials> creds;
  if (options_.insecure) {
    spdlog::warn(
        "hub: INSECURE DEVELOPMENT MODE: no TLS, participants are trusted on their Hello; "
        "listening on loopback only. Never use this for real data.");
    creds = grpc::InsecureServerCredentials();
  } else {
    std::string crl_dir;
    if (!options_.tls->crl_pem.empty()) {
      if (options_.data_dir.empty()) {
        char tmpl[] = "/tmp/nodelink-hub-crl-XXXXXX";
        if (mkdtemp(tmpl) == nullptr) return absl::UnavailableError("cannot create a CRL dir");
        temp_crl_dir_ = crl_dir = tmpl;
      } else {
        crl_dir = options_.data_dir + "/crl";
      }
      NL_RETURN_IF_ERROR(WriteCrlDirectory(options_.tls->crl_pem, crl_dir));
    }
    // gRPC copies the key into its provider; our std::string copy is wiped right after.
    std::string key(AsStringView(options_.tls->key_pem.ExposeSecret()));
    auto provider = std::make_shared<grpc::experimental::StaticDataCertificateProvider>(
        options_.tls->ca_pem,
        std::vector<grpc::experimental::IdentityKeyCertPair>{{key, options_.tls->cert_chain_pem}});
    core::WipeString(key);
    grpc::experimental::TlsServerCredentialsOptions topts(provider);
    topts.watch_root_certs();
    topts.watch_identity_key_cert_pairs();
    // Requested and verified when presented, not required: a client without a certificate
    // completes the handshake and Connect refuses it with UNAUTHENTICATED, while health checks
    // and reflection stay reachable (IMPLEMENTATION-NOTES 2, option (b)). A certificate from
    // another CA, or one on the CRL, still fails the handshake.
    topts.set_cert_request_type(GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY);
    if (!crl_dir.empty()) topts.set_crl_directory(crl_dir);
    creds = grpc::experimental::TlsServerCredentials(topts);
  }

  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen_address, creds, &port_);
  service_ = std::make_unique<v1::Hub::AsyncService>();
  builder.RegisterService(service_.get());
  builder.RegisterService(health_.service());
  cq_ = builder.AddCompletionQueue();
  builder.SetMaxReceiveMessageSize(static_cast<int>(std::min<uint64_t>(
      options_.max_envelope_bytes + kFrameOverheadBytes, std::numeric_limits<int>::max())));
  builder.SetMaxSendMessageSize(-1);
  // A second hub on the same port must fail, not share it (IMPLEMENTATION-NOTES 4.8).
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // Clients ping every 30 s on idle streams; accept that, and find dead clients ourselves.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, 60'000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20'000);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    server_.reset();
    return absl::UnavailableError("cannot listen on " + options_.listen_address +
                                  " (address in use or not local?)");
  }
  env_.service = service_.get();
  env_.cq = cq_.get();
  env_.calls = &calls_;
  cq_thread_ = std::thread([this] {
    core::NameThisThread("nl-hub-cq");
    // What the streams post to the queue committer is committed here once no completion waits
    // (light load: no thread hand-off), or by its thread under load (it batches): completions
    // waiting while more than one envelope is posted, or a third completion before the pass. One
    // or two are not load: at one envelope in flight they are a receipt or a write's end that
    // came just as the envelope was read, served first (a receipt's delete then rides in the
    // same pass) rather than handing the pass over, a wake-up on the envelope's path
    // (bench/RESULTS.md, eighteenth session).
    constexpr int kServedBeforeHandOff = 2;
    QueueCommitter::CallerTurn turn(*committer_);
    int served_while_pending = 0;
    void* tag = nullptr;
    bool ok = false;
    for (;;) {
      if (turn.pending()) {
        const auto next = cq_->AsyncNext(&tag, &ok, gpr_inf_past(GPR_CLOCK_MONOTONIC));
        if (next == grpc::CompletionQueue::TIMEOUT) {
          turn.RunHere();
          served_while_pending = 0;
          continue;
        }
        if (next == grpc::CompletionQueue::SHUTDOWN) {
          turn.HandToThread();
          return;
        }
        if (turn.posted() > 1 || ++served_while_pending > kServedBeforeHandOff) {
          turn.HandToThread();
          served_while_pending = 0;
        }
      } else if (!cq_->Next(&tag, &ok)) {
        return;
      }
      CompletionTarget::Dispatch(tag, ok);
    }
  });
  HubStream::Listen(env_);
  health_.Start(cq_.get(), &calls_);
  const size_t colon = options_.listen_address.rfind(':');
  host_ = options_.listen_address.substr(0, colon);

  if (!options_.metrics_listen.empty()) {
    NL_ASSIGN_OR_RETURN(
        metrics_, MetricsHttpServer::Start(options_.metrics_listen, [this] {
          return RenderPrometheus(Snapshot(counters_, committer_->totals(), committer_->stats()));
        }));
  }
  if (options_.expiry_interval_ms > 0) {
    expiry_thread_ = std::thread([this] {
      core::NameThisThread("nl-expiry");
      RunEvery(std::chrono::milliseconds(options_.expiry_interval_ms), [this] {
        absl::StatusOr<uint64_t> n = relay_->ExpireNow();
        if (!n.ok()) spdlog::error("hub: expiry pass failed: {}", n.status().ToString());
      });
    });
  }
  if (options_.faults.any()) {
    spdlog::warn(
        "hub: FAULT INJECTION ON ({}): sealed messages are dropped, duplicated, reordered, "
        "delayed or corrupted on purpose. For tests only; never for real data.",
        DescribeFaults(options_.faults));
    fault_thread_ = std::thread([this] {
      core::NameThisThread("nl-faults");
      RunEvery(std::chrono::milliseconds(5), [this] { relay_->ReleaseHeldPushes(); });
    });
  }
  spdlog::info("hub: serving federation {} on {}:{} ({} queue{})", options_.federation, host_,
               port_, options_.queue == QueueBackend::kSqlite ? "durable SQLite" : "in-memory",
               options_.members ? ", " + std::to_string(options_.members->size()) + " members"
                                : ", any certified member");
  return absl::OkStatus();
}

void HubServer::Impl::Shutdown(std::chrono::milliseconds grace) {
  {
    std::lock_guard lock(mu_);
    if (shutdown_) return;
    shutdown_ = true;
  }
  cv_.notify_all();
  if (expiry_thread_.joinable()) expiry_thread_.join();
  if (fault_thread_.joinable()) fault_thread_.join();
  if (server_) {
    spdlog::info("hub: shutting down");
    health_.SetNotServing();
    relay_->EndAll(absl::UnavailableError("the hub is shutting down; reconnect later"));
    {
      std::lock_guard lock(env_.live_mu);
      env_.shutting_down = true;
      for (HubStream* s : env_.live) {
        s->End(absl::UnavailableError("the hub is shutting down; reconnect later"));
      }
    }
    // Waits for the streams to finish their writes, cancels what is left at the deadline.
    server_->Shutdown(std::chrono::system_clock::now() + grace);
    server_->Wait();
  }
  if (cq_) {
    // The server's shutdown can return with completions still to run, and they may start a
    // Finish: the queue shuts down once nl-hub-cq has deleted the last call.
    calls_.CloseAndWait();
    cq_->Shutdown();
    if (cq_thread_.joinable()) {
      cq_thread_.join();
    } else {
      void* tag = nullptr;
      bool ok = false;
      while (cq_->Next(&tag, &ok)) {  // the server never started: nothing was asked for
      }
    }
  }
  if (metrics_) metrics_->Stop();
  if (committer_) committer_->Stop();  // commits what it holds, then the database closes
  if (!temp_crl_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_crl_dir_, ec);
  }
}

HubServer::HubServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HubServer::~HubServer() = default;

absl::StatusOr<std::unique_ptr<HubServer>> HubServer::Start(HubServerOptions options) {
  SkipAbseilDeadlockDetection();
  auto impl = std::make_unique<Impl>();
  NL_RETURN_IF_ERROR(impl->Init(std::move(options)));
  return std::unique_ptr<HubServer>(new HubServer(std::move(impl)));
}

int HubServer::port() const { return impl_->port_; }
std::string HubServer::address() const { return impl_->host_ + ":" + std::to_string(port()); }
int HubServer::metrics_port() const { return impl_->metrics_ ? impl_->metrics_->port() : 0; }
void HubServer::Shutdown(std::chrono::milliseconds grace) { impl_->Shutdown(grace); }
absl::StatusOr<uint64_t> HubServer::ExpireNow() { return impl_->relay_->ExpireNow(); }

HubMetricsSnapshot HubServer::counters() const {
  QueueTotals totals;
  CommitterStats stats;
  if (impl_->committer_) {  // null only if Start() failed
    totals = impl_->committer_->totals();
    stats = impl_->committer_->stats();
  }
  return Snapshot(impl_->counters_, totals, stats);
}

std::string HubServer::MetricsText() const { return RenderPrometheus(counters()); }

}  // namespace nodelink::transport

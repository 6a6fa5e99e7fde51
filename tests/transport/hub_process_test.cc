// Acceptance tests with real nodelink-hub processes, real TLS, 127.0.0.1:0: relay, refusals,
// offline delivery, SIGKILL + restart, bounds and expiry, health, many participants. Plus
// measurements that are skipped by default (run with --no-skip -tc='measure*').
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "hub_test_util.h"
#include "process/metrics_scrape.h"
#include "process/subprocess.h"
#include "process/temp_dir.h"
#include "process/wait_for.h"
#include "test_pki.h"
#include "testdata_path.h"
#include "transport/library_logs.h"
#include "transport/probe.h"

namespace nodelink::transport {
namespace {

using std::chrono::milliseconds;
using testing::MakeEnvelope;
constexpr milliseconds kWait{30'000};
constexpr size_t kUntilEnd = static_cast<size_t>(-1);

using testing::OtherPki;
using testing::Pki;

// A nodelink-hub child process with TLS and a durable queue in `data_dir`.
struct HubProcess {
  std::unique_ptr<process::Subprocess> process;
  int port = 0;
  int metrics_port = 0;

  static HubProcess Start(const std::string& data_dir, int port = 0,
                          std::vector<std::string> extra = {}, bool capture_stderr = false) {
    std::vector<std::string> argv = {testing::BinPath("nodelink-hub"),
                                     "--federation",
                                     "fed",
                                     "--listen",
                                     "127.0.0.1:" + std::to_string(port),
                                     "--tls-cert",
                                     Pki().hub().cert_path,
                                     "--tls-key",
                                     Pki().hub().key_path,
                                     "--tls-ca",
                                     Pki().ca_path(),
                                     "--data-dir",
                                     data_dir,
                                     "--metrics-listen",
                                     "127.0.0.1:0",
                                     "--port-file",
                                     data_dir + "/port"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    HubProcess h;
    h.process = process::Subprocess::Start(argv, {}, capture_stderr);
    REQUIRE(h.process != nullptr);
    auto line = h.process->WaitForLine("listening on", kWait);
    REQUIRE_MESSAGE(line.has_value(), "nodelink-hub did not start");
    h.port = process::ParseListeningPort(*line).value_or(0);
    REQUIRE(h.port > 0);
    CHECK(process::ReadPortFile(data_dir + "/port", kWait) == h.port);
    auto metrics = h.process->WaitForLine("metrics on http://", kWait);
    REQUIRE(metrics.has_value());
    h.metrics_port = std::stoi(metrics->substr(metrics->rfind(':') + 1));
    return h;
  }
  std::string target() const { return "127.0.0.1:" + std::to_string(port); }
};

using process::MetricValue;
using process::ScrapeMetrics;

std::unique_ptr<HubClient> Client(const std::string& target, const std::string& node,
                                  testing::Inbox* inbox, uint32_t max_in_flight = 0,
                                  std::function<void(v1::Rejected)> late = nullptr) {
  RouteLibraryLogsToSpdlog();
  HubClientOptions o;
  o.target = target;
  o.federation = "fed";
  o.node_id = node;
  o.max_in_flight = max_in_flight;
  o.initial_backoff_ms = 20;
  o.max_backoff_ms = 250;
  o.tls = Pki().FastParticipant(node);
  o.on_late_rejection = std::move(late);
  auto c = HubClient::Start(std::move(o),
                            inbox != nullptr ? inbox->Callback() : testing::IgnorePushes());
  REQUIRE(c.ok());
  if (inbox != nullptr) inbox->Bind(c->get());
  return *std::move(c);
}

TEST_CASE("process: relay between two TLS clients; health SERVING; SIGTERM stops cleanly") {
  process::TempDir dir;
  HubProcess hub = HubProcess::Start(dir.path());
  testing::Inbox inbox;
  auto a = Client(hub.target(), "node-a", nullptr);
  auto b = Client(hub.target(), "node-b", &inbox);
  REQUIRE(b->WaitConnected(kWait));
  testing::Answers answers;
  for (int i = 0; i < 10; ++i) {
    const std::string id = testing::RandomId();
    a->Send(MakeEnvelope("fed", "node-a", "node-b", id), answers.Callback(id));
  }
  REQUIRE(inbox.WaitFor(10, kWait));
  REQUIRE(answers.WaitFor(10, kWait));
  for (const auto& [id, ans] : answers.all()) CHECK(ans.accepted);
  const std::string metrics = ScrapeMetrics(hub.metrics_port);
  CHECK(metrics.find("HTTP/1.1 200 OK") == 0);
  CHECK(MetricValue(metrics, "nodelink_hub_connected_participants") == 2);
  CHECK(MetricValue(metrics, "nodelink_hub_envelopes_accepted_total") == 10);
  // Which thread ran the passes depends on timing; together they committed the ten.
  CHECK(MetricValue(metrics, R"(nodelink_hub_queue_passes_total{thread="nl-queue-commit"})") +
            MetricValue(metrics, R"(nodelink_hub_queue_passes_total{thread="nl-hub-cq"})") >
        0);

  // The standard health check, as an operator runs it (no client certificate needed).
  auto probe = process::Subprocess::Start({testing::BinPath("nodelink-hub"), "health", "--target",
                                           hub.target(), "--ca", Pki().ca_path()});
  REQUIRE(probe != nullptr);
  CHECK(probe->WaitForLine("SERVING", kWait).has_value());
  CHECK(probe->Wait(kWait) == 0);
  auto probe_hub = process::Subprocess::Start({testing::BinPath("nodelink-hub"), "health",
                                               "--target", hub.target(), "--ca", Pki().ca_path(),
                                               "--service", "nodelink.v1.Hub"});
  REQUIRE(probe_hub != nullptr);
  CHECK(probe_hub->Wait(kWait) == 0);

  hub.process->Signal(SIGTERM);
  CHECK(hub.process->Wait(kWait) == 0);
  CHECK(hub.process->WaitForLine("nodelink-hub: stopped", kWait).has_value());
  auto down =
      process::Subprocess::Start({testing::BinPath("nodelink-hub"), "health", "--target",
                                  hub.target(), "--ca", Pki().ca_path(), "--timeout-ms", "2000"});
  REQUIRE(down != nullptr);
  CHECK(down->Wait(kWait) == 1);
}

TEST_CASE("process: impersonation, missing and foreign certificates are refused") {
  process::TempDir dir;
  HubProcess hub = HubProcess::Start(dir.path());
  auto a = Client(hub.target(), "node-a", nullptr);
  REQUIRE(a->WaitConnected(kWait));
  testing::Answers answers;
  a->Send(MakeEnvelope("fed", "node-b", "node-c", "forged-message-1"), answers.Callback("f"));
  REQUIRE(answers.WaitFor(1, kWait));
  CHECK_FALSE(answers.all()[0].second.accepted);
  CHECK(answers.all()[0].second.code == v1::IMPERSONATION);

  TlsMaterial anonymous;
  anonymous.ca_pem = testing::ReadWholeFile(Pki().ca_path());
  auto no_cert = testing::RawExchange(testing::RawChannel(hub.target(), &anonymous),
                                      {testing::HelloFrame("fed", "node-a")}, kUntilEnd);
  CHECK(no_cert.status.error_code() == grpc::StatusCode::UNAUTHENTICATED);

  // Another federation: its own CA, its own name.
  process::TempDir other_dir;
  testing::TestPki other(other_dir.path(), "other-fed");
  TlsMaterial foreign = other.FastParticipant("node-a");
  foreign.ca_pem = anonymous.ca_pem;  // it does trust our hub
  auto refused = testing::RawExchange(testing::RawChannel(hub.target(), &foreign),
                                      {testing::HelloFrame("other-fed", "node-a")}, kUntilEnd,
                                      milliseconds(5000));
  CHECK(refused.status.error_code() == grpc::StatusCode::UNAVAILABLE);
  // The hub keeps serving the legitimate participant.
  a->Send(MakeEnvelope("fed", "node-a", "node-c"), answers.Callback("ok"));
  REQUIRE(answers.WaitFor(2, kWait));
  CHECK(answers.all()[1].second.accepted);
}

TEST_CASE("process: envelopes for an offline participant arrive in order when it connects") {
  process::TempDir dir;
  HubProcess hub = HubProcess::Start(dir.path());
  std::vector<std::string> ids;
  {
    auto a = Client(hub.target(), "node-a", nullptr);
    testing::Answers answers;
    for (int i = 0; i < 200; ++i) {
      ids.push_back(testing::RandomId());
      a->Send(MakeEnvelope("fed", "node-a", "node-b", ids.back()), answers.Callback(ids.back()));
    }
    REQUIRE(answers.WaitFor(200, kWait));
  }  // the sender leaves before the recipient arrives
  testing::Inbox inbox;
  auto b = Client(hub.target(), "node-b", &inbox, 16);  // small credit window
  REQUIRE(inbox.WaitFor(200, kWait));
  auto got = inbox.received();
  REQUIRE(got.size() == 200);
  for (size_t i = 0; i < ids.size(); ++i) CHECK(got[i].message_id() == ids[i]);
}

TEST_CASE("process: hub SIGKILL and restart mid-stream lose no accepted envelope") {
  process::TempDir dir;
  HubProcess hub = HubProcess::Start(dir.path());
  const int port = hub.port;  // the restart reuses it (SO_REUSEPORT off: nothing else holds it)
  testing::Inbox inbox;
  auto b = Client(hub.target(), "node-b", &inbox, 64);
  auto a = Client(hub.target(), "node-a", nullptr);
  REQUIRE(a->WaitConnected(kWait));
  REQUIRE(b->WaitConnected(kWait));

  constexpr int kCount = 3000;
  testing::Answers answers;
  std::vector<std::string> ids;
  std::atomic<int> sent{0};
  // At most kWindow unanswered envelopes, so that the kill lands while the sender is streaming.
  constexpr int kWindow = 128;
  std::thread sender([&] {
    for (int i = 0; i < kCount; ++i) {
      if (i >= kWindow && !answers.WaitFor(static_cast<size_t>(i - kWindow), kWait)) break;
      ids.push_back(testing::RandomId());
      a->Send(MakeEnvelope("fed", "node-a", "node-b", ids.back()), answers.Callback(ids.back()));
      sent.store(i + 1);
    }
  });
  // Kill once a part is accepted and delivered, while the rest is still streaming.
  REQUIRE(process::WaitFor(
      [&] { return answers.WaitFor(kCount / 4, milliseconds(0)) && sent.load() < kCount; }, kWait,
      milliseconds(1)));
  hub.process->Kill();
  const size_t before_kill = inbox.received().size();
  HubProcess restarted = HubProcess::Start(dir.path(), port);
  CHECK(restarted.port == port);
  sender.join();
  REQUIRE(answers.WaitFor(kCount, kWait));
  size_t accepted = 0;
  std::set<std::string> accepted_ids;
  for (const auto& [id, ans] : answers.all()) {
    if (ans.accepted) {
      ++accepted;
      accepted_ids.insert(id);
    }
  }
  CHECK(accepted == kCount);  // the client resent everything unanswered; the hub took it all
  // Every accepted envelope reaches the application exactly once after dedup, in send order.
  REQUIRE(process::WaitFor(
      [&] {
        std::set<std::string> unique;
        for (const v1::Envelope& e : inbox.received()) unique.insert(e.message_id());
        return unique.size() >= accepted_ids.size();
      },
      kWait));
  std::set<std::string> seen;
  std::vector<std::string> first_order;
  for (const v1::Envelope& e : inbox.received()) {
    CHECK(accepted_ids.contains(e.message_id()));
    if (seen.insert(e.message_id()).second) first_order.push_back(e.message_id());
  }
  CHECK(seen == accepted_ids);
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < ids.size(); ++i) index[ids[i]] = i;
  size_t out_of_order = 0;
  for (size_t i = 1; i < first_order.size(); ++i) {
    if (index[first_order[i]] < index[first_order[i - 1]]) ++out_of_order;
  }
  CHECK(out_of_order == 0);
  MESSAGE("SIGKILL test: " << before_kill << " delivered before the kill, "
                           << inbox.received().size() << " deliveries in all for " << kCount
                           << " envelopes (duplicates removed by the receiver: "
                           << inbox.received().size() - seen.size() << "); client resends "
                           << a->stats().resends);
  CHECK(a->stats().resends > 0);
}

TEST_CASE("process: queue bounds give QUEUE_FULL and expiry gives EXPIRED to the sender") {
  process::TempDir dir;
  // A short TTL swept often: expiry here runs on the hub's real clock (the in-process tests use
  // a ManualClock); the test waits for the notice with a bounded poll, never a fixed sleep.
  HubProcess hub = HubProcess::Start(
      dir.path(), 0,
      {"--queue-max-count", "3", "--queue-ttl-ms", "300", "--expiry-interval-ms", "50"});
  std::mutex mu;
  std::vector<v1::Rejected> late;
  auto a = Client(hub.target(), "node-a", nullptr, 0, [&](v1::Rejected r) {
    std::lock_guard lock(mu);
    late.push_back(r);
  });
  REQUIRE(a->WaitConnected(kWait));
  CHECK(a->welcome()->queue_ttl_ms() == 300);
  testing::Answers answers;
  std::vector<std::string> ids;
  for (int i = 0; i < 4; ++i) {
    ids.push_back(testing::RandomId());
    a->Send(MakeEnvelope("fed", "node-a", "node-offline", ids.back()),
            answers.Callback(ids.back()));
  }
  REQUIRE(answers.WaitFor(4, kWait));
  auto all = answers.all();
  for (int i = 0; i < 3; ++i) CHECK(all[static_cast<size_t>(i)].second.accepted);
  CHECK(all[3].second.code == v1::QUEUE_FULL);
  REQUIRE(process::WaitFor(
      [&] {
        std::lock_guard lock(mu);
        return late.size() >= 3;
      },
      kWait));
  std::lock_guard lock(mu);
  std::set<std::string> expired;
  for (const v1::Rejected& r : late) {
    CHECK(r.code() == v1::EXPIRED);
    expired.insert(r.message_id());
  }
  CHECK(expired == std::set<std::string>(ids.begin(), ids.begin() + 3));
}

// A participant reduced to its stream: Hello, Welcome, then idle. No thread of its own.
class IdleParticipant final : public grpc::ClientBidiReactor<v1::ClientFrame, v1::HubFrame> {
 public:
  IdleParticipant(v1::Hub::Stub* stub, const std::string& node, std::atomic<int>& welcomed,
                  std::atomic<int>& done)
      : welcomed_(welcomed), done_(done) {
    hello_ = testing::HelloFrame("fed", node);
    stub->async()->Connect(&context_, this);
    StartWrite(&hello_);
    StartRead(&in_);
    StartCall();
  }
  void Cancel() { context_.TryCancel(); }
  void OnReadDone(bool ok) override {
    if (ok && in_.has_welcome()) {
      welcomed_.fetch_add(1);
      StartRead(&in_);
    }
  }
  void OnDone(const grpc::Status&) override { done_.fetch_add(1); }

 private:
  grpc::ClientContext context_;
  v1::ClientFrame hello_;
  v1::HubFrame in_;
  std::atomic<int>& welcomed_;
  std::atomic<int>& done_;
};

// The base64 lines of a PEM private key: any of them in a log would leak the key.
std::vector<std::string> KeyLines(const std::string& pem) {
  std::vector<std::string> lines;
  std::istringstream in(pem);
  for (std::string line; std::getline(in, line);) {
    if (line.size() >= 16 && line.find("-----") == std::string::npos) lines.push_back(line);
  }
  return lines;
}

TEST_CASE("process: failed TLS logins are logged, without secrets, and the hub goes on") {
  process::TempDir dir;
  HubProcess hub = HubProcess::Start(dir.path(), 0, {"--log-level", "debug"}, true);
  TlsMaterial good = Pki().FastParticipant("node-a");
  TlsMaterial anonymous;  // no client certificate
  anonymous.ca_pem = good.ca_pem;
  TlsMaterial foreign = OtherPki().Material(OtherPki().IssueParticipant("node-a"));
  foreign.ca_pem = good.ca_pem;  // trusts the hub, presents another CA's certificate
  CHECK(testing::RawExchange(testing::RawChannel(hub.target(), &anonymous),
                             {testing::HelloFrame("fed", "node-a")}, kUntilEnd)
            .status.error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(testing::RawExchange(testing::RawChannel(hub.target(), &foreign),
                             {testing::HelloFrame("fed", "node-a")}, kUntilEnd, milliseconds(5000))
            .status.error_code() == grpc::StatusCode::UNAVAILABLE);
  // The hub still serves a good participant.
  auto ok = testing::RawExchange(testing::RawChannel(hub.target(), &good),
                                 {testing::HelloFrame("fed", "node-a")}, 1);
  CHECK(ok.frames.size() == 1);
  // Both failures left a line (the log path ran), and no line holds a byte of any private key:
  // the hub's own, the rejected client's, the good client's.
  CHECK(hub.process->WaitForStderrLine("no client certificate", kWait).has_value());
  CHECK(hub.process->WaitForStderrLine("Handshake failed", kWait).has_value());
  std::vector<std::string> secrets = KeyLines(testing::ReadWholeFile(Pki().hub().key_path));
  for (const TlsMaterial* m : {&foreign, &good}) {
    for (const std::string& line : KeyLines(std::string(AsStringView(m->key_pem.ExposeSecret())))) {
      secrets.push_back(line);
    }
  }
  REQUIRE(secrets.size() > 6);
  const std::vector<std::string> log = hub.process->StderrLines();
  CHECK(log.size() > 2);
  for (const std::string& line : log) {
    for (const std::string& secret : secrets) {
      if (line.find(secret.substr(0, 16)) != std::string::npos)
        FAIL_CHECK("key material: " << line);
    }
  }
}

TEST_CASE("process: many participants connected to one hub within bounded memory") {
  // NODELINK_MANY_PARTICIPANTS is 1,000, and 200 in the sanitizer build (CMake), where each TLS
  // handshake is several times slower. Real mutual TLS, one TCP connection per participant. The
  // environment variable of the same name overrides it for a measurement by hand (10,000 for
  // bench/RESULTS.md).
  const char* many = std::getenv("NODELINK_MANY_PARTICIPANTS");
  const int kParticipants =
      many != nullptr && std::atoi(many) > 0 ? std::atoi(many) : NODELINK_MANY_PARTICIPANTS;
  process::TempDir dir;
  HubProcess hub = HubProcess::Start(dir.path());
  std::vector<TlsMaterial> material;
  for (int i = 0; i < kParticipants; ++i) {
    material.push_back(Pki().FastParticipant("p" + std::to_string(i)));
  }
  const std::optional<long> rss_before_read = process::ResidentKiB(hub.process->pid());
  REQUIRE_MESSAGE(rss_before_read.has_value(), "the hub's RSS could not be read from /proc");
  const long rss_before = *rss_before_read;
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<v1::Hub::Stub>> stubs;
  std::vector<std::unique_ptr<IdleParticipant>> participants;
  std::atomic<int> welcomed{0}, done{0};
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kParticipants; ++i) {
    channels.push_back(testing::RawChannel(hub.target(), &material[static_cast<size_t>(i)]));
    stubs.push_back(v1::Hub::NewStub(channels.back()));
    participants.push_back(std::make_unique<IdleParticipant>(
        stubs.back().get(), "p" + std::to_string(i), welcomed, done));
  }
  const bool all_connected = process::WaitFor([&] { return welcomed.load() == kParticipants; },
                                              milliseconds(240'000), milliseconds(50));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::optional<long> rss_after_read = process::ResidentKiB(hub.process->pid());
  REQUIRE_MESSAGE(rss_after_read.has_value(), "the hub's RSS could not be read from /proc");
  const long rss_after = *rss_after_read;
  CHECK(all_connected);
  const std::string metrics = ScrapeMetrics(hub.metrics_port);
  CHECK(MetricValue(metrics, "nodelink_hub_connected_participants") ==
        static_cast<uint64_t>(kParticipants));
  const long per_connection = (rss_after - rss_before) / kParticipants;
  MESSAGE(kParticipants << " participants (mTLS) connected in " << seconds << " s; hub RSS "
                        << rss_before / 1024 << " MiB before, " << rss_after / 1024
                        << " MiB after, ~" << per_connection << " KiB per connection");
  // Bounded: IMPLEMENTATION-NOTES 4.7 measured ~120 KiB per idle mTLS connection (400 KiB
  // here; 4 MiB under ASan, see CMakeLists.txt).
  CHECK(per_connection < NODELINK_RSS_KIB_PER_CONNECTION_BOUND);
  for (auto& p : participants) p->Cancel();
  CHECK(process::WaitFor([&] { return done.load() == kParticipants; }, kWait));
}

// ---- Measurements (skipped by default) ---------------------------------------------------------

void MeasureThroughput(const std::string& queue, size_t payload, int count, int window) {
  process::TempDir dir;
  HubProcess hub = HubProcess::Start(dir.path(), 0, {"--queue", queue, "--log-level", "warn"});
  testing::Inbox inbox;
  auto b = Client(hub.target(), "node-b", &inbox, 256);
  auto a = Client(hub.target(), "node-a", nullptr);
  REQUIRE(a->WaitConnected(kWait));
  REQUIRE(b->WaitConnected(kWait));
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0;
  const std::string body(payload, 'x');
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < count; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return i - answered < window; });
    }
    v1::Envelope e = MakeEnvelope("fed", "node-a", "node-b", testing::RandomId(), payload);
    a->Send(std::move(e), [&](HubAnswer) {
      std::lock_guard lock(mu);
      ++answered;
      cv.notify_all();
    });
  }
  REQUIRE(inbox.WaitFor(static_cast<size_t>(count), milliseconds(600'000)));
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const std::string m = ScrapeMetrics(hub.metrics_port);
  const uint64_t commits = MetricValue(m, "nodelink_hub_commits_total");
  const uint64_t appends = MetricValue(m, "nodelink_hub_commit_appends_total");
  MESSAGE(queue << " queue, " << payload << " B payload: " << count / s << " envelopes/s, "
                << (static_cast<double>(count) * static_cast<double>(payload)) / s / 1e6
                << " MB/s; " << commits << " commits, mean batch "
                << (commits ? static_cast<double>(appends) / static_cast<double>(commits) : 0)
                << ", max batch " << MetricValue(m, "nodelink_hub_commit_batch_max") << "; hub RSS "
                << process::ResidentKiB(hub.process->pid()).value_or(0) / 1024 << " MiB");
}

TEST_CASE("measure: relay throughput through a TLS hub" * doctest::skip()) {
  for (const char* queue : {"sqlite", "memory"}) {
    MeasureThroughput(queue, 64, 50'000, 2048);
    MeasureThroughput(queue, 1 << 20, 300, 16);
  }
}

}  // namespace
}  // namespace nodelink::transport

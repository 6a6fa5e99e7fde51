#include "roles.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/bytes.h"
#include "core/clock.h"
#include "core/random.h"
#include "keys/key_store.h"
#include "keys/store_key.h"
#include "messages/envelope_check.h"
#include "messages/names.h"
#include "nodelink/node.hpp"
#include "process_guard.h"
#include "transport/hub_client.h"

namespace nodelink::bench {

int64_t MonotonicNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

namespace {

using nlohmann::json;
constexpr auto kConnectTimeout = std::chrono::seconds(30);
constexpr auto kRunTimeout = std::chrono::seconds(600);

void Print(const json& j) { std::cout << j.dump() << std::endl; }

int Fail(const std::string& what) {
  std::cerr << "nodelink-bench participant: " << what << "\n";
  Print({{"error", what}});
  return 1;
}

// Counts events up to a target and wakes the waiter when it is reached.
class Tally {
 public:
  explicit Tally(uint64_t target) : target_(target) {}
  void Add(int64_t now_ns) {
    std::lock_guard lock(mu_);
    if (count_ == 0) first_ns_ = now_ns;
    last_ns_ = now_ns;
    if (++count_ >= target_) done_.notify_all();
  }
  json WaitAndReport() {
    std::unique_lock lock(mu_);
    done_.wait_for(lock, kRunTimeout, [&] { return count_ >= target_; });
    return {{"received", count_}, {"first_ns", first_ns_}, {"last_ns", last_ns_}};
  }

 private:
  const uint64_t target_;
  std::mutex mu_;
  std::condition_variable done_;
  uint64_t count_ = 0;
  int64_t first_ns_ = 0, last_ns_ = 0;
};

// Runs `work` on `threads` threads until `count` items were claimed; returns the failures and
// the first error.
struct Spread {
  uint64_t failed = 0;
  std::string first_error;
};
Spread RunSpread(uint32_t threads, uint64_t count, const std::function<absl::Status()>& work) {
  std::atomic<uint64_t> next{0};
  std::mutex mu;
  Spread out;
  std::vector<std::thread> pool;
  for (uint32_t t = 0; t < std::max<uint32_t>(threads, 1); ++t) {
    pool.emplace_back([&] {
      while (next.fetch_add(1) < count) {
        absl::Status s = work();
        if (s.ok()) continue;
        std::lock_guard lock(mu);
        if (out.failed++ == 0) out.first_error = std::string(s.message());
      }
    });
  }
  for (std::thread& t : pool) t.join();
  return out;
}

absl::StatusOr<std::unique_ptr<Node>> Connect(const RoleFlags& f) {
  auto options = tools::OptionsFromFlags(f.participant);
  if (!options.ok()) return options.status();
  auto node = Node::Start(*std::move(options));
  if (!node.ok()) return node.status();
  if (!(*node)->WaitConnected(kConnectTimeout)) {
    return absl::UnavailableError("not connected to the hub at " + f.participant.hub);
  }
  return node;
}

int Sink(Node& node, const RoleFlags& f) {
  Tally tally(f.count);
  node.Handle("warmup", [](const Received&) -> HandlerResult { return std::nullopt; });
  node.Handle("bench", [&](const Received& r) -> HandlerResult {
    if (r.message.tag == f.tag) tally.Add(MonotonicNs());  // other runs' leftovers are ignored
    return std::nullopt;
  });
  Print({{"ready", true}});
  Print(tally.WaitAndReport());
  // Until the parent says stop: the last receipts reach the hub, and nothing is pushed again to
  // the next run's receiver.
  tools::WaitForTerminationSignal();
  return 0;
}

int Source(Node& node, const RoleFlags& f) {
  // The channel is set up first: cold setups are measured on their own (secure sum).
  absl::Status warm = node.Send(f.peer, {"warmup", "", "", ""}, kConnectTimeout);
  if (!warm.ok()) return Fail("warm-up send failed: " + std::string(warm.message()));
  const Message message{"bench", f.tag, std::string(f.size, 'x'), ""};
  const int64_t start = MonotonicNs();
  Spread s = RunSpread(f.concurrency, f.count, [&] { return node.Send(f.peer, message); });
  Print({{"sent", f.count - s.failed},
         {"failed", s.failed},
         {"error", s.first_error},
         {"start_ns", start},
         {"end_ns", MonotonicNs()}});
  return s.failed == 0 ? 0 : 1;
}

int Echo(Node& node) {
  node.Handle("echo", [](const Received& r) -> HandlerResult {
    return Message{"echo", "", r.message.payload, ""};
  });
  Print({{"ready", true}});
  tools::WaitForTerminationSignal();
  return 0;
}

// p50, p99 and p99.9 of round-trip times, in microseconds.
json LatencyQuantiles(std::vector<int64_t> ns) {
  std::sort(ns.begin(), ns.end());
  auto quantile_us = [&](double q) {
    if (ns.empty()) return 0.0;
    size_t i = std::min(ns.size() - 1, static_cast<size_t>(q * static_cast<double>(ns.size())));
    return static_cast<double>(ns[i]) / 1000.0;
  };
  return {{"replies", ns.size()},
          {"p50_us", quantile_us(0.5)},
          {"p99_us", quantile_us(0.99)},
          {"p999_us", quantile_us(0.999)}};
}

int Requester(Node& node, const RoleFlags& f) {
  auto warm = node.Request(f.peer, {"echo", "", "", ""}, kConnectTimeout);
  if (!warm.ok()) return Fail("warm-up request failed: " + std::string(warm.status().message()));
  const Message request{"echo", "", std::string(f.size, 'x'), ""};
  std::mutex mu;
  std::vector<std::pair<int64_t, int64_t>> trips;  // (start, duration), in completion order
  trips.reserve(f.count);
  const int64_t start = MonotonicNs();
  Spread s = RunSpread(f.concurrency, f.count, [&]() -> absl::Status {
    const int64_t t0 = MonotonicNs();
    auto reply = node.Request(f.peer, request, std::chrono::seconds(30));
    const int64_t t1 = MonotonicNs();
    if (!reply.ok()) return reply.status();
    std::lock_guard lock(mu);
    trips.emplace_back(t0, t1 - t0);
    return absl::OkStatus();
  });
  const int64_t end = MonotonicNs();
  std::vector<int64_t> latencies_ns;
  latencies_ns.reserve(trips.size());
  for (const auto& [t0, ns] : trips) latencies_ns.push_back(ns);
  if (!f.latency_log.empty()) {
    std::ofstream log(f.latency_log);
    for (const auto& [t0, ns] : trips) log << t0 << ' ' << ns << '\n';
    if (!log) return Fail("cannot write " + f.latency_log);
  }
  json out = LatencyQuantiles(std::move(latencies_ns));
  out.update(
      {{"failed", s.failed}, {"error", s.first_error}, {"start_ns", start}, {"end_ns", end}});
  Print(out);
  return s.failed == 0 ? 0 : 1;
}

// ---- The transport ceiling: the same hub and TLS, no crypto, no channel, no store ----

// The raw roles name a run by its channel id, so a sink counts only its own run's envelopes.
std::string RunChannelId(const std::string& tag) {
  std::string id = tag.substr(0, messages::kIdBytes);
  id.resize(messages::kIdBytes, '-');
  return id;
}

struct RawLink {
  std::unique_ptr<transport::HubClient> client;
  std::string federation, node_id;
};

absl::StatusOr<RawLink> RawConnect(const RoleFlags& f,
                                   std::function<void(v1::Envelope)> on_envelope) {
  const tools::ParticipantFlags& p = f.participant;
  absl::StatusOr<keys::StoreKeySource> source =
      absl::InvalidArgumentError("raw roles need --passphrase-file or --key-file");
  if (!p.key_file.empty()) source = keys::StoreKeySource::KeyFile(p.key_file);
  if (!p.passphrase_file.empty()) {
    auto secret = keys::ReadPassphraseFile(p.passphrase_file);
    if (!secret.ok()) return secret.status();
    source = keys::StoreKeySource::Passphrase(*std::move(secret));
  }
  if (!source.ok()) return source.status();
  auto store = keys::KeyStore::Open(p.store, *source);
  if (!store.ok()) return store.status();
  auto identity = (*store)->LoadIdentity();
  if (!identity.ok()) return identity.status();
  auto tls = (*store)->ExportTlsMaterial();
  if (!tls.ok()) return tls.status();
  transport::HubClientOptions o;
  o.target = p.hub;
  o.tls = transport::TlsMaterial{tls->ca_pem, tls->cert_chain_pem, std::move(tls->key_pem),
                                 tls->crl_pem};
  o.federation = identity->federation;
  o.node_id = identity->node_id;
  o.max_in_flight = p.max_in_flight;
  // Raw roles handle each push on the reading thread: they never hand back work.
  auto client = transport::HubClient::Start(
      std::move(o), [on = std::move(on_envelope)](v1::Envelope e, bool) -> transport::PushWork {
        on(std::move(e));
        return nullptr;
      });
  if (!client.ok()) return client.status();
  if (!(*client)->WaitConnected(kConnectTimeout)) {
    return absl::UnavailableError("not connected to the hub at " + p.hub);
  }
  return RawLink{*std::move(client), identity->federation, identity->node_id};
}

int RawSink(const RoleFlags& f) {
  Tally tally(f.count);
  transport::HubClient* client = nullptr;
  std::mutex client_mu;
  auto link = RawConnect(f, [&](v1::Envelope e) {
    if (e.sender() == f.peer && e.sealed().channel_id() == RunChannelId(f.tag)) {
      tally.Add(MonotonicNs());
    }
    std::lock_guard lock(client_mu);
    if (client != nullptr) client->Acknowledge(e.message_id());
  });
  if (!link.ok()) return Fail(std::string(link.status().message()));
  {
    std::lock_guard lock(client_mu);
    client = link->client.get();
  }
  Print({{"ready", true}});
  Print(tally.WaitAndReport());
  tools::WaitForTerminationSignal();  // as Sink
  std::lock_guard lock(client_mu);
  client = nullptr;
  return 0;
}

// Ciphertext of the size a real Sealed of `payload` bytes has (lp framing, a DER signature and the
// AEAD tag): the hub relays it without opening it, as it relays every one.
std::string RawCiphertext(size_t payload) {
  return std::string(payload + 4 + 4 + 72 + 16 + 32, 'c');
}

// A structurally valid Sealed around `ciphertext`.
v1::Envelope RawEnvelope(const RawLink& link, const std::string& peer,
                         const std::string& channel_id, uint64_t seq, std::string ciphertext) {
  v1::Envelope e;
  e.set_version(messages::kProtocolVersion);
  e.set_federation(link.federation);
  e.set_sender(link.node_id);
  e.set_recipient(peer);
  e.set_message_id(ToString(core::RandomBytes(messages::kIdBytes)));
  e.set_sent_at_ms(core::SystemClock::Get().NowMs());
  v1::Sealed* s = e.mutable_sealed();
  s->set_channel_id(channel_id);
  s->set_seq(seq);
  s->set_salt(std::string(messages::kSaltBytes, 's'));
  s->set_nonce(std::string(messages::kNonceBytes, 'n'));
  s->set_ciphertext(std::move(ciphertext));
  return e;
}

int RawSource(const RoleFlags& f) {
  auto link = RawConnect(f, [](v1::Envelope) {});
  if (!link.ok()) return Fail(std::string(link.status().message()));
  const std::string channel_id = RunChannelId(f.tag);
  const std::string ciphertext = RawCiphertext(f.size);
  std::mutex mu;
  std::condition_variable cv;
  uint64_t in_flight = 0, answered = 0, failed = 0;
  const uint64_t window = std::max<uint32_t>(f.concurrency, 1);
  const int64_t start = MonotonicNs();
  for (uint64_t i = 0; i < f.count; ++i) {
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return in_flight < window; });
      ++in_flight;
    }
    link->client->Send(RawEnvelope(*link, f.peer, channel_id, i + 1, ciphertext),
                       [&](transport::HubAnswer answer) {
                         std::lock_guard lock(mu);
                         --in_flight;
                         ++answered;
                         if (!answer.accepted) ++failed;
                         cv.notify_all();
                       });
  }
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return answered == f.count; });
  Print({{"sent", f.count - failed},
         {"failed", failed},
         {"start_ns", start},
         {"end_ns", MonotonicNs()}});
  return failed == 0 ? 0 : 1;
}

// The round-trip ceiling: what the echo gets, it acknowledges and sends straight back.
int RawEcho(const RoleFlags& f) {
  std::mutex mu;
  RawLink* link = nullptr;
  auto connected = RawConnect(f, [&](v1::Envelope e) {
    std::lock_guard lock(mu);
    if (link == nullptr) return;  // not acknowledged: pushed again after a reconnect
    link->client->Acknowledge(e.message_id());
    std::string ciphertext = std::move(*e.mutable_sealed()->mutable_ciphertext());
    link->client->Send(RawEnvelope(*link, e.sender(), e.sealed().channel_id(), e.sealed().seq(),
                                   std::move(ciphertext)),
                       [](transport::HubAnswer) {});
  });
  if (!connected.ok()) return Fail(std::string(connected.status().message()));
  {
    std::lock_guard lock(mu);
    link = &*connected;
  }
  Print({{"ready", true}});
  tools::WaitForTerminationSignal();
  std::lock_guard lock(mu);
  link = nullptr;
  return 0;
}

int RawRequester(const RoleFlags& f) {
  const std::string channel_id = RunChannelId(f.tag);
  std::mutex mu;
  std::condition_variable cv;
  RawLink* link = nullptr;
  std::unordered_map<uint64_t, int64_t> sent_ns;  // by seq, until its echo is back
  std::vector<int64_t> latencies_ns;
  auto connected = RawConnect(f, [&](v1::Envelope e) {
    const int64_t now = MonotonicNs();
    std::lock_guard lock(mu);
    if (link != nullptr) link->client->Acknowledge(e.message_id());
    auto it =
        e.sealed().channel_id() == channel_id ? sent_ns.find(e.sealed().seq()) : sent_ns.end();
    if (it == sent_ns.end()) return;
    latencies_ns.push_back(now - it->second);
    sent_ns.erase(it);
    cv.notify_all();
  });
  if (!connected.ok()) return Fail(std::string(connected.status().message()));
  {
    std::lock_guard lock(mu);
    link = &*connected;
  }
  const size_t window = std::max<uint32_t>(f.concurrency, 1);
  const int64_t start = MonotonicNs();
  bool timed_out = false;
  for (uint64_t seq = 1; seq <= f.count && !timed_out; ++seq) {
    v1::Envelope e = RawEnvelope(*connected, f.peer, channel_id, seq, RawCiphertext(f.size));
    std::unique_lock lock(mu);
    timed_out = !cv.wait_for(lock, kRunTimeout, [&] { return sent_ns.size() < window; });
    sent_ns[seq] = MonotonicNs();
    connected->client->Send(std::move(e), [](transport::HubAnswer) {});
  }
  std::unique_lock lock(mu);
  cv.wait_for(lock, kRunTimeout, [&] { return sent_ns.empty(); });
  const uint64_t failed = f.count - latencies_ns.size();
  link = nullptr;
  json out = LatencyQuantiles(latencies_ns);
  out.update({{"failed", failed},
              {"error", failed == 0 ? "" : "echoes missing"},
              {"start_ns", start},
              {"end_ns", MonotonicNs()}});
  Print(out);
  return failed == 0 ? 0 : 1;
}

// Sinks and echoes wait for a termination signal on their main thread; the senders run to their
// count, so with the signals blocked they would ignore one and keep sending to a hub that may be
// gone. They end at once instead, as after a crash: what their store committed stays.
void ExitOnTerminationSignal() {
  std::thread([] { std::_Exit(128 + tools::WaitForTerminationSignal()); }).detach();
}

// Every role: the raw ones run without a node; senders end on a termination signal (above).
struct Role {
  std::string_view name;
  bool sends;
  int (*raw)(const RoleFlags&);
  int (*with_node)(Node&, const RoleFlags&);
};
constexpr Role kRoles[] = {
    {"sink", false, nullptr, Sink},
    {"source", true, nullptr, Source},
    {"echo", false, nullptr, [](Node& node, const RoleFlags&) { return Echo(node); }},
    {"requester", true, nullptr, Requester},
    {"raw-sink", false, RawSink, nullptr},
    {"raw-source", true, RawSource, nullptr},
    {"raw-echo", false, RawEcho, nullptr},
    {"raw-requester", true, RawRequester, nullptr},
};

}  // namespace

std::vector<std::string> RoleNames() {
  std::vector<std::string> names;
  for (const Role& r : kRoles) names.emplace_back(r.name);
  return names;
}

int RunRole(const RoleFlags& f) {
  tools::LogToStderr();
  spdlog::set_level(spdlog::level::warn);  // the parent prints progress; warnings still show
  tools::BlockTerminationSignals();
  const auto role = std::find_if(std::begin(kRoles), std::end(kRoles),
                                 [&](const Role& r) { return r.name == f.role; });
  if (role == std::end(kRoles)) return Fail("unknown role " + f.role);
  if (role->sends) ExitOnTerminationSignal();
  if (role->raw != nullptr) return role->raw(f);
  auto node = Connect(f);
  if (!node.ok()) return Fail(std::string(node.status().message()));
  return role->with_node(**node, f);
}

}  // namespace nodelink::bench

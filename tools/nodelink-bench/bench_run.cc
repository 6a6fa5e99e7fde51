#include "bench_run.h"

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "crypto_floor.h"
#include "process/local_federation.h"
#include "process/subprocess.h"
#include "process/temp_dir.h"

namespace nodelink::bench {
namespace {

using nlohmann::json;
using process::LocalFederation;
using process::Subprocess;

constexpr char kSink[] = "sink";
constexpr char kSource[] = "source";
constexpr char kResearcher[] = "researcher";

std::string CpuModel() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown CPU";
}

std::string SizeName(size_t bytes) {
  if (bytes >= (1u << 20) && bytes % (1u << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
  return std::to_string(bytes) + " B";
}

// How many messages, how many at once, and the receiver's credit, per payload size: about the
// same bytes per run, and bounded memory for the large ones.
struct Shape {
  uint64_t count;
  uint32_t senders;      // Node::Send threads (each waits for its Accepted)
  uint32_t raw_window;   // envelopes in flight for the raw relay
  uint32_t max_in_flight;
};
Shape ShapeFor(size_t size, double scale) {
  Shape s = size <= 4096     ? Shape{size <= 64 ? 20'000u : 10'000u, 64, 256, 256}
            : size <= (1 << 20) ? Shape{300, 8, 16, 16}
                                : Shape{16, 2, 4, 4};
  s.count = std::max<uint64_t>(4, static_cast<uint64_t>(static_cast<double>(s.count) * scale));
  return s;
}

std::string Fixed(double v, int digits = 0) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f", digits, v);
  return buf;
}

class Bench {
 public:
  Bench(const BenchOptions& options, std::string dir)
      : options_(options),
        fed_(std::move(dir), process::ExecutableDir(), "bench"),
        self_(fed_.Tool("nodelink-bench")) {}

  int Run();

 private:
  std::unique_ptr<Subprocess> Role(const std::string& role, const std::string& id,
                                   const std::string& peer, const std::string& tag,
                                   uint64_t count, size_t size, uint32_t concurrency,
                                   uint32_t max_in_flight);
  // The JSON line of `child` that has `key`, within `timeout`.
  std::optional<json> Result(Subprocess& child, const std::string& key,
                             std::chrono::seconds timeout);
  json Throughput(const std::string& kind, size_t size);
  // kind: "nodelink" (echo and requester nodes) or "raw" (the same hub, no crypto, no store).
  json RoundTrips(const std::string& kind, uint64_t count, uint32_t concurrency);
  json SecureSum(int parties);
  void Note(const std::string& line) {
    if (!options_.json) std::cerr << "nodelink-bench: " << line << std::endl;
  }
  void PrintTable(const json& r) const;
  bool Runs(const std::string& part) const {
    return std::find(options_.parts.begin(), options_.parts.end(), part) != options_.parts.end();
  }

  const BenchOptions& options_;
  LocalFederation fed_;
  std::string self_;
  int run_ = 0;
  bool failed_ = false;
};

std::unique_ptr<Subprocess> Bench::Role(const std::string& role, const std::string& id,
                                        const std::string& peer, const std::string& tag,
                                        uint64_t count, size_t size, uint32_t concurrency,
                                        uint32_t max_in_flight) {
  const std::vector<std::string> argv = fed_.ParticipantCommand(
      self_, {"participant", "--role", role}, id,
      {"--peer", peer, "--tag", tag, "--count", std::to_string(count), "--size",
       std::to_string(size), "--concurrency", std::to_string(concurrency), "--max-in-flight",
       std::to_string(max_in_flight)});
  return Subprocess::Start(argv);
}

std::optional<json> Bench::Result(Subprocess& child, const std::string& key,
                                  std::chrono::seconds timeout) {
  auto line = child.WaitForLine("\"" + key + "\"", timeout);
  if (!line) line = child.WaitForLine("\"error\"", std::chrono::seconds(0));
  if (!line) return std::nullopt;
  json j = json::parse(*line, nullptr, false);
  if (j.is_discarded() || !j.contains(key)) {
    std::cerr << "nodelink-bench: participant said: " << *line << "\n";
    return std::nullopt;
  }
  return j;
}

// Sealed (or, for "raw", unsealed) one-way messages from `source` to `sink` through the hub.
json Bench::Throughput(const std::string& kind, size_t size) {
  const bool raw = kind == "raw";
  const Shape shape = ShapeFor(size, options_.scale);
  const std::string tag = "run-" + std::to_string(++run_);
  json out = {{"kind", kind}, {"payload_bytes", size}, {"messages", shape.count}};
  auto sink = Role(raw ? "raw-sink" : "sink", kSink, kSource, tag, shape.count, size, 1,
                   shape.max_in_flight);
  if (!sink || !Result(*sink, "ready", std::chrono::seconds(60))) {
    failed_ = true;
    out["error"] = "the receiver did not start";
    return out;
  }
  auto source = Role(raw ? "raw-source" : "source", kSource, kSink, tag, shape.count, size,
                     raw ? shape.raw_window : shape.senders, shape.max_in_flight);
  auto sent = source ? Result(*source, "sent", std::chrono::seconds(900)) : std::nullopt;
  auto got = sent ? Result(*sink, "received", std::chrono::seconds(900)) : std::nullopt;
  if (!sent || !got || (*got)["received"].get<uint64_t>() != shape.count ||
      (*sent)["failed"].get<uint64_t>() != 0) {
    failed_ = true;
    out["error"] = sent ? sent->dump() + " " + (got ? got->dump() : "no receiver result")
                        : "the sender failed";
    return out;
  }
  const double seconds =
      static_cast<double>((*got)["last_ns"].get<int64_t>() - (*sent)["start_ns"].get<int64_t>()) /
      1e9;
  const double rate = static_cast<double>(shape.count) / seconds;
  out["messages_per_second"] = rate;
  out["mb_per_second"] = rate * static_cast<double>(size) / 1e6;
  out["hub_rss_kib"] = process::ResidentKiB(fed_.hub()->pid()).value_or(0);
  source->Wait(std::chrono::seconds(10));
  sink->Signal(SIGTERM);
  sink->Wait(std::chrono::seconds(10));
  Note(kind + " " + SizeName(size) + ": " + Fixed(rate) + " msgs/s");
  return out;
}

json Bench::RoundTrips(const std::string& kind, uint64_t count, uint32_t concurrency) {
  json out = {{"kind", kind}, {"payload_bytes", 64}, {"in_flight", concurrency}};
  const bool raw = kind == "raw";
  auto echo = Role(raw ? "raw-echo" : "echo", kSink, "", "", 0, 0, 1, 256);
  if (!echo || !Result(*echo, "ready", std::chrono::seconds(60))) {
    failed_ = true;
    out["error"] = "the echo participant did not start";
    return out;
  }
  const std::string tag = "rt-" + std::to_string(++run_);
  auto requester =
      Role(raw ? "raw-requester" : "requester", kSource, kSink, tag, count, 64, concurrency, 256);
  auto r = requester ? Result(*requester, "replies", std::chrono::seconds(900)) : std::nullopt;
  echo->Signal(SIGTERM);
  echo->Wait(std::chrono::seconds(10));
  if (!r || (*r)["failed"].get<uint64_t>() != 0) {
    failed_ = true;
    out["error"] = r ? r->dump() : "the requester failed";
    return out;
  }
  const double seconds =
      static_cast<double>((*r)["end_ns"].get<int64_t>() - (*r)["start_ns"].get<int64_t>()) / 1e9;
  out.update({{"requests", count},
              {"p50_us", (*r)["p50_us"]},
              {"p99_us", (*r)["p99_us"]},
              {"p999_us", (*r)["p999_us"]},
              {"replies_per_second", static_cast<double>(count) / seconds}});
  Note(kind + " round trips, " + std::to_string(concurrency) + " in flight: p50 " +
       Fixed((*r)["p50_us"].get<double>()) + " us");
  return out;
}

// N node daemons that have never talked to each other, a researcher process, one secure sum.
json Bench::SecureSum(int parties) {
  json out = {{"parties", parties}};
  std::vector<std::unique_ptr<Subprocess>> daemons;
  std::vector<std::string> ids;
  std::string list;
  for (int i = 1; i <= parties; ++i) {
    const std::string id = "s" + std::to_string(parties) + "-" + std::to_string(i);
    ids.push_back(id);
    list += (i > 1 ? "," : "") + id;
    {
      std::ofstream(fed_.InputFile(id)) << i << "\n";
    }
    daemons.push_back(fed_.StartNode(id, {"--researcher", kResearcher, "--co-party", "*"}));
  }
  // A daemon that could not start (Subprocess printed why) fails the run now, not after the wait.
  const bool started =
      std::all_of(daemons.begin(), daemons.end(), [](const auto& d) { return d != nullptr; });
  const bool connected = started && fed_.NodesConnected(ids, std::chrono::seconds(60));
  const std::vector<std::string> argv =
      fed_.ParticipantCommand(fed_.Tool("nodelink-researcher"), {"secure-sum"}, kResearcher,
                              {"--parties", list, "--timeout", "60", "--json"});
  auto researcher = connected ? Subprocess::Start(argv) : nullptr;
  auto rc = researcher ? researcher->Wait(std::chrono::seconds(120)) : std::nullopt;
  std::string text;
  if (researcher) {
    for (const std::string& l : researcher->Lines()) text += l + "\n";
  }
  json result = json::parse(text, nullptr, false);
  for (auto& d : daemons) {
    if (d) d->Signal(SIGTERM);
  }
  for (auto& d : daemons) {
    if (d) d->Wait(std::chrono::seconds(10));
  }
  const uint64_t expected = static_cast<uint64_t>(parties) * (parties + 1) / 2;
  if (!rc || *rc != 0 || result.is_discarded() || !result.value("ok", false) ||
      result["sum"][0].get<std::string>() != std::to_string(expected)) {
    failed_ = true;
    out["error"] = !started    ? "cannot start " + fed_.Tool("nodelink-node")
                   : connected ? "the secure sum failed: " + text
                               : "the daemons did not connect";
    return out;
  }
  out["elapsed_ms"] = result["elapsed_ms"];
  Note("secure sum over " + std::to_string(parties) + " parties: " +
       std::to_string(result["elapsed_ms"].get<uint64_t>()) + " ms");
  return out;
}

int Bench::Run() {
  std::vector<std::string> participants = {kSink, kSource, kResearcher};
  for (int n : Runs("secure-sum") ? options_.secure_sum_parties : std::vector<int>{}) {
    for (int i = 1; i <= n; ++i) {
      participants.push_back("s" + std::to_string(n) + "-" + std::to_string(i));
    }
  }
  Note("creating a federation of " + std::to_string(participants.size()) +
       " participants with nodelink-keys");
  if (!fed_.Create(participants)) return 1;
  json report = {{"cpu", CpuModel()},
                 {"cores", std::thread::hardware_concurrency()},
                 {"command", "nodelink-bench"}};
  for (const char* queue : {"sqlite", "memory"}) {
    if (!fed_.StartHub(std::string("hub-") + queue, {"--queue", queue})) return 1;
    Note(std::string("hub up (TLS, ") + queue + " queue) on " + fed_.HubAddress());
    for (size_t size : Runs("throughput") ? options_.sizes : std::vector<size_t>{}) {
      report["throughput"].push_back(Throughput(std::string("nodelink-") + queue, size));
      if (std::string(queue) == "memory") report["throughput"].push_back(Throughput("raw", size));
    }
    const uint64_t light = std::max<uint64_t>(50, static_cast<uint64_t>(2000 * options_.scale));
    const uint64_t heavy = std::max<uint64_t>(200, static_cast<uint64_t>(20000 * options_.scale));
    for (auto [count, in_flight] : {std::pair{light, 1u}, std::pair{heavy, 32u}}) {
      if (!Runs("round-trips")) break;
      for (const char* kind : {"nodelink", "raw"}) {
        if (std::string(kind) == "raw" && std::string(queue) != "memory") continue;
        json trips = RoundTrips(kind, count, in_flight);
        trips["queue"] = queue;
        report["round_trips"].push_back(trips);
      }
    }
    if (std::string(queue) == "sqlite" && Runs("secure-sum")) {
      for (int n : options_.secure_sum_parties) report["secure_sum"].push_back(SecureSum(n));
    }
    fed_.StopHub();
  }
  for (size_t size : Runs("throughput") ? options_.sizes : std::vector<size_t>{}) {
    CryptoFloor f = MeasureCryptoFloor(size, 20);
    report["crypto_floor"].push_back({{"payload_bytes", size},
                                      {"seal_us", f.seal_us},
                                      {"open_us", f.open_us},
                                      {"messages_per_second", f.messages_per_second}});
  }
  if (options_.json) {
    std::cout << report.dump(2) << std::endl;
  } else {
    PrintTable(report);
  }
  return failed_ ? 1 : 0;
}

void Bench::PrintTable(const json& r) const {
  // A part that did not run has no key.
  const json none = json::array();
  auto section = [&](const char* key) -> const json& { return r.contains(key) ? r[key] : none; };
  auto find = [&](const std::string& kind, size_t size) -> const json* {
    for (const json& t : section("throughput")) {
      if (t["kind"] == kind && t["payload_bytes"] == size) return &t;
    }
    return nullptr;
  };
  auto rate = [](const json* t) {
    return t && t->contains("messages_per_second") ? (*t)["messages_per_second"].get<double>() : 0;
  };
  std::cout << "nodelink-bench on " << r["cpu"].get<std::string>() << ", " << r["cores"]
            << " cores\n\n"
            << "One-way messages, sender process -> hub (TLS) -> receiver process:\n"
            << "payload  | nodelink, durable hub   | nodelink, memory queue | raw relay (no crypto,"
               " memory) | crypto floor | durable/raw | durable/floor | hub RSS\n";
  for (const json& floor : section("crypto_floor")) {
    const size_t size = floor["payload_bytes"];
    const json* durable = find("nodelink-sqlite", size);
    const double d = rate(durable), m = rate(find("nodelink-memory", size)),
                 w = rate(find("raw", size)), f = floor["messages_per_second"];
    auto cell = [&](double v) {
      return Fixed(v) + " msg/s " + Fixed(v * static_cast<double>(size) / 1e6, 1) + " MB/s";
    };
    std::printf("%-8s | %-23s | %-22s | %-30s | %-12s | %-11s | %-13s | %s\n",
                SizeName(size).c_str(), cell(d).c_str(), cell(m).c_str(), cell(w).c_str(),
                (Fixed(f) + "/s").c_str(), (w > 0 ? Fixed(d / w, 2) : "-").c_str(),
                (f > 0 ? Fixed(d / f, 2) : "-").c_str(),
                durable && durable->contains("hub_rss_kib")
                    ? (std::to_string((*durable)["hub_rss_kib"].get<long>() / 1024) + " MiB").c_str()
                    : "-");
  }
  std::cout << "\nRequest/reply round trips, 64 B (raw relay: the memory-queue hub and TLS, no "
               "crypto, no store):\n";
  auto raw_p50 = [&](const json& in_flight) -> double {
    for (const json& t : section("round_trips")) {
      if (t["kind"] == "raw" && t["in_flight"] == in_flight && t.contains("p50_us")) {
        return t["p50_us"].get<double>();
      }
    }
    return 0;
  };
  for (const json& t : section("round_trips")) {
    const std::string who = t["kind"] == "raw"       ? "raw relay"
                            : t["queue"] == "sqlite" ? "nodelink, durable hub"
                                                     : "nodelink, memory-queue hub";
    if (!t.contains("p50_us")) {
      std::cout << "  " << who << ", " << t["in_flight"] << " in flight: FAILED "
                << t.value("error", "") << "\n";
      continue;
    }
    const double p50 = t["p50_us"].get<double>(), raw = raw_p50(t["in_flight"]);
    std::cout << "  " << who << ", " << t["in_flight"] << " in flight: p50 " << Fixed(p50)
              << " us, p99 " << Fixed(t["p99_us"].get<double>()) << " us, p99.9 "
              << Fixed(t["p999_us"].get<double>()) << " us, "
              << Fixed(t["replies_per_second"].get<double>()) << " replies/s"
              << (t["kind"] != "raw" && raw > 0 ? ", p50/raw " + Fixed(p50 / raw, 1) : "") << "\n";
  }
  std::cout << "\nSecure sum (cold channels, daemons connected):\n";
  for (const json& t : section("secure_sum")) {
    std::cout << "  " << t["parties"] << " parties: "
              << (t.contains("elapsed_ms") ? std::to_string(t["elapsed_ms"].get<uint64_t>()) + " ms"
                                           : "FAILED " + t.value("error", std::string()))
              << "\n";
  }
  for (const json& t : section("throughput")) {
    if (t.contains("error")) {
      std::cout << "FAILED: " << t["kind"].get<std::string>() << " "
                << SizeName(t["payload_bytes"]) << ": " << t["error"].get<std::string>() << "\n";
    }
  }
}

}  // namespace

int RunBench(const BenchOptions& options) {
  std::signal(SIGPIPE, SIG_IGN);
  auto dir = std::make_unique<process::TempDir>("nodelink-bench");
  int rc = Bench(options, dir->path()).Run();
  if (options.keep) {
    std::cerr << "kept " << dir->path() << "\n";
    dir->Release();
  }
  return rc;
}

}  // namespace nodelink::bench

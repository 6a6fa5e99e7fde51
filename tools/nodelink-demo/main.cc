// nodelink-demo: the secure-sum demo, end to end on one machine with real processes. Creates a
// fresh federation in a temporary directory with nodelink-keys (a CA, a hub certificate, N node
// stores and the researcher's), starts nodelink-hub and N nodelink-node daemons over mutual TLS on
// loopback, runs nodelink-researcher secure-sum over values it gave each node, checks the sum
// against the known total, prints what happened, and stops everything it started.
#include <CLI/CLI.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "process/local_federation.h"
#include "process/subprocess.h"
#include "process/temp_dir.h"

namespace {

using nlohmann::json;
using nodelink::process::LocalFederation;
using nodelink::process::Subprocess;
using Clock = std::chrono::steady_clock;

constexpr char kFederation[] = "demo";

class Demo {
 public:
  Demo(std::string dir, int nodes, int elements, double timeout_s, int kill_after)
      : fed_(std::move(dir), nodelink::process::ExecutableDir(), kFederation),
        nodes_(nodes),
        elements_(elements),
        timeout_s_(timeout_s),
        kill_index_(kill_after) {}

  int Run();

 private:
  std::string Path(const std::string& name) const { return fed_.Path(name); }
  std::string Tool(const std::string& name) const { return fed_.Tool(name); }
  std::string NodeId(int i) const { return "lab-" + std::to_string(i + 1); }

  bool CreateFederation();
  bool StartHub();
  bool StartNodes();
  int RunSecureSum();
  void Say(const std::string& line) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start_).count();
    std::cout << "[" << ms / 1000 << "." << (ms % 1000) / 100 << "s] " << line << std::endl;
  }

  LocalFederation fed_;
  int nodes_;
  int elements_;
  double timeout_s_;
  int kill_index_;  // -1: none; else kill this node after the researcher started
  Clock::time_point start_ = Clock::now();
  std::vector<std::unique_ptr<Subprocess>> node_processes_;
  std::vector<std::vector<long long>> inputs_;
};

bool Demo::CreateFederation() {
  std::vector<std::string> participants = {"researcher"};
  for (int i = 0; i < nodes_; ++i) participants.push_back(NodeId(i));
  if (!fed_.Create(participants)) return false;
  // Every node accepts the researcher and approves the other nodes as co-parties.
  for (int i = 0; i < nodes_; ++i) {
    if (!fed_.TrustResearcher(NodeId(i), "researcher")) return false;
    for (int j = 0; j < nodes_; ++j) {
      if (j != i && !fed_.Approve(NodeId(i), NodeId(j))) return false;
    }
  }
  Say("federation \"" + std::string(kFederation) + "\": CA, hub certificate and " +
      std::to_string(nodes_ + 1) + " key stores created with nodelink-keys");
  return true;
}

bool Demo::StartHub() {
  if (!fed_.StartHub()) {
    std::cerr << "nodelink-demo: the hub did not start\n";
    return false;
  }
  Say("hub listening on " + fed_.HubAddress() + " (mutual TLS, durable queue)");
  return true;
}

bool Demo::StartNodes() {
  std::mt19937_64 rng(std::random_device{}());
  std::vector<std::string> ids;
  for (int i = 0; i < nodes_; ++i) {
    std::vector<long long> values;
    std::ofstream input(fed_.InputFile(NodeId(i)));
    for (int e = 0; e < elements_; ++e) {
      values.push_back(static_cast<long long>(rng() % 1'000'000));
      input << values.back() << "\n";
    }
    inputs_.push_back(values);
    node_processes_.push_back(fed_.StartNode(NodeId(i)));
    if (!node_processes_.back()) return false;
    ids.push_back(NodeId(i));
  }
  if (!fed_.NodesConnected(ids, std::chrono::seconds(30))) {
    std::cerr << "nodelink-demo: not every node connected to the hub within 30 s\n";
    return false;
  }
  Say(std::to_string(nodes_) + " node daemons connected, each holding a secret vector of " +
      std::to_string(elements_) + " integers");
  return true;
}

int Demo::RunSecureSum() {
  std::string parties;
  for (int i = 0; i < nodes_; ++i) parties += (i ? "," : "") + NodeId(i);
  const std::vector<std::string> argv = fed_.ParticipantCommand(
      Tool("nodelink-researcher"), {"secure-sum"}, "researcher",
      {"--parties", parties, "--elements", std::to_string(elements_), "--timeout",
       std::to_string(timeout_s_), "--json"});
  Say("researcher: secure-sum over " + parties);
  const bool kill_one = kill_index_ >= 0 && kill_index_ < nodes_;
  // Its stderr is captured (and still shown) only to see when the run has begun.
  auto researcher = Subprocess::Start(argv, {}, /*capture_stderr=*/kill_one);
  if (!researcher) return 1;
  auto killed_at = std::chrono::steady_clock::now();
  if (kill_one) {
    // Mid-run: once the researcher is connected and asking the parties.
    if (!researcher->WaitForStderrLine("asking", std::chrono::seconds(30))) {
      std::cerr << "nodelink-demo: the researcher did not start asking the parties\n";
      return 1;
    }
    node_processes_[kill_index_]->Kill();
    killed_at = std::chrono::steady_clock::now();
    Say("killed " + NodeId(kill_index_) + " (SIGKILL) while the researcher runs");
  }
  auto rc = researcher->Wait(std::chrono::milliseconds(static_cast<long>(timeout_s_ * 1000) + 30000));
  const double after_kill_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  std::string out;
  for (const std::string& l : researcher->Lines()) out += l + "\n";
  json result = json::parse(out, nullptr, false);
  if (!rc || result.is_discarded()) {
    std::cerr << "nodelink-demo: the researcher failed (exit "
              << (rc ? std::to_string(*rc) : "timeout") << ")\n" << out;
    return 1;
  }
  if (!result.value("ok", false)) {
    std::string failed;
    for (auto it = result["failed"].begin(); it != result["failed"].end(); ++it) {
      failed += "\n  " + it.key() + ": " + it.value().get<std::string>();
    }
    Say("secure sum failed, the researcher names the parties that did not deliver:" + failed);
    if (kill_one) {
      // Named rather than hung: it answered within its own timeout (plus a margin for exiting).
      const bool in_time = after_kill_s <= timeout_s_ + 5;
      char took[64];
      std::snprintf(took, sizeof(took), "%.1f s after the kill, timeout %.0f s", after_kill_s,
                    timeout_s_);
      Say(std::string(in_time ? "the researcher reported within its timeout (" : "TOO LATE (") +
          took + ")");
    }
    return 1;
  }
  // The known total, mod 2^64 (the default ring).
  std::vector<unsigned long long> expected(elements_, 0);
  for (const auto& values : inputs_) {
    for (int e = 0; e < elements_; ++e) expected[e] += static_cast<unsigned long long>(values[e]);
  }
  std::vector<std::string> sum = result["sum"];
  bool correct = sum.size() == expected.size();
  std::string shown;
  for (size_t e = 0; correct && e < sum.size(); ++e) {
    correct = sum[e] == std::to_string(expected[e]);
    shown += (e ? " " : "") + sum[e];
  }
  Say("sum = [" + shown + "] in " + std::to_string(result["elapsed_ms"].get<uint64_t>()) +
      " ms (context " + result["context_id"].get<std::string>() + ")");
  Say(correct ? "correct: equals the total of the inputs the demo gave the nodes; the researcher "
                "saw only the sum"
              : "WRONG: does not equal the total of the inputs");
  return correct ? 0 : 1;
}

int Demo::Run() {
  Say("nodelink secure-sum demo in " + fed_.dir());
  if (!CreateFederation() || !StartHub() || !StartNodes()) return 1;
  int rc = RunSecureSum();
  // What the participants did, from their own stores and the hub: each node prints its counters
  // when it stops.
  for (auto& node : node_processes_) {
    if (node && node->running()) node->Signal(SIGTERM);
  }
  uint64_t channels = 0, sealed = 0, opened = 0;
  for (auto& node : node_processes_) {
    if (!node) continue;
    node->Wait(std::chrono::seconds(10));
    for (const std::string& line : node->Lines()) {
      auto at = line.find("stats ");
      if (at == std::string::npos) continue;
      json s = json::parse(line.substr(at + 6), nullptr, false);
      if (s.is_discarded()) continue;
      channels += s.value("channels", 0ull);
      sealed += s.value("sealed", 0ull);
      opened += s.value("opened", 0ull);
    }
  }
  Say("nodes: " + std::to_string(channels) + " channel ends set up, " + std::to_string(sealed) +
      " messages sealed and " + std::to_string(opened) + " opened through the hub");
  fed_.StopHub();
  Say(std::string("stopped the hub and the nodes; ") + (rc == 0 ? "demo passed" : "demo FAILED"));
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"nodelink-demo: a secure sum over N node daemons and a hub, on this machine, with "
               "real processes over mutual TLS on loopback."};
  int nodes = 5, elements = 3, kill = 0;
  double timeout_s = 20;
  bool keep = false;
  app.add_option("--nodes", nodes, "number of node daemons (default 5)")->check(CLI::Range(2, 50));
  app.add_option("--elements", elements, "length of each node's secret vector (default 3)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--timeout", timeout_s, "seconds the researcher waits (default 20)")
      ->check(CLI::Range(1.0, 600.0));
  app.add_option("--kill-node", kill,
                 "kill node number K (1..N) once the researcher has started, to show the failure "
                 "report")
      ->check(CLI::Range(0, 50));
  app.add_flag("--keep", keep, "keep the temporary directory for inspection");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  if (kill > nodes) {
    std::cerr << "nodelink-demo: --kill-node must be at most --nodes\n";
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  auto dir = std::make_unique<nodelink::process::TempDir>("nodelink-demo");
  int rc = Demo(dir->path(), nodes, elements, timeout_s, kill - 1).Run();
  if (keep) {
    std::cout << "kept " << dir->path() << " (passphrase in " << dir->path() << "/passphrase)\n";
    dir->Release();
  }
  return rc;
}

// A numbered stream between two participants in their own processes (nodelink_stream_peer)
// through a real nodelink-hub, for the fault tests: start, kill and restart either end, read what
// each logged, and check the invariant.
#pragma once

#include <doctest/doctest.h>

#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "process/subprocess.h"
#include "process/wait_for.h"
#include "test_federation.h"
#include "testdata_path.h"

namespace nodelink::testing {

inline constexpr char kSender[] = "lab-a";
inline constexpr char kReceiver[] = "lab-b";
inline constexpr auto kStreamWait = std::chrono::seconds(600);  // bound for a broken run

// 0, 1, ..., count-1, each once and in order.
inline void CheckExactlyOnceInOrder(const std::vector<uint64_t>& logged, uint64_t count) {
  REQUIRE(logged.size() == count);
  for (uint64_t i = 0; i < count; ++i) {
    if (logged[i] != i) {
      FAIL_CHECK("position " << i << " holds " << logged[i]);
      return;
    }
  }
}

struct StreamRig {
  explicit StreamRig(std::vector<std::string> hub_args = {})
      : fed({kSender, kReceiver}, std::nullopt, std::move(hub_args)) {}

  std::string LogOf(const std::string& id) const { return fed.File(id + ".log"); }

  // Starts one end, connected to `hub` (default: the hub itself); waits until it is connected.
  std::unique_ptr<process::Subprocess> Start(const std::string& id, uint64_t count,
                                             uint64_t die_after = 0, std::string hub = "") {
    const bool sends = id == kSender;
    std::vector<std::string> argv = {BinPath("nodelink_stream_peer"),
                                     sends ? "send" : "receive",
                                     "--store", fed.StorePath(id),
                                     "--passphrase-file", fed.Passphrase(),
                                     "--hub", hub.empty() ? fed.HubAddress() : hub,
                                     "--peer", sends ? kReceiver : kSender,
                                     "--count", std::to_string(count),
                                     "--log", LogOf(id)};
    if (die_after != 0) argv.insert(argv.end(), {"--die-after", std::to_string(die_after)});
    auto p = process::Subprocess::Start(argv);
    REQUIRE(p != nullptr);
    REQUIRE_MESSAGE(p->WaitForLine("\"ready\"", std::chrono::seconds(60)).has_value(),
                    id << " did not connect");
    return p;
  }

  // The numbers `id` logged, in order.
  std::vector<uint64_t> Logged(const std::string& id) const {
    std::vector<uint64_t> out;
    std::ifstream in(LogOf(id));
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) out.push_back(std::stoull(line));
    }
    return out;
  }
  bool WaitLogged(const std::string& id, size_t n) const {
    return process::WaitFor([&] { return Logged(id).size() >= n; }, kStreamWait,
                            std::chrono::milliseconds(20));
  }

  // Waits for a clean exit and returns the counters it printed.
  static nlohmann::json Finish(process::Subprocess& p) {
    auto code = p.Wait(kStreamWait);
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    auto line = p.WaitForLine("\"done\"", std::chrono::seconds(10));
    REQUIRE(line.has_value());
    return nlohmann::json::parse(*line)["counters"];
  }

  // Both ends exit cleanly, and both logs are 0..count-1, each once and in order.
  void FinishExactlyOnceInOrder(process::Subprocess& sender, process::Subprocess& receiver,
                                uint64_t count) {
    Finish(sender);
    Finish(receiver);
    CheckExactlyOnceInOrder(Logged(kSender), count);
    CheckExactlyOnceInOrder(Logged(kReceiver), count);
  }

  TestFederation fed;
};

inline uint64_t Refused(const nlohmann::json& counters, const std::string& code) {
  return counters["refused"].value(code, uint64_t{0});
}

}  // namespace nodelink::testing

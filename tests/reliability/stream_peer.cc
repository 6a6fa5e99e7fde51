// nodelink_stream_peer: one end of a numbered message stream, for the reliability tests. Runs a
// real Node (its own key store, TLS to the hub) in its own process so that a test can kill it.
//
//   send     sends "0", "1", ... "count-1" to --peer, one at a time, and appends each number to
//            --log once Send returned (the hub durably queued it). Resumes after the last logged
//            number, so a restarted sender continues where it was killed.
//   receive  appends each number received from --peer to --log as Receive returns it, until
//            --count numbers are logged or SIGTERM.
// Both print {"ready":true} once connected and, at the end, one JSON line with the node's
// counters. --die-after K raises SIGKILL right after the K-th logged number: a crash at a point
// the test knows, with the node's own threads mid-work (sending, receiving, acknowledging).
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "nodelink/node.hpp"
#include "participant_flags.h"
#include "process_guard.h"

namespace {

using nlohmann::json;
constexpr char kTag[] = "stream";

struct Flags {
  nodelink::tools::ParticipantFlags participant;
  std::string role, peer, log;
  uint64_t count = 0;
  uint64_t die_after = 0;  // 0 = never
  uint64_t timeout_ms = 120'000;
};

// The numbers already logged (a restarted peer continues after them).
uint64_t LoggedLines(const std::string& path) {
  std::ifstream in(path);
  uint64_t n = 0;
  for (std::string line; std::getline(in, line);) n += !line.empty();
  return n;
}

// Appends a line with one write(2), so that a SIGKILL leaves whole lines only.
bool AppendLine(int fd, const std::string& text) {
  const std::string line = text + "\n";
  return ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
}

json Counters(nodelink::Node& node) {
  const nodelink::NodeStats s = node.Stats();
  return {{"opened", s.messages_opened}, {"sealed", s.messages_sealed},
          {"refused", s.refused},        {"setups_started", s.setups_started},
          {"receive_queue", s.receive_queue}};
}

int Run(const Flags& f) {
  auto options = nodelink::tools::OptionsFromFlags(f.participant);
  if (!options.ok()) {
    std::cerr << "stream peer: " << options.status().message() << "\n";
    return 2;
  }
  options->reconnect_max_backoff_ms = 200;
  auto started = nodelink::Node::Start(std::move(*options));
  if (!started.ok()) {
    std::cerr << "stream peer: " << started.status().ToString() << "\n";
    return 1;
  }
  nodelink::Node& node = **started;
  if (!node.WaitConnected(std::chrono::seconds(30))) {
    std::cerr << "stream peer: not connected to the hub after 30 s\n";
    return 1;
  }
  std::cout << json{{"ready", true}}.dump() << std::endl;

  std::atomic<bool> stop{false};
  std::thread signals([&] {
    while (!stop.load() && nodelink::tools::WaitForTerminationSignalFor(100) == 0) {
    }
    stop.store(true);
  });
  const int fd = ::open(f.log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int rc = fd < 0 ? 1 : 0;
  if (fd < 0) std::cerr << "stream peer: cannot open --log " << f.log << "\n";
  const auto timeout = std::chrono::milliseconds(f.timeout_ms);
  for (uint64_t logged = LoggedLines(f.log); rc == 0 && logged < f.count && !stop.load();) {
    std::string number;
    if (f.role == "send") {
      number = std::to_string(logged);
      absl::Status sent = node.Send(f.peer, {"stream", kTag, number, "text/plain"}, timeout);
      if (!sent.ok()) {
        std::cerr << "stream peer: sending " << number << " failed: " << sent.ToString() << "\n";
        rc = 1;
        break;
      }
    } else {
      auto got = node.Receive(f.peer, kTag, std::chrono::milliseconds(200));
      if (absl::IsDeadlineExceeded(got.status())) continue;
      if (!got.ok()) {
        std::cerr << "stream peer: receive failed: " << got.status().ToString() << "\n";
        rc = 1;
        break;
      }
      number = got->message.payload;
    }
    if (!AppendLine(fd, number)) {
      std::cerr << "stream peer: cannot write --log\n";
      rc = 1;
      break;
    }
    if (++logged == f.die_after) ::raise(SIGKILL);
  }
  stop.store(true);
  signals.join();
  if (fd >= 0) ::close(fd);
  std::cout << json{{"done", rc == 0}, {"counters", Counters(node)}}.dump() << std::endl;
  return rc;
}

}  // namespace

int main(int argc, char** argv) {
  nodelink::tools::BlockTerminationSignals();
  nodelink::tools::LogToStderr();
  CLI::App app{"One end of a numbered message stream (nodelink reliability tests)"};
  Flags f;
  nodelink::tools::AddParticipantFlags(app, f.participant);
  app.add_option("role", f.role, "send or receive")
      ->required()
      ->check(CLI::IsMember({"send", "receive"}));
  app.add_option("--peer", f.peer, "the other end")->required();
  app.add_option("--count", f.count, "numbers in the stream")->required();
  app.add_option("--log", f.log, "file the numbers are appended to")->required();
  app.add_option("--die-after", f.die_after, "SIGKILL itself after this many logged numbers");
  app.add_option("--timeout-ms", f.timeout_ms, "a Send's deadline")->capture_default_str();
  bool should_exit = false;
  const int parsed = nodelink::tools::ParseOrExit(app, argc, argv, should_exit);
  if (should_exit) return parsed;
  return Run(f);
}

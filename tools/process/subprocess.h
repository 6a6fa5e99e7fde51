// A child process for integration tests: started with an argv, its stdout captured line by line
// (stderr is inherited, so its logs appear in the test output, unless captured too: then it is
// still echoed to ours, line by line), and killed with SIGKILL in the destructor so that no
// daemon outlives its test.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace nodelink::process {

class Subprocess {
 public:
  // Starts argv[0] (a path) with arguments argv[1..]. Returns nullptr (and prints why to stderr)
  // if the process cannot be started. `extra_env` entries ("NAME=value") are added to the
  // inherited environment, replacing inherited entries of the same name.
  // With `capture_stderr`, stderr lines are kept for WaitForStderrLine as well.
  static std::unique_ptr<Subprocess> Start(const std::vector<std::string>& argv,
                                           const std::vector<std::string>& extra_env = {},
                                           bool capture_stderr = false);
  ~Subprocess();  // Kill() unless already reaped

  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  pid_t pid() const { return pid_; }

  // Waits until a stdout line contains `needle`; returns that line, or nullopt on timeout or when
  // stdout closed first. Lines already read count too (each call scans from the first line).
  std::optional<std::string> WaitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout);
  // The same for stderr, when started with capture_stderr (nullopt at once otherwise).
  std::optional<std::string> WaitForStderrLine(const std::string& needle,
                                               std::chrono::milliseconds timeout);
  // Every stdout line read so far.
  std::vector<std::string> Lines() const;
  // Every stderr line read so far (empty unless started with capture_stderr).
  std::vector<std::string> StderrLines() const;

  // Sends `signal` (e.g. SIGTERM) to the child.
  void Signal(int signal);
  // SIGKILL and reap. Idempotent.
  void Kill();
  // Waits for the child to exit; returns its exit code (128 + signal if killed), or nullopt on
  // timeout (the child keeps running).
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  bool running();

 private:
  // One captured stream: its lines, and whether it reached EOF (guarded by mu_).
  struct Stream {
    int fd = -1;
    std::vector<std::string> lines;
    bool closed = false;
  };

  Subprocess(pid_t pid, int stdout_fd, int stderr_fd);
  void ReadLines(Stream& stream, bool echo_to_stderr);
  std::optional<std::string> WaitForLineIn(const Stream& stream, const std::string& needle,
                                           std::chrono::milliseconds timeout);

  pid_t pid_;
  std::optional<int> exit_code_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  Stream out_;
  Stream err_;  // fd -1 unless captured
  std::thread out_reader_;
  std::thread err_reader_;
};

// "nodelink-hub: listening on 127.0.0.1:PORT" (any "listening on HOST:PORT" line) -> PORT.
std::optional<int> ParseListeningPort(const std::string& line);

// Reads a port number from a file once it exists and holds one (a daemon's --port-file), polling
// until `timeout`.
std::optional<int> ReadPortFile(const std::string& path, std::chrono::milliseconds timeout);

// Resident set size of a process in KiB, from /proc/<pid>/status (VmRSS); nullopt if unreadable.
std::optional<long> ResidentKiB(pid_t pid);

}  // namespace nodelink::process

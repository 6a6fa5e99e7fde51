#include "process/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string_view>
#include <sstream>

#include "process/wait_for.h"

extern char** environ;

namespace nodelink::process {

std::unique_ptr<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                              const std::vector<std::string>& extra_env,
                                              bool capture_stderr) {
  if (argv.empty()) return nullptr;
  int out_fds[2] = {-1, -1};
  int err_fds[2] = {-1, -1};
  if (pipe2(out_fds, O_CLOEXEC) != 0 || (capture_stderr && pipe2(err_fds, O_CLOEXEC) != 0)) {
    std::perror("Subprocess: pipe2");
    for (int fd : {out_fds[0], out_fds[1]}) {
      if (fd >= 0) close(fd);
    }
    return nullptr;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_fds[1], STDOUT_FILENO);
  if (capture_stderr) posix_spawn_file_actions_adddup2(&actions, err_fds[1], STDERR_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // An extra entry replaces an inherited one of the same name (getenv would find the first).
  auto name_of = [](std::string_view entry) { return entry.substr(0, entry.find('=') + 1); };
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) {
    const bool replaced = std::any_of(extra_env.begin(), extra_env.end(), [&](const std::string& x) {
      return name_of(x) == name_of(*e);
    });
    if (!replaced) env_storage.emplace_back(*e);
  }
  for (const std::string& e : extra_env) env_storage.push_back(e);
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(out_fds[1]);
  if (capture_stderr) close(err_fds[1]);
  if (rc != 0) {
    std::fprintf(stderr, "Subprocess: cannot start %s: %s\n", argv[0].c_str(), std::strerror(rc));
    close(out_fds[0]);
    if (capture_stderr) close(err_fds[0]);
    return nullptr;
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, out_fds[0], err_fds[0]));
}

Subprocess::Subprocess(pid_t pid, int stdout_fd, int stderr_fd) : pid_(pid) {
  out_.fd = stdout_fd;
  err_.fd = stderr_fd;
  out_reader_ = std::thread([this] { ReadLines(out_, false); });
  if (err_.fd >= 0) err_reader_ = std::thread([this] { ReadLines(err_, true); });
}

Subprocess::~Subprocess() {
  Kill();
  // The pipes close when the child is gone.
  for (std::thread* reader : {&out_reader_, &err_reader_}) {
    if (reader->joinable()) reader->join();
  }
  close(out_.fd);
  if (err_.fd >= 0) close(err_.fd);
}

void Subprocess::ReadLines(Stream& stream, bool echo_to_stderr) {
  std::string partial;
  char buf[4096];
  auto keep = [&](std::string line) {
    if (echo_to_stderr) std::fprintf(stderr, "%s\n", line.c_str());
    std::lock_guard lock(mu_);
    stream.lines.push_back(std::move(line));
    cv_.notify_all();
  };
  for (;;) {
    const ssize_t n = read(stream.fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      keep(partial.substr(0, nl));
      partial.erase(0, nl + 1);
    }
  }
  if (!partial.empty()) keep(partial);
  std::lock_guard lock(mu_);
  stream.closed = true;
  cv_.notify_all();
}

std::optional<std::string> Subprocess::WaitForLineIn(const Stream& stream,
                                                     const std::string& needle,
                                                     std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::optional<std::string> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const std::string& l : stream.lines) {
      if (l.find(needle) != std::string::npos) {
        found = l;
        return true;
      }
    }
    return stream.closed;
  });
  return found;
}

std::optional<std::string> Subprocess::WaitForLine(const std::string& needle,
                                                   std::chrono::milliseconds timeout) {
  return WaitForLineIn(out_, needle, timeout);
}

std::optional<std::string> Subprocess::WaitForStderrLine(const std::string& needle,
                                                         std::chrono::milliseconds timeout) {
  if (err_.fd < 0) return std::nullopt;
  return WaitForLineIn(err_, needle, timeout);
}

std::vector<std::string> Subprocess::Lines() const {
  std::lock_guard lock(mu_);
  return out_.lines;
}

std::vector<std::string> Subprocess::StderrLines() const {
  std::lock_guard lock(mu_);
  return err_.lines;
}

void Subprocess::Signal(int signal) {
  if (!exit_code_) kill(pid_, signal);
}

void Subprocess::Kill() {
  if (exit_code_) return;
  kill(pid_, SIGKILL);
  int status = 0;
  while (waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
  }
  exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

bool Subprocess::running() {
  if (exit_code_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

std::optional<int> Subprocess::Wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!WaitFor([this] { return !running(); }, timeout)) return std::nullopt;
  // The child exited; its last lines may still be in the pipe: wait for the reader to see EOF
  // (a grandchild holding the pipe open could delay that, hence the bound).
  std::unique_lock lock(mu_);
  cv_.wait_until(lock, deadline + std::chrono::seconds(5), [this] { return out_.closed; });
  return exit_code_;
}

std::optional<int> ParseListeningPort(const std::string& line) {
  const std::string key = "listening on ";
  const size_t at = line.find(key);
  if (at == std::string::npos) return std::nullopt;
  const size_t colon = line.rfind(':');
  if (colon == std::string::npos || colon < at) return std::nullopt;
  try {
    const int port = std::stoi(line.substr(colon + 1));
    if (port > 0 && port < 65536) return port;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

std::optional<int> ReadPortFile(const std::string& path, std::chrono::milliseconds timeout) {
  std::optional<int> port;
  WaitFor(
      [&] {
        std::ifstream in(path);
        int p = 0;
        if (in >> p && p > 0 && p < 65536) port = p;
        return port.has_value();
      },
      timeout);
  return port;
}

std::optional<long> ResidentKiB(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("VmRSS:")) {
      std::istringstream s(line.substr(6));
      long kib = 0;
      if (s >> kib) return kib;
    }
  }
  return std::nullopt;
}

}  // namespace nodelink::process

#include "process/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "process/wait_for.h"

extern char** environ;

namespace nodelink::process {

std::unique_ptr<Subprocess> Subprocess::Start(const std::vector<std::string>& argv,
                                              const std::vector<std::string>& extra_env) {
  if (argv.empty()) return nullptr;
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) {
    std::perror("Subprocess: pipe2");
    return nullptr;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::vector<std::string> env_storage;
  for (char** e = environ; *e != nullptr; ++e) env_storage.emplace_back(*e);
  for (const std::string& e : extra_env) env_storage.push_back(e);
  std::vector<char*> env;
  for (std::string& e : env_storage) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), env.data());
  posix_spawn_file_actions_destroy(&actions);
  close(pipe_fds[1]);
  if (rc != 0) {
    std::fprintf(stderr, "Subprocess: cannot start %s: %s\n", argv[0].c_str(), std::strerror(rc));
    close(pipe_fds[0]);
    return nullptr;
  }
  return std::unique_ptr<Subprocess>(new Subprocess(pid, pipe_fds[0]));
}

Subprocess::Subprocess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {
  reader_ = std::thread([this] { ReadStdout(); });
}

Subprocess::~Subprocess() {
  Kill();
  if (reader_.joinable()) reader_.join();  // stdout closes when the child is gone
  close(stdout_fd_);
}

void Subprocess::ReadStdout() {
  std::string partial;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(stdout_fd_, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, static_cast<size_t>(n));
    size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      std::lock_guard lock(mu_);
      lines_.push_back(partial.substr(0, nl));
      partial.erase(0, nl + 1);
      cv_.notify_all();
    }
  }
  std::lock_guard lock(mu_);
  if (!partial.empty()) lines_.push_back(partial);
  stdout_closed_ = true;
  cv_.notify_all();
}

std::optional<std::string> Subprocess::WaitForLine(const std::string& needle,
                                                   std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  std::optional<std::string> found;
  cv_.wait_for(lock, timeout, [&] {
    for (const std::string& l : lines_) {
      if (l.find(needle) != std::string::npos) {
        found = l;
        return true;
      }
    }
    return stdout_closed_;
  });
  return found;
}

std::vector<std::string> Subprocess::Lines() const {
  std::lock_guard lock(mu_);
  return lines_;
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
  cv_.wait_until(lock, deadline + std::chrono::seconds(5), [this] { return stdout_closed_; });
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

// A TCP relay on 127.0.0.1:0 in front of another local port, for tests that cut the network
// between a participant and the hub: Cut() drops every connection at once (both ends see a reset
// or EOF, as when a link goes down) and refuses new ones until Restore(). Bytes pass through
// untouched, so TLS runs end to end through it.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace nodelink::process {

class TcpProxy {
 public:
  // nullptr if it cannot listen.
  static std::unique_ptr<TcpProxy> Start(int target_port);
  ~TcpProxy();

  int port() const { return port_; }
  void Cut();
  void Restore();
  // Connections accepted and relayed so far (refused ones while cut are not counted).
  size_t connections() const { return connections_.load(); }
  // Connection attempts refused while cut.
  size_t refused() const { return refused_.load(); }

 private:
  TcpProxy(int listen_fd, int port, int target_port);
  void AcceptLoop();
  void Pump(int client, int server);

  const int listen_fd_;
  const int port_;
  const int target_port_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cut_{false};
  std::atomic<size_t> connections_{0};
  std::atomic<size_t> refused_{0};
  std::mutex mu_;
  std::set<int> open_fds_;  // guarded by mu_: both ends of every live connection
  std::vector<std::thread> pumps_;
  std::thread acceptor_;
};

}  // namespace nodelink::process

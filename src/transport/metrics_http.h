// A tiny HTTP responder for the Prometheus endpoint: one thread, one connection at a time,
// `GET /metrics` (or `/`) answered with text format 0.0.4, anything else 404. Enough for a
// scraper on a separate, by default loopback, address; not a general web server.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace nodelink::transport {

class MetricsHttpServer {
 public:
  // Binds `listen_address` ("host:port", IPv4 or [IPv6]; port 0 picks one) and starts the thread.
  // `render` is called on that thread for each scrape. Errors: bad address, bind failure.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      const std::string& listen_address, std::function<std::string()> render);
  ~MetricsHttpServer();  // Stop()

  int port() const { return port_; }
  void Stop();  // idempotent

 private:
  MetricsHttpServer(int listen_fd, int wake_fd, int port, std::function<std::string()> render);
  void Run();
  void Serve(int fd);

  int listen_fd_;
  int wake_fd_;  // eventfd: Stop() wakes the poll
  int port_;
  std::function<std::string()> render_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace nodelink::transport

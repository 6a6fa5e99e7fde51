// The replies a responder sent, kept per (peer, request_id) so that a repeated request is answered
// from the record instead of running its handler again (PROTOCOL.md section 6, last paragraph:
// after a real loss of state recovery is at-least-once; also section 6's inbox replay after a
// crash). Retention: queue time to live + 2 x max skew.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nodelink/v1/inner.pb.h"

namespace nodelink::router {

// Implementations must be thread-safe: the router calls them from several workers at once.
class AnsweredLog {
 public:
  virtual ~AnsweredLog() = default;

  // The reply recorded for (peer, request_id) if it has not expired at `now_ms`, or nullopt.
  // An error (a store failure) makes the router run the handler again (at-least-once).
  [[nodiscard]] virtual absl::StatusOr<std::optional<v1::Inner>> Find(const std::string& peer,
                                                                      const std::string& request_id,
                                                                      uint64_t now_ms) = 0;

  // Records `reply` (with its request_id set) as the answer to (peer, request_id), kept until
  // `expires_ms`. A second record for the same key replaces the first.
  [[nodiscard]] virtual absl::Status Record(const std::string& peer, const std::string& request_id,
                                            const v1::Inner& reply, uint64_t expires_ms) = 0;

  // Drops the records that expired at or before `now_ms` (the router calls it from Sweep()).
  virtual void Expire(uint64_t now_ms) = 0;
};

// In-memory AnsweredLog: lost on restart (the lead backs the interface with the store's
// `answered` table for the node). Thread-safe.
class InMemoryAnsweredLog final : public AnsweredLog {
 public:
  absl::StatusOr<std::optional<v1::Inner>> Find(const std::string& peer,
                                                const std::string& request_id,
                                                uint64_t now_ms) override;
  absl::Status Record(const std::string& peer, const std::string& request_id,
                      const v1::Inner& reply, uint64_t expires_ms) override;
  void Expire(uint64_t now_ms) override;

  size_t size() const;

 private:
  struct Entry {
    v1::Inner reply;
    uint64_t expires_ms;
  };
  mutable std::mutex mu_;
  std::map<std::pair<std::string, std::string>, Entry> records_;
};

}  // namespace nodelink::router

// A QueueStore in memory: NOT durable (a restart loses every queued envelope and the dedup
// record). For measuring what durability costs and for development (`nodelink-hub --queue
// memory`); its semantics otherwise match the SQLite store, and the same tests run on both.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>

#include "transport/queue_store.h"

namespace nodelink::transport {

class MemoryQueueStore final : public QueueStore {
 public:
  MemoryQueueStore() = default;

  absl::StatusOr<std::vector<AppendResult>> Commit(std::span<const AppendRequest> appends,
                                                   std::span<const uint64_t> deletes,
                                                   const QueueBounds& bounds,
                                                   const BeforeCommit& before_commit = {}) override;
  absl::StatusOr<std::vector<QueuedItem>> Fetch(std::string_view recipient, uint64_t after_id,
                                                size_t max_items, uint64_t max_bytes) override;
  absl::StatusOr<ExpireResult> Expire(uint64_t now_ms, uint64_t dedup_window_ms,
                                      uint64_t notice_ttl_ms,
                                      const NoticeBodyBuilder& notice_body) override;
  absl::StatusOr<bool> IsDuplicate(std::string_view sender, std::string_view message_id) override;
  QueueTotals Totals() const override { return totals_; }

 private:
  struct Usage {
    uint64_t count = 0;
    uint64_t bytes = 0;
  };
  void Insert(QueuedItem item);
  void Erase(uint64_t id);

  uint64_t next_id_ = 1;
  std::map<uint64_t, QueuedItem> items_;                                      // by id
  std::unordered_map<std::string, std::map<uint64_t, size_t>> by_recipient_;  // id -> body size
  std::unordered_map<std::string, Usage> usage_;                              // envelopes only
  std::map<std::pair<std::string, std::string>, uint64_t> dedup_;             // -> seen_at_ms
  QueueTotals totals_;
};

}  // namespace nodelink::transport

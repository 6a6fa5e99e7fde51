#include "transport/memory_queue_store.h"

#include <utility>

namespace nodelink::transport {

void MemoryQueueStore::Insert(QueuedItem item) {
  const size_t size = item.body.size();
  item.id = next_id_++;
  by_recipient_[item.recipient][item.id] = size;
  if (item.kind == QueuedKind::kEnvelope) {
    Usage& u = usage_[item.recipient];
    ++u.count;
    u.bytes += size;
  }
  ++totals_.items;
  totals_.bytes += size;
  const uint64_t id = item.id;
  items_.emplace(id, std::move(item));
}

void MemoryQueueStore::Erase(uint64_t id) {
  auto it = items_.find(id);
  if (it == items_.end()) return;
  const QueuedItem& item = it->second;
  const size_t size = item.body.size();
  auto r = by_recipient_.find(item.recipient);
  if (r != by_recipient_.end()) {
    r->second.erase(id);
    if (r->second.empty()) by_recipient_.erase(r);
  }
  if (item.kind == QueuedKind::kEnvelope) {
    auto u = usage_.find(item.recipient);
    if (u != usage_.end()) {
      --u->second.count;
      u->second.bytes -= size;
      if (u->second.count == 0) usage_.erase(u);
    }
  }
  --totals_.items;
  totals_.bytes -= size;
  items_.erase(it);
}

absl::StatusOr<std::vector<AppendResult>> MemoryQueueStore::Commit(
    std::span<const AppendRequest> appends, std::span<const uint64_t> deletes,
    const QueueBounds& bounds, const BeforeCommit& before_commit) {
  std::vector<AppendResult> results;
  results.reserve(appends.size());
  for (uint64_t id : deletes) Erase(id);  // first: what they free counts for the appends' bounds
  for (const AppendRequest& a : appends) {
    auto key = std::make_pair(a.sender, a.message_id);
    if (dedup_.contains(key)) {
      results.push_back({AppendOutcome::kDuplicate, 0});
      continue;
    }
    const Usage& u = usage_[a.recipient];
    if (bounds.Exceeded(u.count + 1, u.bytes + a.body.size())) {
      results.push_back({AppendOutcome::kQueueFull, 0});
      continue;
    }
    dedup_[key] = a.now_ms;
    Insert(QueuedItem{0, QueuedKind::kEnvelope, a.recipient, a.sender, a.message_id, a.now_ms,
                      a.expires_at_ms, a.body});
    results.push_back({AppendOutcome::kQueued, next_id_ - 1});
  }
  if (before_commit) before_commit(results);  // nothing left to fail: ids are never reused
  return results;
}

absl::StatusOr<std::vector<QueuedItem>> MemoryQueueStore::Fetch(std::string_view recipient,
                                                                uint64_t after_id, size_t max_items,
                                                                uint64_t max_bytes) {
  std::vector<QueuedItem> out;
  auto r = by_recipient_.find(std::string(recipient));
  if (r == by_recipient_.end()) return out;
  uint64_t bytes = 0;
  for (auto it = r->second.upper_bound(after_id); it != r->second.end(); ++it) {
    if (out.size() >= max_items) break;
    if (!out.empty() && bytes + it->second > max_bytes) break;
    bytes += it->second;
    out.push_back(items_.at(it->first));
  }
  return out;
}

absl::StatusOr<ExpireResult> MemoryQueueStore::Expire(uint64_t now_ms, uint64_t dedup_window_ms,
                                                      uint64_t notice_ttl_ms,
                                                      const NoticeBodyBuilder& notice_body) {
  ExpireResult result;
  std::vector<uint64_t> expired;
  for (const auto& [id, item] : items_) {
    if (item.expires_at_ms <= now_ms) expired.push_back(id);
  }
  for (uint64_t id : expired) {
    QueuedItem item = items_.at(id);
    Erase(id);
    if (item.kind == QueuedKind::kExpiredNotice) {
      ++result.dropped_notices;
      continue;
    }
    ++result.expired_envelopes;
    QueuedItem notice{
        0,      QueuedKind::kExpiredNotice, item.sender,      item.recipient, item.message_id,
        now_ms, now_ms + notice_ttl_ms,     notice_body(item)};
    Insert(notice);
    notice.id = next_id_ - 1;
    result.notices.push_back(std::move(notice));
  }
  const uint64_t horizon = now_ms > dedup_window_ms ? now_ms - dedup_window_ms : 0;
  for (auto it = dedup_.begin(); it != dedup_.end();) {
    if (it->second < horizon) {
      it = dedup_.erase(it);
      ++result.forgotten_dedup;
    } else {
      ++it;
    }
  }
  return result;
}

absl::StatusOr<bool> MemoryQueueStore::IsDuplicate(std::string_view sender,
                                                   std::string_view message_id) {
  return dedup_.contains(std::make_pair(std::string(sender), std::string(message_id)));
}

}  // namespace nodelink::transport

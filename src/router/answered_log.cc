#include "router/answered_log.h"

namespace nodelink::router {

absl::StatusOr<std::optional<v1::Inner>> InMemoryAnsweredLog::Find(const std::string& peer,
                                                                   const std::string& request_id,
                                                                   uint64_t now_ms) {
  std::lock_guard lock(mu_);
  auto it = records_.find({peer, request_id});
  if (it == records_.end() || it->second.expires_ms <= now_ms) return std::nullopt;
  return it->second.reply;
}

absl::Status InMemoryAnsweredLog::Record(const std::string& peer, const std::string& request_id,
                                         const v1::Inner& reply, uint64_t expires_ms) {
  std::lock_guard lock(mu_);
  records_.insert_or_assign({peer, request_id}, Entry{reply, expires_ms});
  return absl::OkStatus();
}

void InMemoryAnsweredLog::Expire(uint64_t now_ms) {
  std::lock_guard lock(mu_);
  for (auto it = records_.begin(); it != records_.end();) {
    it = it->second.expires_ms <= now_ms ? records_.erase(it) : std::next(it);
  }
}

size_t InMemoryAnsweredLog::size() const {
  std::lock_guard lock(mu_);
  return records_.size();
}

}  // namespace nodelink::router

// A QueueStore that hands every call to another one; a test overrides what it changes.
#pragma once

#include <memory>
#include <utility>

#include "transport/queue_store.h"

namespace nodelink::transport::testing {

class WrappedStore : public QueueStore {
 public:
  explicit WrappedStore(std::unique_ptr<QueueStore> inner) : inner_(std::move(inner)) {}
  absl::StatusOr<std::vector<AppendResult>> Commit(std::span<const AppendRequest> appends,
                                                   std::span<const uint64_t> deletes,
                                                   const QueueBounds& bounds,
                                                   const BeforeCommit& before_commit) override {
    return inner_->Commit(appends, deletes, bounds, before_commit);
  }
  absl::StatusOr<std::vector<QueuedItem>> Fetch(std::string_view r, uint64_t after, size_t n,
                                                uint64_t bytes) override {
    return inner_->Fetch(r, after, n, bytes);
  }
  absl::StatusOr<ExpireResult> Expire(uint64_t now, uint64_t window, uint64_t ttl,
                                      const NoticeBodyBuilder& body) override {
    return inner_->Expire(now, window, ttl, body);
  }
  absl::StatusOr<bool> IsDuplicate(std::string_view s, std::string_view id) override {
    return inner_->IsDuplicate(s, id);
  }
  QueueTotals Totals() const override { return inner_->Totals(); }
  void Maintain() override { inner_->Maintain(); }
  QueueStore& inner() { return *inner_; }

 private:
  std::unique_ptr<QueueStore> inner_;
};

}  // namespace nodelink::transport::testing

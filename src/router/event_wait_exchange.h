// EventWaitExchange: a thread-safe rendezvous keyed by id, so that no worker ever blocks waiting
// for data another thread will post (DESIGN.md, "The life of a message", last paragraph). One side
// posts `(id, value)`, before or after the other side waits; the waiting side gets a callback (or
// a future) once every id it asked for arrived, or its deadline passed, or it was cancelled.
//
// Uses: the router matches replies to pending requests with it (a reply counts only from the peer
// the request went to, PROTOCOL.md section 8: WaitOptions::from); the secagg module posts
// "context started" events on one and holds early key and share requests on it (section 8, held
// requests) through HandlerContext::Defer.
//
// Time comes from an injected core::Clock. Deadlines and value expiry are enforced by Sweep(),
// which a background timer calls when ExchangeOptions::sweep_interval_ms > 0 (production) and
// which tests call directly after advancing a ManualClock. Expiry never depends on new posts.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "router/periodic_timer.h"

namespace nodelink::router {

// How a wait ended.
enum class WaitEnd {
  kAllArrived,  // every id arrived
  kExpired,     // the deadline passed first; `values` holds the ids that did arrive
  kCancelled,   // Cancel-all (for example the router stopping); `values` as for kExpired
};
std::string_view WaitEndName(WaitEnd end);

template <class V>
struct WaitResult {
  WaitEnd end = WaitEnd::kCancelled;
  std::map<std::string, V> values;  // the ids that arrived, with their values
  bool all_arrived() const { return end == WaitEnd::kAllArrived; }
};

// What Post did with a value.
enum class PostResult {
  kStored,       // nobody waits for it yet: kept until a wait takes it or it expires
  kTaken,        // at least one wait took it
  kWrongSource,  // every wait on this id expects another source: ignored, not stored, counted
  kNotAwaited,   // PostOptions::only_if_awaited and nobody waits: not stored
};
std::string_view PostResultName(PostResult result);

struct ExchangeOptions {
  // How long a posted value is kept for waits that have not started yet (from its post).
  uint64_t value_ttl_ms = 10 * 60 * 1000;
  // false: a value is removed once a wait that took it ended (all arrived, expired or cancelled),
  //        so each post is consumed once (reply matching);
  // true:  it stays until it expires, and every later wait sees it (events such as "context
  //        started", which many held requests wait for).
  bool keep_after_delivery = false;
  // > 0: a background thread calls Sweep() at this interval. 0: the owner calls Sweep().
  uint64_t sweep_interval_ms = 0;
};

struct PostOptions {
  // Who posted (for replies: the peer that sent it). Checked against WaitOptions::from.
  std::string source = {};
  // Do not keep the value when no wait takes it (a reply nobody waits for is not stored).
  bool only_if_awaited = false;
};

struct WaitOptions {
  // When not empty, only values posted with this source count for this wait; others are ignored
  // and counted (PROTOCOL.md section 8: a reply counts only from the peer the request went to).
  std::string from = {};
};

struct ExchangeStats {
  size_t values = 0;  // stored values not yet expired or consumed
  size_t waits = 0;   // waits in progress
  uint64_t posts_wrong_source = 0;
  uint64_t values_expired = 0;
  uint64_t waits_completed = 0;
  uint64_t waits_expired = 0;
  uint64_t waits_cancelled = 0;
};

// Thread-safe. Callbacks run without the exchange's lock held, on the thread that completed the
// wait: inside Post (all ids arrived), inside WaitAsync (everything was already there, or the
// deadline had already passed), inside Sweep (deadline) or inside CancelAll. They may call back
// into the exchange. They should be short: the router's callbacks only queue work.
template <class V>
class EventWaitExchange {
 public:
  using Callback = std::function<void(WaitResult<V>)>;
  using WaitHandle = uint64_t;

  explicit EventWaitExchange(core::Clock& clock, ExchangeOptions options = {})
      : clock_(clock), options_(options) {
    if (options_.sweep_interval_ms > 0) {
      timer_ = std::make_unique<PeriodicTimer>(
          std::chrono::milliseconds(options_.sweep_interval_ms), [this] { Sweep(); });
    }
  }
  // Waits still in progress are dropped without a callback: call CancelAll() first to resolve
  // them.
  ~EventWaitExchange() { timer_.reset(); }

  EventWaitExchange(const EventWaitExchange&) = delete;
  EventWaitExchange& operator=(const EventWaitExchange&) = delete;

  // Posts `value` under `id`. Every wait in progress on `id` that accepts its source takes a copy;
  // unless consumed (see ExchangeOptions::keep_after_delivery) or only_if_awaited, it is also
  // stored for waits that start later, replacing an earlier value of that id, until it expires.
  PostResult Post(std::string id, V value, PostOptions options = {}) {
    std::vector<Ready> ready;
    PostResult result;
    {
      std::lock_guard lock(mu_);
      const uint64_t now = clock_.NowMs();
      bool any_wait = false;
      bool taken = false;
      std::vector<WaitHandle> completed;
      if (auto it = waiting_on_.find(id); it != waiting_on_.end()) {
        for (WaitHandle handle : it->second) {
          Waiter& waiter = waiters_.at(handle);
          any_wait = true;
          if (!waiter.from.empty() && waiter.from != options.source) continue;
          taken = true;
          waiter.got.insert_or_assign(id, value);
          if (waiter.got.size() == waiter.ids.size()) completed.push_back(handle);
        }
      }
      if (any_wait && !taken) {
        ++stats_.posts_wrong_source;
        return PostResult::kWrongSource;
      }
      for (WaitHandle handle : completed)
        ready.push_back(FinishLocked(handle, WaitEnd::kAllArrived));
      const bool consumed = !completed.empty() && !options_.keep_after_delivery;
      if (options.only_if_awaited) {
        result = taken ? PostResult::kTaken : PostResult::kNotAwaited;
      } else if (consumed) {
        result = PostResult::kTaken;
      } else {
        entries_.insert_or_assign(
            std::move(id), Entry{std::move(value), options.source, now + options_.value_ttl_ms});
        result = taken ? PostResult::kTaken : PostResult::kStored;
      }
    }
    RunCallbacks(ready);
    return result;
  }

  // Waits for every id of `ids` (duplicates count once). `done` runs exactly once, unless the
  // wait is removed with Cancel(handle): with kAllArrived as soon as the last id is posted (or at
  // once if all are stored already), with kExpired from the first Sweep() at or after
  // `deadline_ms` (or at once if it has passed), with kCancelled from CancelAll(). An empty `ids`
  // completes at once.
  WaitHandle WaitAsync(std::vector<std::string> ids, uint64_t deadline_ms, Callback done,
                       WaitOptions options = {}) {
    std::sort(ids.begin(), ids.end());
    ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
    std::vector<Ready> ready;
    WaitHandle handle;
    {
      std::lock_guard lock(mu_);
      handle = next_handle_++;
      const uint64_t now = clock_.NowMs();
      Waiter waiter{std::move(ids), std::move(options.from), deadline_ms, std::move(done), {}};
      for (const std::string& id : waiter.ids) {
        auto it = entries_.find(id);
        if (it == entries_.end() || it->second.expires_ms <= now) continue;
        if (!waiter.from.empty() && it->second.source != waiter.from) {
          ++stats_.posts_wrong_source;
          continue;
        }
        waiter.got.emplace(id, it->second.value);
      }
      const bool all = waiter.got.size() == waiter.ids.size();
      for (const std::string& id : waiter.ids) waiting_on_[id].insert(handle);
      waiters_.emplace(handle, std::move(waiter));
      if (all) {
        ready.push_back(FinishLocked(handle, WaitEnd::kAllArrived));
      } else if (deadline_ms <= now) {
        ready.push_back(FinishLocked(handle, WaitEnd::kExpired));
      }
    }
    RunCallbacks(ready);
    return handle;
  }

  // Blocking form: waits on the calling thread. Returns at the deadline only if someone sweeps
  // (the exchange's own timer or its owner). Never call it on a router worker.
  WaitResult<V> Wait(std::vector<std::string> ids, uint64_t deadline_ms, WaitOptions options = {}) {
    auto promise = std::make_shared<std::promise<WaitResult<V>>>();
    std::future<WaitResult<V>> future = promise->get_future();
    WaitAsync(
        std::move(ids), deadline_ms,
        [promise](WaitResult<V> result) { promise->set_value(std::move(result)); },
        std::move(options));
    return future.get();
  }

  // Removes a wait without running its callback. Returns false if it had already ended (its
  // callback ran or is running). Values it had taken stay stored.
  bool Cancel(WaitHandle handle) {
    std::lock_guard lock(mu_);
    auto it = waiters_.find(handle);
    if (it == waiters_.end()) return false;
    UnindexLocked(handle, it->second);
    waiters_.erase(it);
    return true;
  }

  // Ends every wait in progress with kCancelled. Returns how many.
  size_t CancelAll() {
    std::vector<Ready> ready;
    {
      std::lock_guard lock(mu_);
      std::vector<WaitHandle> handles;
      handles.reserve(waiters_.size());
      for (const auto& [handle, waiter] : waiters_) handles.push_back(handle);
      for (WaitHandle handle : handles) ready.push_back(FinishLocked(handle, WaitEnd::kCancelled));
    }
    RunCallbacks(ready);
    return ready.size();
  }

  // Drops values whose time to live passed and ends waits whose deadline passed (kExpired).
  void Sweep() {
    std::vector<Ready> ready;
    {
      std::lock_guard lock(mu_);
      const uint64_t now = clock_.NowMs();
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (it->second.expires_ms <= now) {
          it = entries_.erase(it);
          ++stats_.values_expired;
        } else {
          ++it;
        }
      }
      std::vector<WaitHandle> expired;
      for (const auto& [handle, waiter] : waiters_) {
        if (waiter.deadline_ms <= now) expired.push_back(handle);
      }
      for (WaitHandle handle : expired) ready.push_back(FinishLocked(handle, WaitEnd::kExpired));
    }
    RunCallbacks(ready);
  }

  // Whether a value is stored under `id` (and not expired).
  bool Has(const std::string& id) const {
    std::lock_guard lock(mu_);
    auto it = entries_.find(id);
    return it != entries_.end() && it->second.expires_ms > clock_.NowMs();
  }

  ExchangeStats Stats() const {
    std::lock_guard lock(mu_);
    ExchangeStats stats = stats_;
    stats.values = entries_.size();
    stats.waits = waiters_.size();
    return stats;
  }

 private:
  struct Entry {
    V value;
    std::string source;
    uint64_t expires_ms;
  };
  struct Waiter {
    std::vector<std::string> ids;  // sorted, distinct
    std::string from;
    uint64_t deadline_ms;
    Callback done;
    std::map<std::string, V> got;
  };
  struct Ready {
    Callback done;
    WaitResult<V> result;
  };

  void UnindexLocked(WaitHandle handle, const Waiter& waiter) {
    for (const std::string& id : waiter.ids) {
      auto it = waiting_on_.find(id);
      if (it == waiting_on_.end()) continue;
      it->second.erase(handle);
      if (it->second.empty()) waiting_on_.erase(it);
    }
  }

  // Removes the wait and returns its callback with its result. Values it took are removed from
  // the store unless kept after delivery.
  Ready FinishLocked(WaitHandle handle, WaitEnd end) {
    auto it = waiters_.find(handle);
    Waiter waiter = std::move(it->second);
    waiters_.erase(it);
    UnindexLocked(handle, waiter);
    if (!options_.keep_after_delivery) {
      for (const auto& [id, value] : waiter.got) entries_.erase(id);
    }
    switch (end) {
      case WaitEnd::kAllArrived:
        ++stats_.waits_completed;
        break;
      case WaitEnd::kExpired:
        ++stats_.waits_expired;
        break;
      case WaitEnd::kCancelled:
        ++stats_.waits_cancelled;
        break;
    }
    return Ready{std::move(waiter.done), WaitResult<V>{end, std::move(waiter.got)}};
  }

  static void RunCallbacks(std::vector<Ready>& ready) {
    for (Ready& r : ready) {
      if (r.done) r.done(std::move(r.result));
    }
  }

  core::Clock& clock_;
  const ExchangeOptions options_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
  std::unordered_map<WaitHandle, Waiter> waiters_;
  std::unordered_map<std::string, std::unordered_set<WaitHandle>> waiting_on_;
  WaitHandle next_handle_ = 1;
  ExchangeStats stats_;
  std::unique_ptr<PeriodicTimer> timer_;  // last: stopped before the rest is destroyed
};

}  // namespace nodelink::router

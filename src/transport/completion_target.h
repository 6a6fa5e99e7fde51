// The hub serves its calls, Connect streams (hub_stream.h) and health checks (hub_health.h), on
// one gRPC completion queue drained by one thread (nl-hub-cq, hub_server.cc). Not the callback
// API: its two "nexting" threads took the streams' reads as pollers and handed them on, 14 thread
// runs per round trip; without them the hub uses 77-195 us less CPU per round trip
// (bench/RESULTS.md, sixteenth session).
//
// Each call is a CompletionTarget and tags its operations with CompletionTag members: a tag's
// address says which operation completed. With a single thread, a call's completions never run
// at the same time, so a call may delete itself in one once nothing it started is outstanding.
// Operations may start under a call's locks: their tags never complete inside the call that starts
// them.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <mutex>

namespace nodelink::transport {

class CompletionTarget;

struct CompletionTag {
  CompletionTarget* target;
};

class CompletionTarget {
 public:
  virtual void Complete(CompletionTag* tag, bool ok) = 0;

  // What the queue's thread does with each (tag, ok) that Next() returns.
  static void Dispatch(void* tag, bool ok) {
    auto* t = static_cast<CompletionTag*>(tag);
    t->target->Complete(t, ok);
  }

 protected:
  ~CompletionTarget() = default;
};

// The calls alive on the queue. The queue may shut down only once the last one is deleted: the
// server's shutdown can return while completions are still queued, and handling them starts
// operations (Finish), which a shut-down queue refuses by aborting the process.
class CallCount {
 public:
  // Before asking gRPC for a call; false once CloseAndWait() has begun (ask for none then).
  bool Add() {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    ++n_;
    return true;
  }
  // After the call's object is deleted.
  void Remove() {
    std::lock_guard lock(mu_);
    if (--n_ == 0) cv_.notify_all();
  }
  // No new call from now on; returns once every call is deleted (the queue's thread runs on).
  void CloseAndWait() {
    std::unique_lock lock(mu_);
    closed_ = true;
    cv_.wait(lock, [this] { return n_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  size_t n_ = 0;
  bool closed_ = false;
};

}  // namespace nodelink::transport

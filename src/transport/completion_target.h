// The hub serves its calls, Connect streams (hub_stream.h) and health checks (hub_health.h), on
// one gRPC completion queue drained by one thread (nl-hub-cq, hub_server.cc). Not the callback
// API: its "nexting" threads handed the poller to each other on most completions, 14 thread runs
// and ~100 us of the hub's CPU per round trip (bench/RESULTS.md, sixteenth session).
//
// Each call is a CompletionTarget and tags its operations with CompletionTag members: a tag's
// address says which operation completed. With a single thread, a call's completions never run
// at the same time, so a call may delete itself in one once nothing it started is outstanding.
// Operations may start under a call's locks: their tags never complete inside the call that starts
// them.
#pragma once

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

}  // namespace nodelink::transport

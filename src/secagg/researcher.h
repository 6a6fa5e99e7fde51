// The researcher's side of secure aggregation (PROTOCOL.md section 8): asks every party to run a
// setup for one fresh context, reports each party's answer as it comes, and for ADDITIVE_SHARING
// adds the parties' replies into the sum. It learns the sum over the parties, never one input.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "router/router.h"
#include "secagg/ring.h"

namespace nodelink::secagg {

struct PartyAnswer {
  std::string party;
  bool ok = false;
  std::string detail;  // the failure, for people
  size_t answered = 0;  // parties done so far, this one included
  size_t total = 0;
};

struct AggregationOptions {
  std::vector<std::string> parties;  // any order; sorted and de-duplicated here
  v1::Scheme scheme = v1::ADDITIVE_SHARING;
  uint32_t modulus_bits = 64;        // ADDITIVE_SHARING
  uint32_t element_count = 1;        // ADDITIVE_SHARING
  uint64_t timeout_ms = 30'000;
  std::string context_id;            // empty: a fresh random id
  std::function<void(const PartyAnswer&)> on_answer;  // progress; called from router threads
};

struct AggregationResult {
  std::string context_id;
  std::vector<std::string> parties;         // as sent, ascending
  std::optional<RingVector> sum;            // ADDITIVE_SHARING, only when every party answered
  std::map<std::string, std::string> failed;  // party -> why (timeout, ErrorReply code: detail)
  std::map<std::string, Bytes> replies;       // ADDITIVE_SHARING: each party's reply elements
  uint64_t elapsed_ms = 0;
  bool ok() const { return failed.empty(); }
};

// Runs one context to its end (every party answered, or the timeout passed) and blocks the
// calling thread meanwhile: call it from an application thread, never from a router handler.
// InvalidArgument for bad options (ids, fewer than 2 parties, modulus). A party that fails or
// stays silent is named in `failed`; the sum is then absent (never a partial sum).
absl::StatusOr<AggregationResult> RunAggregation(router::Router& router, core::Clock& clock,
                                                 const AggregationOptions& options);

}  // namespace nodelink::secagg

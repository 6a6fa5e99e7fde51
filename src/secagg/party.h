// A party's side of secure aggregation (PROTOCOL.md section 8), as router handlers:
// SecaggSetupRequest from a researcher starts a context (PAIRWISE_KEYS or ADDITIVE_SHARING) and
// pulls keys or shares from the co-parties; KeyRequest and AdditiveSharingRequest from co-parties
// are served from the context, or held (without a worker) until the context starts.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/ec.h"
#include "keys/context_store.h"
#include "router/event_wait_exchange.h"
#include "router/handler.h"
#include "router/router.h"
#include "secagg/additive.h"
#include "secagg/params.h"

namespace nodelink::secagg {

// What a context is, for an input provider and for operators.
struct ContextInfo {
  std::string researcher;
  std::string context_id;
  v1::Scheme scheme = v1::SCHEME_UNSPECIFIED;
  uint32_t modulus_bits = 0;
  uint32_t element_count = 0;
  std::vector<std::string> parties;
};

// The party's secret input for an ADDITIVE_SHARING context: `element_count` decimal integers.
// Called on a router worker; must not block for long. An error refuses the context.
using InputProvider = std::function<absl::StatusOr<std::vector<std::string>>(const ContextInfo&)>;

struct PartyOptions {
  PartyPolicy policy;                     // self, min_parties, researchers, co-parties
  core::SecretBytes input_digest_key;     // keys InputDigestOf (params.h); derive, never store
  uint64_t context_ttl_ms = 3'600'000;    // contexts expire (and stop serving) after this
  uint64_t peer_margin_ms = 1'000;        // pulls end this long before the researcher's deadline
};

struct PartyCounters {
  uint64_t contexts_started = 0;
  uint64_t contexts_refused = 0;
  uint64_t contexts_finished = 0;
  uint64_t contexts_failed = 0;
  uint64_t requests_served = 0;
  uint64_t requests_held = 0;
  uint64_t requests_refused = 0;
};

class SecaggParty {
 public:
  // `router`, `records` and `clock` must outlive the party. Call Register() before the router
  // starts. Contexts are recorded in the key store: a context is accepted at most once and an
  // input contributed to at most one context, across restarts.
  SecaggParty(PartyOptions options, router::Router& router, keys::ContextStore& records,
              core::Clock& clock, InputProvider input);
  ~SecaggParty();

  // Installs the handlers for SecaggSetupRequest, KeyRequest and AdditiveSharingRequest.
  void Register();
  // Forgets contexts past their time to live; a timer calls it (tests after moving the clock).
  void Sweep();
  // The hub's max_envelope_bytes, from its Welcome: bounds the vectors a context may ask for.
  void SetMaxEnvelopeBytes(uint64_t bytes);

  PartyCounters counters() const;

 private:
  struct Context;
  using Key = std::pair<std::string, std::string>;  // (researcher, context id)

  absl::Status OnSetupRequest(router::HandlerContext& ctx);
  absl::Status OnPeerRequest(router::HandlerContext& ctx);
  absl::Status ServePeer(router::HandlerContext& ctx, const Key& key);
  absl::Status FinishSetup(router::HandlerContext& ctx, const Key& key);
  void OnPeerAnswer(const Key& key, const std::string& peer, const router::RequestOutcome& outcome);
  std::shared_ptr<Context> Lookup(const Key& key);
  absl::Status Refuse(router::HandlerContext& ctx, std::string_view code,
                      const std::string& detail);
  absl::Status RefuseContext(router::HandlerContext& ctx, const Key& key, std::string_view code,
                             const std::string& detail);
  static std::string EventId(const Key& key);

  PartyOptions options_;
  router::Router& router_;
  keys::ContextStore& records_;
  core::Clock& clock_;
  InputProvider input_;
  // "context started" (true) or "context refused" (false), kept for every later wait: held
  // requests wait on it.
  router::EventWaitExchange<bool> started_;
  // "every co-party answered" for a setup in progress.
  router::EventWaitExchange<bool> pulled_;

  mutable std::mutex mu_;
  std::map<Key, std::shared_ptr<Context>> contexts_;
  PartyCounters counters_;
};

}  // namespace nodelink::secagg

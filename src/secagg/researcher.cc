#include "secagg/researcher.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "core/encoding.h"
#include "core/random.h"
#include "messages/names.h"

namespace nodelink::secagg {

absl::StatusOr<AggregationResult> RunAggregation(router::Router& router, core::Clock& clock,
                                                 const AggregationOptions& options) {
  std::vector<std::string> parties = options.parties;
  std::sort(parties.begin(), parties.end());
  parties.erase(std::unique(parties.begin(), parties.end()), parties.end());
  for (const std::string& p : parties) {
    if (!messages::IsValidName(p)) {
      return absl::InvalidArgumentError("\"" + p + "\" is not a valid node id");
    }
  }
  if (parties.size() < 2) return absl::InvalidArgumentError("secure aggregation needs 2+ parties");
  if (options.scheme == v1::ADDITIVE_SHARING &&
      (!IsValidModulusBits(options.modulus_bits) || options.element_count == 0)) {
    return absl::InvalidArgumentError(
        "modulus bits must be a multiple of 8 in 8..4096 and the vector at least one element");
  }
  std::string context_id = options.context_id.empty()
                               ? "ctx-" + core::ToHex(core::RandomBytes(8))
                               : options.context_id;
  if (!messages::IsValidName(context_id)) {
    return absl::InvalidArgumentError("\"" + context_id + "\" is not a valid context id");
  }

  v1::Inner request;
  v1::SecaggSetupRequest* setup = request.mutable_secagg_setup_request();
  setup->set_context_id(context_id);
  setup->set_scheme(options.scheme);
  for (const std::string& p : parties) setup->add_parties(p);
  if (options.scheme == v1::ADDITIVE_SHARING) {
    setup->set_modulus_bits(options.modulus_bits);
    setup->set_element_count(options.element_count);
  }

  struct Shared {
    std::mutex mu;
    std::condition_variable all_done;
    size_t answered = 0;
    AggregationResult result;
  };
  auto shared = std::make_shared<Shared>();
  shared->result.context_id = context_id;
  shared->result.parties = parties;
  if (options.scheme == v1::ADDITIVE_SHARING) {
    shared->result.sum = RingVector(options.modulus_bits, options.element_count);
  }
  const uint64_t start = clock.NowMs();
  const uint64_t deadline = start + options.timeout_ms;
  const size_t total = parties.size();
  for (const std::string& party : parties) {
    // Captures by value: a late callback must not reach into this stack frame.
    router.Request(party, request, deadline,
                   [shared, party, total, bits = options.modulus_bits,
                    count = options.element_count,
                    on_answer = options.on_answer](router::RequestOutcome outcome) {
      PartyAnswer answer{party, false, "", 0, total};
      {
        std::lock_guard lock(shared->mu);
        if (!outcome.ok()) {
          answer.detail = outcome.kind == router::RequestOutcome::Kind::kErrorReply
                              ? outcome.error_reply().code() + ": " + outcome.error_reply().detail()
                              : std::string(outcome.status.message());
        } else if (!outcome.reply.has_secagg_setup_reply()) {
          answer.detail = "answered with something other than a SecaggSetupReply";
        } else if (shared->result.sum) {
          auto part = RingVector::FromBytes(bits, count,
                                            AsBytes(outcome.reply.secagg_setup_reply().elements()));
          if (part.ok()) {
            shared->result.sum->AddInPlace(*part);
            shared->result.replies[party] = part->bytes();
            answer.ok = true;
          } else {
            answer.detail = "reply of the wrong size: " + std::string(part.status().message());
          }
        } else {
          answer.ok = true;
        }
        if (!answer.ok) shared->result.failed[party] = answer.detail;
        answer.answered = ++shared->answered;
      }
      if (on_answer) on_answer(answer);
      std::lock_guard lock(shared->mu);
      if (shared->answered == total) shared->all_done.notify_all();
    });
  }
  std::unique_lock lock(shared->mu);
  // The router resolves every request by its deadline (its sweep times them out), so this wait
  // ends; the extra bound only guards against a router that stopped sweeping.
  shared->all_done.wait_for(lock, std::chrono::milliseconds(options.timeout_ms + 10'000),
                            [&] { return shared->answered == total; });
  if (shared->answered < total) {
    return absl::DeadlineExceededError("the router did not resolve every request in time");
  }
  AggregationResult result = std::move(shared->result);
  if (!result.failed.empty()) result.sum.reset();  // never a partial sum
  result.elapsed_ms = clock.NowMs() - start;
  return result;
}

}  // namespace nodelink::secagg

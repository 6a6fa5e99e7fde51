#include "secagg/party.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>

#include "core/status.h"
#include "secagg/pairwise.h"

namespace nodelink::secagg {

// One context this party accepted (PROTOCOL.md section 8).
struct SecaggParty::Context {
  ContextInfo info;
  Bytes params_digest;
  uint64_t expires_ms = 0;
  std::vector<std::string> co_parties;  // parties other than this one
  // ADDITIVE_SHARING
  std::optional<AdditiveParty> additive;
  // PAIRWISE_KEYS: the context key (erased once every pair is derived) and its public point
  std::optional<core::EcPrivateKey> context_key;
  Bytes context_public;
  std::set<std::string> derived;
  // the pull in progress
  std::map<std::string, std::string> failures;  // party -> why
  size_t answered = 0;
};

namespace {

std::string JoinNames(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

SecaggParty::SecaggParty(PartyOptions options, router::Router& router,
                         keys::ContextStore& records,
                         core::Clock& clock, InputProvider input)
    : options_(std::move(options)),
      router_(router),
      records_(records),
      clock_(clock),
      input_(std::move(input)),
      started_(clock, router::ExchangeOptions{options_.context_ttl_ms, true, 0}),
      pulled_(clock, router::ExchangeOptions{options_.context_ttl_ms, false, 0}) {}

SecaggParty::~SecaggParty() {
  started_.CancelAll();
  pulled_.CancelAll();
}

std::string SecaggParty::EventId(const Key& key) { return key.first + "\n" + key.second; }

void SecaggParty::Register() {
  router_.SetHandler(v1::Inner::kSecaggSetupRequest,
                     [this](router::HandlerContext& ctx) { return OnSetupRequest(ctx); });
  router_.SetHandler(v1::Inner::kKeyRequest,
                     [this](router::HandlerContext& ctx) { return OnPeerRequest(ctx); });
  router_.SetHandler(v1::Inner::kAdditiveSharingRequest,
                     [this](router::HandlerContext& ctx) { return OnPeerRequest(ctx); });
}

void SecaggParty::SetMaxEnvelopeBytes(uint64_t bytes) {
  std::lock_guard lock(mu_);
  if (bytes > 0) options_.policy.max_envelope_bytes = bytes;
}

void SecaggParty::Sweep() {
  started_.Sweep();
  pulled_.Sweep();
  uint64_t now = clock_.NowMs();
  std::lock_guard lock(mu_);
  for (auto it = contexts_.begin(); it != contexts_.end();) {
    if (now >= it->second->expires_ms) {
      it = contexts_.erase(it);
    } else {
      ++it;
    }
  }
}

PartyCounters SecaggParty::counters() const {
  std::lock_guard lock(mu_);
  return counters_;
}

// Refuses a setup: recorded, so that the co-parties' requests for the context are refused too
// (those held now and those that come later), except when the requester is no researcher of
// ours (its contexts are not ours to record).
absl::Status SecaggParty::RefuseContext(router::HandlerContext& ctx, const Key& key,
                                        std::string_view code, const std::string& detail) {
  if (code != error_code::kNotAuthorized || options_.policy.is_researcher(key.first)) {
    const v1::SecaggSetupRequest& req = ctx.inner().secagg_setup_request();
    keys::SecaggContext record;
    record.researcher = key.first;
    record.context_id = key.second;
    record.scheme = req.scheme();
    record.state = keys::ContextState::kRefused;
    record.created_ms = record.updated_ms = clock_.NowMs();
    record.expires_ms = record.created_ms + options_.context_ttl_ms;
    record.params_digest = ParamsDigestOf(key.first, req);
    record.parties.assign(req.parties().begin(), req.parties().end());
    (void)records_.Put(record, nullptr);  // AlreadyExists for a reused context: keep the first
    started_.Post(EventId(key), false);
  }
  {
    std::lock_guard lock(mu_);
    counters_.contexts_refused += 1;
  }
  return Refuse(ctx, code, detail);
}

absl::Status SecaggParty::Refuse(router::HandlerContext& ctx, std::string_view code,
                                 const std::string& detail) {
  {
    std::lock_guard lock(mu_);
    counters_.requests_refused += 1;
  }
  spdlog::info("secagg: refused {} from {}: {}: {}",
               ctx.inner().has_secagg_setup_request() ? "setup" : "request", ctx.sender(), code,
               detail);
  return ctx.Reply(router::MakeErrorReply(code, detail));
}

// ---------------------------------------------------------------- setup (from the researcher)

absl::Status SecaggParty::OnSetupRequest(router::HandlerContext& ctx) {
  const v1::SecaggSetupRequest& req = ctx.inner().secagg_setup_request();
  const std::string& researcher = ctx.sender();
  const Key key{researcher, req.context_id()};
  const uint64_t now = clock_.NowMs();

  PartyPolicy policy;
  {
    std::lock_guard lock(mu_);
    policy = options_.policy;
  }
  if (auto refusal = CheckSetupRequest(req, researcher, policy)) {
    return RefuseContext(ctx, key, refusal->code, refusal->detail);
  }
  // A party accepts each context at most once.
  {
    std::lock_guard lock(mu_);
    if (contexts_.count(key) != 0) {
      return ctx.Reply(router::MakeErrorReply(error_code::kNotAuthorized,
                                  "context " + req.context_id() + " was already used; a rerun "
                                  "needs a new context id"));
    }
  }
  auto existing = records_.Get(researcher, req.context_id());
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) {
    return Refuse(ctx, error_code::kNotAuthorized,
                  "context " + req.context_id() + " was already used; a rerun needs a new "
                  "context id");
  }

  auto context = std::make_shared<Context>();
  context->info = ContextInfo{researcher, req.context_id(), req.scheme(), req.modulus_bits(),
                              req.element_count(),
                              std::vector<std::string>(req.parties().begin(), req.parties().end())};
  context->params_digest = ParamsDigestOf(researcher, req);
  context->expires_ms = now + options_.context_ttl_ms;
  for (const std::string& p : context->info.parties) {
    if (p != options_.policy.self) context->co_parties.push_back(p);
  }

  keys::SecaggContext record;
  record.researcher = researcher;
  record.context_id = req.context_id();
  record.scheme = req.scheme();
  record.state = keys::ContextState::kStarted;
  record.created_ms = record.updated_ms = now;
  record.expires_ms = context->expires_ms;
  record.params_digest = context->params_digest;
  record.parties = context->info.parties;
  if (req.scheme() == v1::ADDITIVE_SHARING) {
    if (!input_) {
      return RefuseContext(ctx, key, error_code::kUnsupported,
                           "this node has no secret input configured");
    }
    auto values = input_(context->info);
    if (!values.ok()) {
      // The provider's message stays in the local log: it may name files or values.
      spdlog::warn("secagg: no input for context {}: {}", req.context_id(),
                   std::string(values.status().message()));
      return RefuseContext(ctx, key, error_code::kHandlerFailed,
                           "this node's input is not available (see the node's log)");
    }
    if (values->size() != req.element_count()) {
      return RefuseContext(ctx, key, error_code::kParamsMismatch,
                           "this node's input has " + std::to_string(values->size()) +
                               " values; the request asks for " +
                               std::to_string(req.element_count()));
    }
    auto secret = RingVector::FromDecimal(req.modulus_bits(), *values);
    if (!secret.ok()) {
      return RefuseContext(ctx, key, error_code::kParamsMismatch,
                           "this node's input does not fit the ring: " +
                               std::string(secret.status().message()));
    }
    // One input contributes to at most one context: sums over different party sets would reveal
    // differences (PROTOCOL.md section 8). The store refuses a second context with this digest.
    record.input_digest = InputDigestOf(options_.input_digest_key, *values);
    NL_ASSIGN_OR_RETURN(AdditiveParty party,
                        AdditiveParty::Create(*secret, context->info.parties, options_.policy.self));
    context->additive = std::move(party);
  } else {
    NL_ASSIGN_OR_RETURN(core::EcPrivateKey context_key, core::EcPrivateKey::Generate());
    context->context_public = context_key.PublicKey().Point();
    context->context_key = std::move(context_key);
  }
  // The shares live in memory only: a restart abandons the context, as it does pending channel
  // setups; the record keeps the context and the input from being used again. Memory first: a
  // co-party's request that finds the record must also find the context.
  {
    std::lock_guard lock(mu_);
    if (!contexts_.emplace(key, context).second) {
      return ctx.Reply(router::MakeErrorReply(
          error_code::kNotAuthorized,
          "context " + req.context_id() + " was already used; a rerun needs a new context id"));
    }
  }
  absl::Status recorded = records_.Put(record, nullptr);
  if (!recorded.ok()) {
    {
      std::lock_guard lock(mu_);
      contexts_.erase(key);
    }
    if (absl::IsAlreadyExists(recorded)) {
      return RefuseContext(ctx, key, error_code::kNotAuthorized,
                           "context " + req.context_id() + " or this node's input was already "
                           "used; a rerun needs a new context id and a new input");
    }
    return recorded;
  }
  {
    std::lock_guard lock(mu_);
    counters_.contexts_started += 1;
  }
  started_.Post(EventId(key), true);  // releases the co-parties' requests held for it
  spdlog::info("secagg: context {} from {} started ({} parties)", req.context_id(), researcher,
               context->info.parties.size());

  // Pull keys or shares from every co-party at once; the worker is released meanwhile.
  v1::Inner pull;
  if (req.scheme() == v1::ADDITIVE_SHARING) {
    v1::AdditiveSharingRequest* r = pull.mutable_additive_sharing_request();
    r->set_context_id(req.context_id());
    r->set_params_digest(ToString(context->params_digest));
    r->set_researcher(researcher);
  } else {
    v1::KeyRequest* r = pull.mutable_key_request();
    r->set_context_id(req.context_id());
    r->set_params_digest(ToString(context->params_digest));
    r->set_researcher(researcher);
  }
  uint64_t deadline = ctx.deadline_ms();
  uint64_t pull_deadline =
      deadline > now + 2 * options_.peer_margin_ms ? deadline - options_.peer_margin_ms : deadline;
  for (const std::string& peer : context->co_parties) {
    router_.Request(peer, pull, pull_deadline,
                    [this, key, peer](router::RequestOutcome outcome) {
                      OnPeerAnswer(key, peer, outcome);
                    });
  }
  return ctx.Defer<bool>(pulled_, {EventId(key)}, deadline,
                         [this, key](router::HandlerContext& c, router::WaitResult<bool>) {
                           return FinishSetup(c, key);
                         });
}

void SecaggParty::OnPeerAnswer(const Key& key, const std::string& peer,
                               const router::RequestOutcome& outcome) {
  std::shared_ptr<Context> context = Lookup(key);
  if (!context) return;
  bool all = false;
  core::SecretBytes pairwise;
  bool store_pairwise = false;
  {
    std::lock_guard lock(mu_);
    if (!outcome.ok()) {
      context->failures[peer] = outcome.status.ToString();
    } else if (context->additive) {
      const v1::Inner& reply = outcome.reply;
      auto share = reply.has_additive_sharing_reply() &&
                           reply.additive_sharing_reply().context_id() == key.second
                       ? RingVector::FromBytes(context->info.modulus_bits,
                                               context->info.element_count,
                                               AsBytes(reply.additive_sharing_reply().elements()))
                       : absl::StatusOr<RingVector>(absl::InvalidArgumentError(
                             "not an AdditiveSharingReply for this context"));
      absl::Status received = share.ok() ? context->additive->Receive(peer, *share) : share.status();
      if (!received.ok()) context->failures[peer] = std::string(received.message());
    } else if (context->context_key) {
      const v1::Inner& reply = outcome.reply;
      if (!reply.has_key_reply() || reply.key_reply().context_id() != key.second) {
        context->failures[peer] = "not a KeyReply for this context";
      } else {
        auto derived = DerivePairwiseKey(*context->context_key,
                                         AsBytes(reply.key_reply().public_key()), key.first,
                                         key.second, options_.policy.self, peer);
        if (!derived.ok()) {
          context->failures[peer] = std::string(derived.status().message());
        } else {
          pairwise = std::move(*derived);
          store_pairwise = true;
          context->derived.insert(peer);
        }
      }
    }
    context->answered += 1;
    all = context->answered == context->co_parties.size();
  }
  if (store_pairwise) {
    absl::Status stored =
        records_.PutPairwiseKey(key.first, key.second, peer, pairwise, clock_.NowMs());
    if (!stored.ok()) {
      std::lock_guard lock(mu_);
      context->failures[peer] = "storing the pairwise key failed: " + std::string(stored.message());
    }
  }
  if (all) pulled_.Post(EventId(key), true);
}

absl::Status SecaggParty::FinishSetup(router::HandlerContext& ctx, const Key& key) {
  std::shared_ptr<Context> context = Lookup(key);
  if (!context) {
    return ctx.Reply(router::MakeErrorReply(error_code::kExpired, "the context expired"));
  }
  std::map<std::string, std::string> failures;
  std::vector<std::string> silent;
  {
    std::lock_guard lock(mu_);
    failures = context->failures;
    std::vector<std::string> missing =
        context->additive ? context->additive->Missing() : std::vector<std::string>{};
    for (const std::string& p : context->co_parties) {
      bool got = context->additive
                     ? std::find(missing.begin(), missing.end(), p) == missing.end()
                     : context->derived.count(p) != 0;
      if (!got && failures.count(p) == 0) silent.push_back(p);
    }
  }
  if (!failures.empty() || !silent.empty()) {
    // Never a partial sum (PROTOCOL.md section 8): say who is missing instead.
    std::string detail;
    for (const auto& [party, why] : failures) {
      detail += (detail.empty() ? "" : "; ") + party + ": " + why;
    }
    if (!silent.empty()) {
      detail += (detail.empty() ? "" : "; ") + std::string("no answer from ") + JoinNames(silent);
    }
    {
      std::lock_guard lock(mu_);
      counters_.contexts_failed += 1;
      context->context_key.reset();  // the context is over: erase its private key
    }
    (void)records_.Update(key.first, key.second, keys::ContextState::kFinished, nullptr,
                          clock_.NowMs());
    spdlog::warn("secagg: context {} failed: {}", key.second, detail);
    return ctx.Reply(router::MakeErrorReply(silent.empty() ? error_code::kHandlerFailed : error_code::kTimeout,
                                detail));
  }
  v1::Inner reply;
  v1::SecaggSetupReply* r = reply.mutable_secagg_setup_reply();
  r->set_context_id(key.second);
  {
    std::lock_guard lock(mu_);
    if (context->additive) {
      auto sum = context->additive->HeldSum();
      if (!sum.ok()) return ctx.Reply(router::MakeErrorReply(error_code::kHandlerFailed,
                                                 std::string(sum.status().message())));
      r->set_elements(ToString(sum->bytes()));
    } else {
      context->context_key.reset();  // every pair is derived: erase the context's private key
    }
    counters_.contexts_finished += 1;
  }
  (void)records_.Update(key.first, key.second, keys::ContextState::kFinished, nullptr,
                        clock_.NowMs());
  spdlog::info("secagg: context {} finished", key.second);
  return ctx.Reply(std::move(reply));
}

// ---------------------------------------------------------------- co-party requests

std::shared_ptr<SecaggParty::Context> SecaggParty::Lookup(const Key& key) {
  std::lock_guard lock(mu_);
  auto it = contexts_.find(key);
  if (it == contexts_.end() || clock_.NowMs() >= it->second->expires_ms) return nullptr;
  return it->second;
}

absl::Status SecaggParty::OnPeerRequest(router::HandlerContext& ctx) {
  const v1::Inner& inner = ctx.inner();
  const std::string& researcher = inner.has_key_request() ? inner.key_request().researcher()
                                                          : inner.additive_sharing_request().researcher();
  const std::string& context_id = inner.has_key_request()
                                      ? inner.key_request().context_id()
                                      : inner.additive_sharing_request().context_id();
  const Key key{researcher, context_id};
  if (Lookup(key)) return ServePeer(ctx, key);
  auto record = records_.Get(researcher, context_id);
  if (record.ok() && record->has_value()) {
    // Known but no longer in memory: after a restart, or expired.
    if ((*record)->state == keys::ContextState::kRefused) {
      return Refuse(ctx, error_code::kNotAuthorized, "this node refused context " + context_id);
    }
    return Refuse(ctx, error_code::kExpired, "context " + context_id + " is over on this node");
  }
  // Not started yet: hold the request, without a worker, until it starts or its deadline passes.
  {
    std::lock_guard lock(mu_);
    counters_.requests_held += 1;
  }
  return ctx.Defer<bool>(
      started_, {EventId(key)}, ctx.deadline_ms(),
      [this, key](router::HandlerContext& c, router::WaitResult<bool> result) {
        if (!result.all_arrived()) {
          return Refuse(c, error_code::kTimeout,
                        "context " + key.second + " did not start on this node in time");
        }
        if (!result.values.begin()->second) {
          return Refuse(c, error_code::kNotAuthorized, "this node refused context " + key.second);
        }
        return ServePeer(c, key);
      });
}

absl::Status SecaggParty::ServePeer(router::HandlerContext& ctx, const Key& key) {
  std::shared_ptr<Context> context = Lookup(key);
  if (!context) return Refuse(ctx, error_code::kExpired, "context " + key.second + " expired");
  const v1::Inner& inner = ctx.inner();
  const std::string& digest = inner.has_key_request() ? inner.key_request().params_digest()
                                                      : inner.additive_sharing_request().params_digest();
  if (std::find(context->co_parties.begin(), context->co_parties.end(), ctx.sender()) ==
      context->co_parties.end()) {
    return Refuse(ctx, error_code::kNotAParty,
                  ctx.sender() + " is not a party of context " + key.second + " on this node");
  }
  bool wants_key = inner.has_key_request();
  if (ToBytes(digest) != context->params_digest || wants_key != !context->additive.has_value()) {
    return Refuse(ctx, error_code::kParamsMismatch,
                  "parameters of context " + key.second + " differ from this node's");
  }
  v1::Inner reply;
  {
    std::lock_guard lock(mu_);
    if (wants_key) {
      reply.mutable_key_reply()->set_context_id(key.second);
      reply.mutable_key_reply()->set_public_key(ToString(context->context_public));
    } else {
      auto share = context->additive->ShareFor(ctx.sender());
      if (!share.ok()) return Refuse(ctx, error_code::kNotAParty, std::string(share.status().message()));
      reply.mutable_additive_sharing_reply()->set_context_id(key.second);
      reply.mutable_additive_sharing_reply()->set_elements(ToString(share->bytes()));
    }
    counters_.requests_served += 1;
  }
  return ctx.Reply(std::move(reply));
}

}  // namespace nodelink::secagg

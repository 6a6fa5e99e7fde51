// nodelink::Node: composes the key store, the channel manager (overlay), the router, secure
// aggregation and the hub client (DESIGN.md, "Modules and their direction").
#include "nodelink/node.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "core/clock.h"
#include "core/encoding.h"
#include "core/hkdf.h"
#include "core/status.h"
#include "core/thread_name.h"
#include "keys/context_store.h"
#include "keys/files.h"
#include "keys/key_store.h"
#include "messages/envelope_check.h"
#include "messages/names.h"
#include "messages/protobuf_log.h"
#include "node/answered_store.h"
#include "node/held_inbox.h"
#include "node/hub_link.h"
#include "node/node_testing.h"
#include "nodelink/errors.hpp"
#include "overlay/channel_manager.h"
#include "overlay/store_authenticator.h"
#include "overlay/store_journal.h"
#include "router/error_reply.h"
#include "router/router.h"
#include "secagg/party.h"
#include "secagg/researcher.h"
#include "transport/hub_client.h"

namespace nodelink {

namespace {

v1::Inner AppInner(const Message& m) {
  v1::Inner inner;
  v1::AppMessage* app = inner.mutable_app();
  app->set_type(m.type);
  app->set_tag(m.tag);
  app->set_payload(m.payload);
  app->set_content_type(m.content_type);
  return inner;
}

Message MessageOf(const v1::AppMessage& app) {
  return Message{app.type(), app.tag(), app.payload(), app.content_type()};
}

// The public constants (errors.hpp) are the router's, spelled once more for applications.
static_assert(std::string_view(kErrorNotAuthorized) == router::error_code::kNotAuthorized);
static_assert(std::string_view(kErrorBadParties) == router::error_code::kBadParties);
static_assert(std::string_view(kErrorParamsMismatch) == router::error_code::kParamsMismatch);
static_assert(std::string_view(kErrorNotAParty) == router::error_code::kNotAParty);
static_assert(std::string_view(kErrorTimeout) == router::error_code::kTimeout);
static_assert(std::string_view(kErrorExpired) == router::error_code::kExpired);
static_assert(std::string_view(kErrorMalformed) == router::error_code::kMalformed);
static_assert(std::string_view(kErrorUnknownType) == router::error_code::kUnknownType);
static_assert(std::string_view(kErrorHandlerFailed) == router::error_code::kHandlerFailed);
static_assert(std::string_view(kErrorUnsupported) == router::error_code::kUnsupported);

uint64_t Ms(std::chrono::milliseconds d) { return static_cast<uint64_t>(std::max<int64_t>(0, d.count())); }

bool Contains(const std::vector<std::string>& list, std::string_view id) {
  return std::find(list.begin(), list.end(), id) != list.end();
}

// A router outcome as the application sees it.
absl::StatusOr<Message> ToReply(const router::RequestOutcome& outcome) {
  using Kind = router::RequestOutcome::Kind;
  switch (outcome.kind) {
    case Kind::kReply:
      if (!outcome.reply.has_app()) {
        return absl::InternalError(outcome.peer + " answered with a non-application message");
      }
      return MessageOf(outcome.reply.app());
    case Kind::kErrorReply:
      return PeerError(outcome.peer, outcome.error_reply().code(), outcome.error_reply().detail());
    case Kind::kTimeout:
      return absl::DeadlineExceededError("no reply from " + outcome.peer + " in time");
    case Kind::kSendFailed:
    case Kind::kCancelled:
      break;
  }
  return outcome.status.ok() ? absl::CancelledError("the node stopped") : outcome.status;
}

absl::StatusOr<keys::StoreKeySource> KeySourceOf(NodeOptions& o) {
  int given = (o.passphrase.empty() ? 0 : 1) + (o.passphrase_file.empty() ? 0 : 1) +
              (o.key_file.empty() ? 0 : 1);
  if (given != 1) {
    return absl::InvalidArgumentError(
        "give exactly one of passphrase, passphrase_file and key_file to open the key store");
  }
  if (!o.key_file.empty()) return keys::StoreKeySource::KeyFile(o.key_file);
  if (!o.passphrase_file.empty()) {
    NL_ASSIGN_OR_RETURN(core::SecretBytes secret, keys::ReadPassphraseFile(o.passphrase_file));
    return keys::StoreKeySource::Passphrase(std::move(secret));
  }
  core::SecretBytes secret = core::SecretBytes::CopyOf(AsBytes(o.passphrase));
  core::WipeString(o.passphrase);
  return keys::StoreKeySource::Passphrase(std::move(secret));
}

}  // namespace

class Node::Impl {
 public:
  router::Router& router_for_testing() { return *router_; }
  explicit Impl(NodeOptions options) : options_(std::move(options)) {}
  ~Impl() { Stop(); }

  absl::Status Start();
  void Stop();
  // "" unless this node's clock is off the hub's by more than the protocol's skew: then why its
  // messages do not get through (receivers refuse them as STALE, setups included).
  std::string ClockHint() const;

  NodeOptions options_;
  core::Clock& clock_ = core::SystemClock::Get();
  std::string id_;
  std::string federation_;

  std::unique_ptr<keys::KeyStore> store_;
  std::unique_ptr<overlay::StoreJournal> journal_;
  std::unique_ptr<overlay::StoreAuthenticator> authenticator_;
  node::HubLink link_;
  std::unique_ptr<overlay::ChannelManager> channels_;
  std::unique_ptr<node::HeldInbox> held_;
  std::unique_ptr<node::AnsweredStore> answered_;
  std::unique_ptr<router::Router> router_;
  std::unique_ptr<keys::ContextStore> contexts_;
  std::unique_ptr<secagg::SecaggParty> party_;
  std::unique_ptr<transport::HubClient> hub_;
  std::atomic<transport::HubClient*> hub_for_acks_{nullptr};

  // Maintenance: channel upkeep, context expiry, the hub's announced limits.
  std::thread maintenance_;
  std::mutex maintenance_mu_;
  std::condition_variable maintenance_wake_;
  bool stopping_ = false;
  bool stopped_ = false;

  // Application messages: handlers per type, and the receive queue for the others.
  struct Parked {
    Received received;
    uint64_t inbox_id = 0;
  };
  mutable std::mutex app_mu_;
  std::condition_variable app_changed_;
  std::map<std::string, MessageHandler> handlers_;
  std::map<std::pair<std::string, std::string>, std::deque<Parked>> parked_;
  size_t parked_count_ = 0;
  std::atomic<uint64_t> handled_{0};
  std::atomic<uint64_t> handler_failures_{0};

  absl::Status OnApp(router::HandlerContext& ctx);
  void Maintain();
  absl::StatusOr<AggregationResult> Aggregate(
      const std::vector<std::string>& parties, v1::Scheme scheme, uint32_t bits, uint32_t count,
      std::chrono::milliseconds timeout, const std::string& context_id,
      std::function<void(const std::string&, bool, const std::string&, size_t, size_t)> on_answer);
};

absl::Status Node::Impl::Start() {
  messages::SilenceProtobufLogs();
  if (options_.store_path.empty()) return absl::InvalidArgumentError("store_path is empty");
  if (options_.hub_address.empty()) return absl::InvalidArgumentError("hub_address is empty");
  NL_ASSIGN_OR_RETURN(keys::StoreKeySource source, KeySourceOf(options_));
  keys::StoreOptions store_options;
  store_options.sync_every_commit = options_.store_sync_every_commit;
  NL_ASSIGN_OR_RETURN(store_, keys::KeyStore::Open(options_.store_path, source, store_options));
  NL_ASSIGN_OR_RETURN(keys::Identity identity, store_->LoadIdentity());
  if (identity.cert_chain_der.empty()) {
    return absl::FailedPreconditionError(
        "the key store has no certificate yet: send its CSR to the CA holder, then run "
        "nodelink-keys import-cert");
  }
  id_ = identity.node_id;
  federation_ = identity.federation;
  std::optional<transport::TlsMaterial> tls;
  if (!options_.insecure) {
    NL_ASSIGN_OR_RETURN(keys::TlsMaterial m, store_->ExportTlsMaterial());
    tls = transport::TlsMaterial{std::move(m.ca_pem), std::move(m.cert_chain_pem),
                                 std::move(m.key_pem), std::move(m.crl_pem)};
  }
  if (auto warning = store_->SameIssuerWarningFor(); warning.ok() && warning->has_value()) {
    spdlog::warn("{}", **warning);
  }

  journal_ = std::make_unique<overlay::StoreJournal>(*store_);
  NL_ASSIGN_OR_RETURN(authenticator_, overlay::StoreAuthenticator::Create(*store_));
  overlay::ChannelManagerOptions channel_options;
  channel_options.setup_timeout_ms = options_.setup_timeout_ms;
  channel_options.window_size = std::max<uint64_t>(1024, options_.max_in_flight);
  // The key of the secagg input digests: derived from the identity key, so no other node (and no
  // reader of the store file without its passphrase) can test guesses of this node's input.
  core::SecretBytes input_digest_key;
  {
    NL_ASSIGN_OR_RETURN(core::SecretBytes scalar, identity.key.ExportScalar());
    NL_ASSIGN_OR_RETURN(input_digest_key,
                        core::HkdfSha256(scalar, {}, AsBytes("nodelink secagg input digest"), 32));
  }
  overlay::LocalIdentity local{identity.federation, identity.node_id, std::move(identity.key),
                               identity.cert_chain_der};
  NL_ASSIGN_OR_RETURN(channels_,
                      overlay::ChannelManager::Create(
                          std::move(local), channel_options, clock_, link_, *authenticator_,
                          *journal_, [](absl::Status s) {
                            spdlog::critical("key store commit failed, nothing more is "
                                             "acknowledged; restart the node: {}",
                                             std::string(s.message()));
                          }));
  held_ = std::make_unique<node::HeldInbox>(*channels_);
  answered_ = std::make_unique<node::AnsweredStore>(*channels_);

  router::RouterOptions router_options;
  router_options.workers = std::max<size_t>(1, options_.workers);
  router_options.inbox_capacity = std::max<size_t>(options_.max_in_flight, 1);
  router_options.handler_deadline_ms = options_.handler_deadline_ms;
  NL_ASSIGN_OR_RETURN(
      router_, router::Router::Create(router_options, *held_, *channels_, *answered_, clock_,
                                      [this](ByteView message_id) {
                                        if (auto* hub = hub_for_acks_.load()) {
                                          hub->Acknowledge(ToString(message_id));
                                        }
                                      }));

  contexts_ = std::make_unique<keys::ContextStore>(*store_);
  if (options_.min_parties < 2) {
    return absl::InvalidArgumentError("min_parties must be at least 2 (PROTOCOL.md section 8)");
  }
  secagg::PartyOptions party_options;
  party_options.input_digest_key = std::move(input_digest_key);
  party_options.policy.self = id_;
  party_options.policy.min_parties = options_.min_parties;
  party_options.policy.is_researcher = [this](std::string_view id) {
    return Contains(options_.researchers, id) || store_->IsResearcher(id);
  };
  party_options.policy.is_approved_co_party = [this](std::string_view id) {
    return Contains(options_.co_parties, id) || Contains(options_.co_parties, "*") ||
           store_->IsApprovedCoParty(id);
  };
  secagg::InputProvider input;
  if (options_.secagg_input) {
    input = [provider = options_.secagg_input](const secagg::ContextInfo& info) {
      return provider(SecaggContext{info.researcher, info.context_id, info.modulus_bits,
                                    info.element_count, info.parties});
    };
  }
  party_ = std::make_unique<secagg::SecaggParty>(std::move(party_options), *router_, *contexts_,
                                                 clock_, std::move(input));
  party_->Register();
  router_->SetHandler(v1::Inner::kApp, [this](router::HandlerContext& ctx) { return OnApp(ctx); });
  router_->Start();

  transport::HubClientOptions hub_options;
  hub_options.target = options_.hub_address;
  hub_options.tls = std::move(tls);
  hub_options.federation = federation_;
  hub_options.node_id = id_;
  hub_options.max_in_flight = options_.max_in_flight;
  hub_options.max_backoff_ms = options_.reconnect_max_backoff_ms;
  hub_options.clock = &clock_;
  hub_options.tls_target_name_override = options_.tls_server_name;
  router::Router* router = router_.get();
  NL_ASSIGN_OR_RETURN(hub_,
                      transport::HubClient::Start(
                          std::move(hub_options), [router](v1::Envelope e, bool may_run_here) {
                            return router->SubmitFromReader(std::move(e), may_run_here);
                          }));
  hub_for_acks_.store(hub_.get());
  link_.Attach(hub_.get());
  maintenance_ = std::thread([this] {
    core::NameThisThread("nl-maintain");
    Maintain();
  });
  spdlog::info("node {} of federation {}: connecting to hub {}", id_, federation_,
               options_.hub_address);
  return absl::OkStatus();
}

void Node::Impl::Maintain() {
  std::unique_lock lock(maintenance_mu_);
  uint64_t ttl_seen = 0;
  while (!stopping_) {
    maintenance_wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
    if (stopping_) break;
    lock.unlock();
    if (auto welcome = hub_->welcome(); welcome && welcome->queue_ttl_ms() != ttl_seen) {
      ttl_seen = welcome->queue_ttl_ms();
      channels_->SetQueueTtl(ttl_seen);
      party_->SetMaxEnvelopeBytes(welcome->max_envelope_bytes());
    }
    channels_->Maintain();
    party_->Sweep();
    lock.lock();
  }
}

void Node::Impl::Stop() {
  {
    std::lock_guard lock(maintenance_mu_);
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
  }
  maintenance_wake_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  // In dependency order: nothing new comes in, then handlers end, then the state is flushed.
  // Handlers are cancelled first: one running on the hub client's reading thread (a message that
  // arrived alone) holds the client's Stop until it returns.
  if (router_) router_->BeginStop();
  link_.Detach();
  hub_for_acks_.store(nullptr);
  if (hub_) hub_->Stop();
  if (router_) router_->Stop();
  {
    std::lock_guard lock(app_mu_);
    app_changed_.notify_all();
  }
  party_.reset();
  router_.reset();
  hub_.reset();
  channels_.reset();  // commits what is queued
  answered_.reset();
  held_.reset();
  authenticator_.reset();
  journal_.reset();
  contexts_.reset();
  store_.reset();
}

absl::Status Node::Impl::OnApp(router::HandlerContext& ctx) {
  const v1::AppMessage& app = ctx.inner().app();
  Received received{ctx.sender(), MessageOf(app), ctx.is_request()};
  MessageHandler handler;
  {
    std::lock_guard lock(app_mu_);
    auto it = handlers_.find(app.type());
    if (it != handlers_.end()) handler = it->second;
  }
  if (!handler) {
    if (ctx.is_request()) {
      return ctx.Reply(router::MakeErrorReply(kErrorUnknownType, "no handler for message type \"" +
                                                         app.type() + "\" on " + id_));
    }
    // Parked for Receive; its inbox row stays until the application takes it.
    held_->Hold(ctx.message().inbox_id);
    std::lock_guard lock(app_mu_);
    parked_[{ctx.sender(), app.tag()}].push_back(Parked{std::move(received), ctx.message().inbox_id});
    ++parked_count_;
    app_changed_.notify_all();
    return absl::OkStatus();
  }
  HandlerResult result = handler(received);
  if (!result.ok()) {
    handler_failures_.fetch_add(1);
    return result.status();
  }
  handled_.fetch_add(1);
  if (!ctx.is_request()) return absl::OkStatus();
  if (!result->has_value()) {
    return ctx.Reply(router::MakeErrorReply(kErrorHandlerFailed,
                                "the handler for \"" + app.type() + "\" gave no reply"));
  }
  return ctx.Reply(AppInner(**result));
}

absl::StatusOr<AggregationResult> Node::Impl::Aggregate(
    const std::vector<std::string>& parties, v1::Scheme scheme, uint32_t bits, uint32_t count,
    std::chrono::milliseconds timeout, const std::string& context_id,
    std::function<void(const std::string&, bool, const std::string&, size_t, size_t)> on_answer) {
  secagg::AggregationOptions options;
  options.context_id = context_id;
  options.parties = parties;
  options.scheme = scheme;
  options.modulus_bits = bits;
  options.element_count = count;
  options.timeout_ms = Ms(timeout);
  if (on_answer) {
    options.on_answer = [on_answer](const secagg::PartyAnswer& a) {
      on_answer(a.party, a.ok, a.detail, a.answered, a.total);
    };
  }
  NL_ASSIGN_OR_RETURN(secagg::AggregationResult r,
                      secagg::RunAggregation(*router_, clock_, options));
  AggregationResult out;
  out.context_id = r.context_id;
  out.parties = r.parties;
  out.failed = r.failed;
  out.elapsed_ms = r.elapsed_ms;
  for (const auto& [party, bytes] : r.replies) out.replies[party] = core::ToHex(bytes);
  if (r.sum) {
    for (size_t i = 0; i < r.sum->size(); ++i) out.sum.push_back(r.sum->ElementDecimal(i));
  }
  return out;
}

// ---------------------------------------------------------------- Node

Node::Node(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Node::~Node() { Stop(); }

std::string Node::Impl::ClockHint() const {
  if (!hub_) return "";
  const int64_t offset = hub_->stats().clock_offset_ms;
  if (static_cast<uint64_t>(std::abs(offset)) <= messages::kMaxClockSkewMs) return "";
  return fmt::format(
      "; this node's clock is {} minutes {} the hub's, so receivers refuse its messages as "
      "STALE: fix the clock",
      std::abs(offset) / 60'000, offset > 0 ? "ahead of" : "behind");
}

absl::StatusOr<std::unique_ptr<Node>> Node::Start(NodeOptions options) {
  auto impl = std::make_unique<Impl>(std::move(options));
  absl::Status started = impl->Start();
  if (!started.ok()) {
    impl->Stop();
    return started;
  }
  return std::unique_ptr<Node>(new Node(std::move(impl)));
}

const std::string& Node::id() const { return impl_->id_; }
const std::string& Node::federation() const { return impl_->federation_; }

bool Node::WaitConnected(std::chrono::milliseconds timeout) {
  return impl_->hub_ && impl_->hub_->WaitConnected(timeout);
}

absl::Status Node::Send(const std::string& peer, const Message& message,
                        std::chrono::milliseconds timeout) {
  auto promise = std::make_shared<std::promise<absl::Status>>();
  std::future<absl::Status> result = promise->get_future();
  impl_->channels_->Send(peer, AppInner(message),
                         [promise](absl::Status s) { promise->set_value(std::move(s)); });
  if (result.wait_for(timeout) != std::future_status::ready) {
    return absl::DeadlineExceededError("the hub did not accept the message for " + peer +
                                       " in time (it may still be delivered)" +
                                       impl_->ClockHint());
  }
  return result.get();
}

std::map<std::string, absl::Status> Node::Broadcast(const std::vector<std::string>& peers,
                                                    const Message& message,
                                                    std::chrono::milliseconds timeout) {
  std::map<std::string, std::shared_future<absl::Status>> pending;
  for (const std::string& peer : peers) {
    if (pending.count(peer) != 0) continue;
    auto promise = std::make_shared<std::promise<absl::Status>>();
    pending[peer] = promise->get_future().share();
    impl_->channels_->Send(peer, AppInner(message),
                           [promise](absl::Status s) { promise->set_value(std::move(s)); });
  }
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::map<std::string, absl::Status> out;
  for (auto& [peer, future] : pending) {
    out[peer] = future.wait_until(deadline) == std::future_status::ready
                    ? future.get()
                    : absl::DeadlineExceededError("the hub did not accept the message for " +
                                                  peer + " in time" + impl_->ClockHint());
  }
  return out;
}

absl::StatusOr<Received> Node::Receive(const std::string& peer, const std::string& tag,
                                       std::chrono::milliseconds timeout) {
  Impl::Parked parked;
  {
    std::unique_lock lock(impl_->app_mu_);
    auto key = std::make_pair(peer, tag);
    bool got = impl_->app_changed_.wait_for(lock, timeout, [&] {
      auto it = impl_->parked_.find(key);
      return (it != impl_->parked_.end() && !it->second.empty()) || !impl_->router_;
    });
    auto it = impl_->parked_.find(key);
    if (!got || it == impl_->parked_.end() || it->second.empty()) {
      return absl::DeadlineExceededError("no message from " + peer + " with tag \"" + tag +
                                         "\" in time");
    }
    parked = std::move(it->second.front());
    it->second.pop_front();
    if (it->second.empty()) impl_->parked_.erase(it);
    --impl_->parked_count_;
  }
  if (!impl_->held_->Release(parked.inbox_id, std::chrono::seconds(10))) {
    spdlog::warn("node {}: the store did not record in time that a message from {} was taken; "
                 "it may be handed out again after a restart",
                 impl_->id_, peer);
  }
  return std::move(parked.received);
}

void Node::Handle(const std::string& type, MessageHandler handler) {
  std::lock_guard lock(impl_->app_mu_);
  impl_->handlers_[type] = std::move(handler);
}

absl::StatusOr<Message> Node::Request(const std::string& peer, const Message& request,
                                      std::chrono::milliseconds timeout) {
  std::future<router::RequestOutcome> outcome =
      impl_->router_->Request(peer, AppInner(request), impl_->clock_.NowMs() + Ms(timeout));
  return ToReply(outcome.get());  // the router resolves every request by its deadline
}

std::map<std::string, absl::StatusOr<Message>> Node::SendAll(
    const std::map<std::string, Message>& requests, std::chrono::milliseconds timeout) {
  std::map<std::string, v1::Inner> per_party;
  for (const auto& [peer, message] : requests) per_party[peer] = AppInner(message);
  router::FanOutResult result =
      impl_->router_->SendAll(std::move(per_party), impl_->clock_.NowMs() + Ms(timeout)).get();
  std::map<std::string, absl::StatusOr<Message>> out;
  for (const auto& [peer, outcome] : result.outcomes) out.emplace(peer, ToReply(outcome));
  return out;
}

absl::StatusOr<AggregationResult> Node::SecureSum(const SecureSumRequest& request) {
  return impl_->Aggregate(request.parties, v1::ADDITIVE_SHARING, request.modulus_bits,
                          request.element_count, request.timeout, request.context_id,
                          request.on_answer);
}

absl::StatusOr<AggregationResult> Node::PairwiseKeys(
    const std::vector<std::string>& parties, std::chrono::milliseconds timeout,
    std::function<void(const std::string&, bool, const std::string&, size_t, size_t)> on_answer) {
  return impl_->Aggregate(parties, v1::PAIRWISE_KEYS, 0, 0, timeout, "", std::move(on_answer));
}

NodeStats Node::Stats() const {
  NodeStats s;
  s.connected = impl_->hub_ && impl_->hub_->welcome().has_value();
  overlay::ChannelCounters c = impl_->channels_->counters();
  for (const overlay::ChannelInfo& info : impl_->channels_->Channels()) s.channels_live += info.live;
  s.setups_started = c.setups_started;
  s.setups_answered = c.setups_answered;
  s.messages_sealed = c.messages_sealed;
  for (size_t i = 0; i < c.received.size(); ++i) {
    auto code = static_cast<messages::ReceiveCode>(i);
    if (code == messages::ReceiveCode::kOk) continue;
    if (c.received[i] != 0) s.refused[std::string(messages::ReceiveCodeName(code))] = c.received[i];
  }
  s.messages_opened = c.messages_opened;
  s.channel_unknown_sent = c.channel_unknown_sent;
  s.channel_unknown_acted = c.channel_unknown_acted;
  s.setups_answered_again = c.setups_answered_again;
  s.messages_resent = c.messages_resent;
  if (impl_->hub_) {
    const transport::HubClientStats hub = impl_->hub_->stats();
    s.envelopes_sent_to_hub = hub.envelopes_written;
    s.reader_takeovers = hub.reader_takeovers;
  }
  s.handled = impl_->handled_.load();
  s.handler_failures = impl_->handler_failures_.load();
  std::lock_guard lock(impl_->app_mu_);
  s.receive_queue = impl_->parked_count_;
  return s;
}

void Node::Stop() {
  if (impl_) impl_->Stop();
}

}  // namespace nodelink

namespace nodelink::node {

router::Router& RouterForTesting(Node& node) { return node.impl_for_testing().router_for_testing(); }

}  // namespace nodelink::node

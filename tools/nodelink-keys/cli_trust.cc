// nodelink-keys trust ..., channels ..., contexts ...: the operator's view of peers.
#include <memory>

#include "cli.h"
#include "core/encoding.h"
#include "core/status.h"
#include "keys/cert_info.h"
#include "keys/context_store.h"
#include "keys/fingerprint.h"

namespace nodelink::keys::cli {

namespace {

struct ListArgs {
  StoreArgs store;
  bool json = false;
};

struct NodeArgs {
  StoreArgs store;
  std::string node, fingerprint;
  bool remove = false;
};

struct PolicyArgs {
  StoreArgs store;
  std::string policy;
};

struct DropChannelsArgs {
  StoreArgs store;
  std::string peer;
  bool all = false;
};

struct DropContextArgs {
  StoreArgs store;
  std::string context, researcher;
};

std::string TimeOrNever(uint64_t ms) { return ms == 0 ? "-" : FormatUtc(ms); }

absl::Status TrustList(Context& ctx, const ListArgs& a) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_ASSIGN_OR_RETURN(PinPolicy policy, store->GetPinPolicy());
  NL_ASSIGN_OR_RETURN(std::vector<TrustEntry> entries, store->ListTrust());
  if (a.json) {
    nlohmann::json nodes = nlohmann::json::array();
    for (const TrustEntry& e : entries) {
      nlohmann::json pins = nlohmann::json::array();
      for (const Bytes& p : e.pins) pins.push_back(FingerprintHex(p));
      nodes.push_back({{"node_id", e.node_id},
                       {"tofu_fingerprint",
                        e.tofu_fingerprint ? nlohmann::json(FingerprintHex(*e.tofu_fingerprint))
                                           : nlohmann::json(nullptr)},
                       {"first_seen", e.tofu_fingerprint ? FormatUtc(e.first_seen_ms) : ""},
                       {"pins", pins},
                       {"approved", e.approved_co_party},
                       {"co_party", e.node_id == "*" ? e.approved_co_party
                                                     : store->IsApprovedCoParty(e.node_id)},
                       {"researcher", e.researcher}});
    }
    ctx.Json({{"policy", std::string(PinPolicyName(policy))}, {"nodes", nodes}});
    return absl::OkStatus();
  }
  ctx.out << "pin policy: " << PinPolicyName(policy) << "\n";
  if (entries.empty()) ctx.out << "no trust records\n";
  for (const TrustEntry& e : entries) {
    ctx.out << e.node_id;
    if (e.researcher) ctx.out << "  [researcher]";
    if (e.node_id == "*" ? e.approved_co_party : store->IsApprovedCoParty(e.node_id)) {
      ctx.out << "  [co-party]";
    }
    ctx.out << "\n";
    if (e.tofu_fingerprint) {
      ctx.out << "  first use: " << FingerprintHex(*e.tofu_fingerprint) << " ("
              << FormatUtc(e.first_seen_ms) << ")\n";
    }
    for (const Bytes& p : e.pins) ctx.out << "  pinned:    " << FingerprintHex(p) << "\n";
  }
  return absl::OkStatus();
}

absl::Status TrustPin(Context& ctx, const NodeArgs& a) {
  auto fingerprint = ParseFingerprint(a.fingerprint);
  if (!fingerprint.ok()) throw UsageError(std::string(fingerprint.status().message()));
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_RETURN_IF_ERROR(store->AddPin(a.node, *fingerprint));
  ctx.out << "pinned " << FingerprintHex(*fingerprint) << " for " << a.node
          << "; it is now an approved co-party\n";
  return absl::OkStatus();
}

absl::Status TrustUnpin(Context& ctx, const NodeArgs& a) {
  Bytes fingerprint;
  if (!a.fingerprint.empty()) {
    auto parsed = ParseFingerprint(a.fingerprint);
    if (!parsed.ok()) throw UsageError(std::string(parsed.status().message()));
    fingerprint = *parsed;
  }
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_ASSIGN_OR_RETURN(int removed, store->RemovePins(a.node, fingerprint));
  if (removed == 0) return absl::NotFoundError("no such pin for " + a.node);
  ctx.out << "removed " << removed << " pin(s) of " << a.node << "\n";
  return absl::OkStatus();
}

absl::Status TrustReset(Context& ctx, const NodeArgs& a) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_ASSIGN_OR_RETURN(bool removed, store->ResetTrust(a.node));
  if (!removed) return absl::NotFoundError("no first-use record for " + a.node);
  ctx.out << "forgot the first-use key of " << a.node
          << "; the next key it presents is recorded (tofu)\n";
  return absl::OkStatus();
}

absl::Status TrustPolicy(Context& ctx, const PolicyArgs& a) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  if (a.policy.empty()) {
    NL_ASSIGN_OR_RETURN(PinPolicy policy, store->GetPinPolicy());
    ctx.out << PinPolicyName(policy) << "\n";
    return absl::OkStatus();
  }
  auto policy = ParsePinPolicy(a.policy);
  if (!policy.ok()) throw UsageError(std::string(policy.status().message()));
  NL_RETURN_IF_ERROR(store->SetPinPolicy(*policy));
  ctx.out << "pin policy is now " << PinPolicyName(*policy) << "\n";
  if (*policy == PinPolicy::kPinned) {
    NL_ASSIGN_OR_RETURN(std::vector<TrustEntry> entries, store->ListTrust());
    bool any_pin = false;
    for (const TrustEntry& e : entries) any_pin = any_pin || !e.pins.empty();
    if (!any_pin) {
      ctx.Warn(
          "warning: no key is pinned yet; every peer is refused until you run "
          "nodelink-keys trust pin NODE FINGERPRINT");
    }
  }
  return absl::OkStatus();
}

absl::Status TrustApprove(Context& ctx, const NodeArgs& a, ApprovalRole role) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_RETURN_IF_ERROR(store->SetApproval(a.node, role, !a.remove));
  std::string what = role == ApprovalRole::kResearcher ? "researcher" : "co-party";
  ctx.out << (a.remove ? "withdrew " : "approved ") << a.node << " as a " << what << "\n";
  if (a.node == "*" && !a.remove) {
    ctx.Warn(
        "warning: \"*\" approves every member of the federation as a co-party. Any node "
        "with a certificate can then join a secure-aggregation context with you; this is a "
        "deliberate risk (PROTOCOL.md section 8)");
  }
  return absl::OkStatus();
}

absl::Status ChannelsList(Context& ctx, const ListArgs& a) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_ASSIGN_OR_RETURN(std::vector<ChannelInfo> channels, store->ListChannels());
  if (a.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const ChannelInfo& c : channels) {
      list.push_back({{"peer", c.peer},
                      {"channel_id", core::ToHex(c.channel_id)},
                      {"state", std::string(ChannelStateName(c.state))},
                      {"initiator", c.initiator},
                      {"confirmed", c.confirmed},
                      {"peer_fingerprint", FingerprintHex(c.peer_fingerprint)},
                      {"created", FormatUtc(c.created_ms)},
                      {"superseded", c.superseded_ms == 0 ? "" : FormatUtc(c.superseded_ms)},
                      {"send_seq", c.send_seq},
                      {"recv_highest", c.recv_highest},
                      {"renew_requested", c.renew_requested}});
    }
    ctx.Json(list);
    return absl::OkStatus();
  }
  if (channels.empty()) ctx.out << "no channels\n";
  for (const ChannelInfo& c : channels) {
    ctx.out << c.peer << "  " << core::ToHex(c.channel_id) << "  " << ChannelStateName(c.state)
            << "  created " << FormatUtc(c.created_ms) << "  sent " << c.send_seq
            << "  received up to " << c.recv_highest << (c.initiator ? "  (initiated here)" : "")
            << (c.renew_requested ? "  renewal requested" : "") << "\n";
  }
  return absl::OkStatus();
}

absl::Status ChannelsRenew(Context& ctx, const NodeArgs& a) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_RETURN_IF_ERROR(store->RequestRenewal(a.node));
  ctx.out << "marked the channel with " << a.node
          << " for renewal; a running nodelink-node renews it before its next send to " << a.node
          << "\n";
  return absl::OkStatus();
}

absl::Status ChannelsDrop(Context& ctx, const DropChannelsArgs& a) {
  if (a.all == !a.peer.empty()) throw UsageError("give a PEER or --all");
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_ASSIGN_OR_RETURN(int dropped, store->DropChannels(a.all ? "" : a.peer));
  ctx.out << "dropped " << dropped << " channel(s)" << (a.all ? "" : " with " + a.peer)
          << "; secrets erased from the store\n";
  return absl::OkStatus();
}

absl::Status ContextsList(Context& ctx, const ListArgs& a) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  ContextStore contexts(*store);
  NL_ASSIGN_OR_RETURN(std::vector<SecaggContext> list, contexts.List());
  if (a.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const SecaggContext& c : list) {
      out.push_back({{"researcher", c.researcher},
                     {"context_id", c.context_id},
                     {"scheme", c.scheme},
                     {"state", std::string(ContextStateName(c.state))},
                     {"created", FormatUtc(c.created_ms)},
                     {"updated", FormatUtc(c.updated_ms)},
                     {"expires", c.expires_ms == 0 ? "" : FormatUtc(c.expires_ms)},
                     {"parties", c.parties},
                     {"params_digest", core::ToHex(c.params_digest)},
                     {"pairwise_keys", c.pairwise_key_count}});
    }
    ctx.Json(out);
    return absl::OkStatus();
  }
  if (list.empty()) ctx.out << "no contexts\n";
  for (const SecaggContext& c : list) {
    ctx.out << c.researcher << "/" << c.context_id << "  " << ContextStateName(c.state)
            << "  scheme " << c.scheme << "  " << c.parties.size() << " parties  created "
            << FormatUtc(c.created_ms) << "  expires " << TimeOrNever(c.expires_ms) << "\n";
  }
  return absl::OkStatus();
}

absl::Status ContextsDrop(Context& ctx, const DropContextArgs& a) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  ContextStore contexts(*store);
  std::string researcher = a.researcher;
  if (researcher.empty()) {
    NL_ASSIGN_OR_RETURN(std::vector<SecaggContext> list, contexts.List());
    std::vector<std::string> owners;
    for (const SecaggContext& c : list) {
      if (c.context_id == a.context) owners.push_back(c.researcher);
    }
    if (owners.empty()) return absl::NotFoundError("no context \"" + a.context + "\"");
    if (owners.size() > 1) {
      std::string names;
      for (const std::string& o : owners) names += " " + o;
      throw UsageError("context \"" + a.context + "\" exists for several researchers (" +
                       names.substr(1) + "); add --researcher NAME");
    }
    researcher = owners[0];
  }
  NL_ASSIGN_OR_RETURN(bool dropped, contexts.Drop(researcher, a.context));
  if (!dropped) {
    return absl::NotFoundError("no context \"" + a.context + "\" of researcher \"" + researcher +
                               "\"");
  }
  ctx.out << "dropped context " << researcher << "/" << a.context << " and its pairwise keys\n";
  return absl::OkStatus();
}

template <typename Args>
CLI::App* Command(CLI::App* parent, Context& ctx, const std::string& name, const std::string& help,
                  std::shared_ptr<Args> args, absl::Status (*fn)(Context&, const Args&)) {
  CLI::App* cmd = parent->add_subcommand(name, help);
  AddStoreOptions(cmd, &args->store);
  cmd->callback([&ctx, args, fn] { ctx.action = [&ctx, args, fn] { return fn(ctx, *args); }; });
  return cmd;
}

}  // namespace

void AddTrustCommands(CLI::App& app, Context& ctx) {
  CLI::App* trust = app.add_subcommand("trust", "Pin policy, pinned keys and approvals");
  trust->require_subcommand(1);

  auto list = std::make_shared<ListArgs>();
  Command(trust, ctx, "list", "List first-use keys, pins and approvals", list, &TrustList)
      ->add_flag("--json", list->json, "JSON output");

  auto pin = std::make_shared<NodeArgs>();
  CLI::App* cmd = Command(trust, ctx, "pin",
                          "Pin a node's key by its SHA-256 SPKI fingerprint (compared out of "
                          "band); a pinned node is an approved co-party",
                          pin, &TrustPin);
  cmd->add_option("node", pin->node, "Node id")->required();
  cmd->add_option("fingerprint", pin->fingerprint, "SHA256:ab:cd:... or 64 hex digits")->required();

  auto unpin = std::make_shared<NodeArgs>();
  cmd =
      Command(trust, ctx, "unpin", "Remove one pin of a node, or all of them", unpin, &TrustUnpin);
  cmd->add_option("node", unpin->node, "Node id")->required();
  cmd->add_option("fingerprint", unpin->fingerprint, "The pin to remove (default: all)");

  auto reset = std::make_shared<NodeArgs>();
  cmd = Command(trust, ctx, "reset",
                "Forget a node's first-use key (after it really changed its key)", reset,
                &TrustReset);
  cmd->add_option("node", reset->node, "Node id")->required();

  auto policy = std::make_shared<PolicyArgs>();
  cmd = Command(trust, ctx, "policy", "Show or set the pin policy: ca, tofu (default), pinned",
                policy, &TrustPolicy);
  cmd->add_option("policy", policy->policy, "ca, tofu or pinned (omit to show)")
      ->check(CLI::IsMember({"ca", "tofu", "pinned"}));

  auto approve = std::make_shared<NodeArgs>();
  cmd = trust->add_subcommand(
      "approve", "Approve a node as a co-party in secure aggregation (\"*\": any member)");
  AddStoreOptions(cmd, &approve->store);
  cmd->add_option("node", approve->node, "Node id, or \"*\"")->required();
  cmd->add_flag("--remove", approve->remove, "Withdraw the approval");
  cmd->callback([&ctx, approve] {
    ctx.action = [&ctx, approve] { return TrustApprove(ctx, *approve, ApprovalRole::kCoParty); };
  });

  auto researcher = std::make_shared<NodeArgs>();
  cmd =
      trust->add_subcommand("researcher", "Accept secure-aggregation setups from this researcher");
  AddStoreOptions(cmd, &researcher->store);
  cmd->add_option("node", researcher->node, "Researcher's node id")->required();
  cmd->add_flag("--remove", researcher->remove, "Withdraw the approval");
  cmd->callback([&ctx, researcher] {
    ctx.action = [&ctx, researcher] {
      return TrustApprove(ctx, *researcher, ApprovalRole::kResearcher);
    };
  });

  CLI::App* channels = app.add_subcommand("channels", "Channels with peers (PROTOCOL section 5)");
  channels->require_subcommand(1);
  auto clist = std::make_shared<ListArgs>();
  Command(channels, ctx, "list", "List channels: live-current, live-grace, tombstone", clist,
          &ChannelsList)
      ->add_flag("--json", clist->json, "JSON output");
  auto renew = std::make_shared<NodeArgs>();
  cmd = Command(channels, ctx, "renew",
                "Ask for a new channel with PEER; a running daemon renews before its next send",
                renew, &ChannelsRenew);
  cmd->add_option("peer", renew->node, "Peer node id")->required();
  auto drop = std::make_shared<DropChannelsArgs>();
  cmd = Command(channels, ctx, "drop",
                "Delete channels and erase their secrets (stop the daemon first; required after "
                "restoring a store from a backup)",
                drop, &ChannelsDrop);
  cmd->add_option("peer", drop->peer, "Peer node id");
  cmd->add_flag("--all", drop->all, "Every channel");

  CLI::App* contexts =
      app.add_subcommand("contexts", "Secure-aggregation contexts (PROTOCOL section 8)");
  contexts->require_subcommand(1);
  auto xlist = std::make_shared<ListArgs>();
  Command(contexts, ctx, "list", "List contexts", xlist, &ContextsList)
      ->add_flag("--json", xlist->json, "JSON output");
  auto xdrop = std::make_shared<DropContextArgs>();
  cmd = Command(contexts, ctx, "drop", "Delete a context and erase its pairwise keys", xdrop,
                &ContextsDrop);
  cmd->add_option("context", xdrop->context, "Context id")->required();
  cmd->add_option("--researcher", xdrop->researcher,
                  "Researcher of the context (needed when several share the id)");
}

}  // namespace nodelink::keys::cli

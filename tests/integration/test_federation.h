// A federation on this machine for integration tests: a CA, a hub certificate and participant
// key stores made with the keys library (the same code nodelink-keys runs), the hub as a real
// nodelink-hub process over mutual TLS on 127.0.0.1:0, and participants as in-process Nodes or
// as nodelink-node processes. Every process dies with the fixture.
#pragma once

#include <doctest/doctest.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/ec.h"
#include "keys/files.h"
#include "keys/key_store.h"
#include "keys/pem.h"
#include "keys/x509.h"
#include "nodelink/node.hpp"
#include "process/subprocess.h"
#include "process/temp_dir.h"
#include "process/wait_for.h"
#include "testdata_path.h"

namespace nodelink::testing {

inline constexpr char kFederation[] = "itest";
inline constexpr char kResearcher[] = "researcher";

struct FederationOptions {
  std::vector<std::string> nodes;
  // Nodes that every other node approves as co-parties (default: all of `nodes`).
  std::optional<std::set<std::string>> approved;
  std::vector<std::string> hub_args;  // extra nodelink-hub flags
};

class TestFederation {
 public:
  // `approved`: the nodes every other node approves as co-parties (default: all of `nodes`);
  // `hub_args`: extra nodelink-hub flags.
  explicit TestFederation(std::vector<std::string> nodes,
                          std::optional<std::set<std::string>> approved = std::nullopt,
                          std::vector<std::string> hub_args = {})
      : options_{std::move(nodes), std::move(approved), std::move(hub_args)} {
    REQUIRE(keys::WriteFileAtomically(Passphrase(), std::string_view("integration-pass\n"), 0600)
                .ok());
    ca_.emplace(keys::CaCredentials{core::EcPrivateKey::Generate().value(), {}});
    ca_->cert_der =
        keys::CreateCaCertificate(ca_->key, kFederation, "Test CA", clock_, 3650).value();
    REQUIRE(keys::WriteFileAtomically(File("ca.pem"), keys::DerToPem("CERTIFICATE", ca_->cert_der),
                                      0644)
                .ok());
    auto hub_key = core::EcPrivateKey::Generate().value();
    Bytes csr = keys::CreateCsr(hub_key, kFederation, "hub").value();
    Bytes hub_cert =
        keys::IssueHubCert(csr, *ca_, keys::HubNames{{}, {"127.0.0.1"}}, clock_).value();
    REQUIRE(keys::WriteFileAtomically(File("hub.pem"), keys::DerToPem("CERTIFICATE", hub_cert),
                                      0644)
                .ok());
    core::SecretBytes key_pem = hub_key.ExportPem().value();
    REQUIRE(keys::WriteNewSecretFile(File("hub.key"), key_pem.ExposeSecret()).ok());
    CreateStore(kResearcher);
    for (const std::string& node : options_.nodes) CreateStore(node);
  }

  ~TestFederation() {
    nodes_.clear();
    processes_.clear();
    hub_.reset();
  }

  std::string File(const std::string& name) const { return dir_.File(name); }
  std::string Passphrase() const { return dir_.File("passphrase"); }
  std::string StorePath(const std::string& id) const { return dir_.File(id + ".db"); }
  std::string HubAddress() const { return "127.0.0.1:" + std::to_string(hub_port_); }
  int hub_port() const { return hub_port_; }
  process::Subprocess& hub() { return *hub_; }

  // A participant store with a certificate, trusting the researcher and approving co-parties.
  void CreateStore(const std::string& id) {
    keys::StoreOptions store_options;
    auto store = keys::KeyStore::Create(StorePath(id),
                                        keys::StoreKeySource::Passphrase(core::SecretBytes::CopyOf(
                                            AsBytes("integration-pass"))),
                                        keys::KdfProfile::kMinimal, store_options)
                     .value();
    auto key = core::EcPrivateKey::Generate().value();
    REQUIRE(store->SetIdentity(kFederation, id, key).ok());
    REQUIRE(store->AddAnchor(keys::AnchorRole::kFederation, ca_->cert_der).ok());
    Bytes cert = keys::IssueParticipantCert(store->CreateIdentityCsr().value(), *ca_, kFederation,
                                            id, clock_)
                     .value();
    REQUIRE(store->ImportCertificateChain({cert}, clock_.NowMs()).ok());
    if (id != kResearcher) {
      REQUIRE(store->SetApproval(kResearcher, keys::ApprovalRole::kResearcher, true).ok());
      for (const std::string& other : options_.nodes) {
        bool approved = !options_.approved || options_.approved->count(other) != 0;
        if (other != id && approved) {
          REQUIRE(store->SetApproval(other, keys::ApprovalRole::kCoParty, true).ok());
        }
      }
    }
  }

  // Starts (or restarts, on the same port) the hub.
  void StartHub() {
    std::remove(File("hub.port").c_str());
    hub_ = process::Subprocess::Start(HubCommand());
    REQUIRE(hub_ != nullptr);
    auto port = process::ReadPortFile(File("hub.port"), std::chrono::seconds(30));
    REQUIRE_MESSAGE(port.has_value(), "nodelink-hub did not start");
    hub_port_ = *port;
    if (WantsMetrics()) {
      auto line = hub_->WaitForLine("metrics on http://", std::chrono::seconds(30));
      REQUIRE_MESSAGE(line.has_value(), "nodelink-hub did not print its metrics address");
      metrics_port_ = std::stoi(line->substr(line->rfind(':') + 1));
    }
  }
  int metrics_port() const { return metrics_port_; }
  std::string HubDataDir() const { return File("hub-data"); }

  // The hub's command line (the same port once one was picked, so that a restart keeps it).
  std::vector<std::string> HubCommand() const {
    std::vector<std::string> argv = {
        BinPath("nodelink-hub"), "--federation", kFederation, "--listen",
        "127.0.0.1:" + std::to_string(hub_port_), "--tls-cert", File("hub.pem"), "--tls-key",
        File("hub.key"), "--tls-ca", File("ca.pem"), "--data-dir", HubDataDir(),
        "--port-file", File("hub.port"), "--log-level", "warn"};
    if (!WantsMetrics()) argv.insert(argv.end(), {"--metrics-listen", "off"});
    argv.insert(argv.end(), options_.hub_args.begin(), options_.hub_args.end());
    return argv;
  }

  NodeOptions OptionsFor(const std::string& id) const {
    NodeOptions o;
    o.store_path = StorePath(id);
    o.passphrase_file = Passphrase();
    o.hub_address = HubAddress();
    o.reconnect_max_backoff_ms = 500;
    return o;
  }

  // An in-process participant, connected.
  Node& StartNode(const std::string& id, std::function<void(NodeOptions&)> tweak = nullptr) {
    NodeOptions o = OptionsFor(id);
    if (tweak) tweak(o);
    auto node = Node::Start(std::move(o));
    REQUIRE_MESSAGE(node.ok(), node.status().ToString());
    REQUIRE((*node)->WaitConnected(std::chrono::seconds(30)));
    Node& ref = **node;
    nodes_[id] = std::move(*node);
    return ref;
  }
  Node& node(const std::string& id) { return *nodes_.at(id); }
  void StopNode(const std::string& id) { nodes_.erase(id); }

  // A nodelink-node daemon with `input` as its secret vector and `extra_args`, connected.
  process::Subprocess& StartNodeProcess(const std::string& id, const std::vector<long long>& input,
                                        const std::vector<std::string>& extra_args = {}) {
    {
      std::ofstream out(File(id + ".input"));
      for (long long v : input) out << v << "\n";
    }
    std::remove(File(id + ".status").c_str());
    std::vector<std::string> argv(
        {BinPath("nodelink-node"), "--store", StorePath(id), "--passphrase-file", Passphrase(),
         "--hub", HubAddress(), "--input", File(id + ".input"), "--status-file",
         File(id + ".status"), "--log-level", "warn"});
    argv.insert(argv.end(), extra_args.begin(), extra_args.end());
    auto child = process::Subprocess::Start(argv);
    REQUIRE(child != nullptr);
    REQUIRE_MESSAGE(process::WaitFor([&] { return keys::FileExists(File(id + ".status")); },
                                     std::chrono::seconds(30)),
                    id << " did not connect");
    process::Subprocess& ref = *child;
    processes_[id] = std::move(child);
    return ref;
  }
  process::Subprocess& NodeProcess(const std::string& id) { return *processes_.at(id); }

 private:
  bool WantsMetrics() const {
    const auto& extra = options_.hub_args;
    return std::find(extra.begin(), extra.end(), "--metrics-listen") != extra.end();
  }

  FederationOptions options_;
  core::SystemClock& clock_ = core::SystemClock::Get();
  process::TempDir dir_{"nodelink-itest"};
  std::optional<keys::CaCredentials> ca_;
  int hub_port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<process::Subprocess> hub_;
  std::map<std::string, std::unique_ptr<Node>> nodes_;
  std::map<std::string, std::unique_ptr<process::Subprocess>> processes_;
};

}  // namespace nodelink::testing

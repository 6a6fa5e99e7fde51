// nodelink-node: the daemon a data holder runs. Connects to the hub (and reconnects forever),
// answers channel setups, and serves secure aggregation for the researchers it accepts, with its
// secret input read from a file of integers.
#include <spdlog/spdlog.h>

#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "nodelink/node.hpp"
#include "nodelink/version.hpp"
#include "participant_flags.h"
#include "process_guard.h"

namespace {

using nlohmann::json;

// Reads whitespace/comma separated integers ('#' comments) from `path`, fresh for each context,
// so an operator can put a new input in place for the next one.
absl::StatusOr<std::vector<std::string>> ReadInputFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read the input file " + path);
  std::vector<std::string> values;
  std::string line;
  while (std::getline(in, line)) {
    line = line.substr(0, line.find('#'));
    for (char& c : line) {
      if (c == ',') c = ' ';
    }
    std::istringstream words(line);
    std::string word;
    while (words >> word) values.push_back(word);
  }
  return values;
}

// Settings from --config (JSON); flags given on the command line win.
absl::Status ApplyConfigFile(const std::string& path, CLI::App& app,
                             nodelink::tools::ParticipantFlags& flags,
                             std::vector<std::string>& researchers,
                             std::vector<std::string>& co_parties, uint32_t& min_parties,
                             std::string& input, std::string& status_file) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError("cannot read the config file " + path);
  json c = json::parse(in, nullptr, false);
  if (c.is_discarded() || !c.is_object()) {
    return absl::InvalidArgumentError(path + " is not a JSON object");
  }
  std::set<std::string> unknown;  // the file's keys no setting below takes
  for (auto it = c.begin(); it != c.end(); ++it) unknown.insert(it.key());
  try {
    auto set = [&](const char* key, const char* flag, auto& target) {
      if (unknown.erase(key) == 1 && app.count(flag) == 0) c.at(key).get_to(target);
    };
    set("store", "--store", flags.store);
    set("passphrase_file", "--passphrase-file", flags.passphrase_file);
    set("key_file", "--key-file", flags.key_file);
    set("hub", "--hub", flags.hub);
    set("insecure", "--insecure", flags.insecure);
    set("tls_server_name", "--tls-server-name", flags.tls_server_name);
    set("max_in_flight", "--max-in-flight", flags.max_in_flight);
    set("workers", "--workers", flags.workers);
    set("store_synchronous", "--store-synchronous", flags.store_synchronous);
    set("researchers", "--researcher", researchers);
    set("co_parties", "--co-party", co_parties);
    set("min_parties", "--min-parties", min_parties);
    set("input", "--input", input);
    set("status_file", "--status-file", status_file);
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(path + ": " + e.what());
  }
  if (!unknown.empty()) {
    return absl::InvalidArgumentError(path + ": unknown key \"" + *unknown.begin() + "\"");
  }
  return absl::OkStatus();
}

}  // namespace

int main(int argc, char** argv) {
  nodelink::tools::DisableCoreDumps();
  nodelink::tools::LogToStderr();
  nodelink::tools::BlockTerminationSignals();  // before any thread starts

  CLI::App app{
      "nodelink-node: a participant daemon. Connects to the hub over mutual TLS (reconnecting "
      "forever), sets up encrypted channels with its peers, and serves secure aggregation "
      "(PROTOCOL.md section 8) for the researchers it accepts.\n"
      "The store passphrase comes from --passphrase-file, --key-file or NODELINK_PASSPHRASE."};
  nodelink::tools::ParticipantFlags flags;
  std::string config;
  std::vector<std::string> researchers, co_parties;
  uint32_t min_parties = 3;
  std::string input, status_file, log_level = "info";
  bool version = false;
  app.add_option("--config", config,
                 "JSON file with any of: store, passphrase_file, key_file, hub, insecure, "
                 "tls_server_name, max_in_flight, workers, store_synchronous, researchers, "
                 "co_parties, min_parties, input, status_file (flags win)");
  app.add_flag("--version", version, "print the version and exit");
  nodelink::tools::AddParticipantFlags(app, flags, /*store_and_hub_required=*/false);
  app.add_option("--researcher", researchers,
                 "accept secure-aggregation requests from this node id (repeatable; also "
                 "nodelink-keys trust researcher)");
  app.add_option("--co-party", co_parties,
                 "approve this node id as a co-party (repeatable; \"*\" approves any member, a "
                 "deliberate risk; also nodelink-keys trust approve/pin)");
  app.add_option("--min-parties", min_parties,
                 "smallest party list accepted (default 3; 2 only on purpose)")
      ->check(CLI::Range(2, 100000));
  app.add_option("--input", input,
                 "file of integers: this node's secret input to secure sums (re-read for each "
                 "context; one input per context)");
  app.add_option("--status-file", status_file,
                 "write {\"node\":...,\"connected\":true} here once the hub welcomes this node");
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error (default info)");

  bool should_exit = false;
  int rc = nodelink::tools::ParseOrExit(app, argc, argv, should_exit);
  if (should_exit) return rc;
  if (version) {
    std::cout << "nodelink-node " << nodelink::Version() << " (" << nodelink::ProtocolName()
              << ")\n";
    return 0;
  }
  spdlog::set_level(spdlog::level::from_str(log_level));
  if (!config.empty()) {
    absl::Status applied = ApplyConfigFile(config, app, flags, researchers, co_parties,
                                           min_parties, input, status_file);
    if (!applied.ok()) {
      std::cerr << "nodelink-node: " << applied.message() << "\n";
      return 2;
    }
  }
  if (flags.store.empty() || flags.hub.empty()) {
    std::cerr << "nodelink-node: --store and --hub are required (flags or --config)\n";
    return 2;
  }
  auto options = nodelink::tools::OptionsFromFlags(flags);
  if (!options.ok()) {
    std::cerr << "nodelink-node: " << options.status().message() << "\n";
    return 2;
  }
  options->researchers = researchers;
  options->co_parties = co_parties;
  options->min_parties = min_parties;
  if (!input.empty()) {
    options->secagg_input = [input](const nodelink::SecaggContext&) { return ReadInputFile(input); };
  }
  if (std::find(co_parties.begin(), co_parties.end(), "*") != co_parties.end()) {
    spdlog::warn("--co-party '*' approves every member of the federation as a co-party: a "
                 "deliberate risk (PROTOCOL.md section 8)");
  }

  auto node = nodelink::Node::Start(std::move(*options));
  if (!node.ok()) {
    std::cerr << "nodelink-node: " << node.status().message() << "\n";
    return 1;
  }
  spdlog::info("nodelink-node {}: serving; stop with SIGTERM or Ctrl-C", (*node)->id());
  bool announced = false;
  int sig = 0;
  while (sig == 0) {
    if (!announced && (*node)->WaitConnected(std::chrono::milliseconds(0))) {
      announced = true;
      spdlog::info("connected to the hub");
      if (!status_file.empty()) {
        std::ofstream out(status_file + ".tmp");
        out << json{{"node", (*node)->id()}, {"connected", true}}.dump() << "\n";
        out.close();
        std::rename((status_file + ".tmp").c_str(), status_file.c_str());
      }
    }
    sig = nodelink::tools::WaitForTerminationSignalFor(announced ? 5000 : 100);
  }
  spdlog::info("signal {}: stopping", sig);
  nodelink::NodeStats stats = (*node)->Stats();
  (*node)->Stop();
  // One machine-readable line for operators and the demo.
  std::cout << "nodelink-node " << (*node)->id() << ": stats "
            << json{{"channels", stats.channels_live},
                    {"setups_started", stats.setups_started},
                    {"setups_answered", stats.setups_answered},
                    {"sealed", stats.messages_sealed},
                    {"opened", stats.messages_opened},
                    {"refused", stats.refused},
                    {"channel_unknown_sent", stats.channel_unknown_sent},
                    {"channel_unknown_acted", stats.channel_unknown_acted},
                    {"setups_answered_again", stats.setups_answered_again},
                    {"resent", stats.messages_resent},
                    {"handled", stats.handled}}
                   .dump()
            << std::endl;
  return 0;
}

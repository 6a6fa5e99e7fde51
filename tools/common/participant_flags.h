// Command-line flags every participant tool (nodelink-node, nodelink-researcher) shares: where
// the key store is, how to open it, where the hub is.
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "nodelink/node.hpp"

namespace nodelink::tools {

struct ParticipantFlags {
  std::string store;
  std::string passphrase_file;
  std::string key_file;
  std::string hub;
  bool insecure = false;
  std::string tls_server_name;
  uint32_t max_in_flight = 256;
  size_t workers = 4;
  std::string store_synchronous = "normal";  // "normal" | "full"
};

// Adds --store, --passphrase-file, --key-file, --hub, --insecure, --tls-server-name,
// --max-in-flight, --workers, --store-synchronous. nodelink-node passes false for the last
// argument: its --store and --hub may come from its --config file, checked after merging.
void AddParticipantFlags(CLI::App& app, ParticipantFlags& flags,
                         bool store_and_hub_required = true);

// NodeOptions from the flags; the passphrase comes from NODELINK_PASSPHRASE when neither file is
// given (the variable is cleared from the environment once read).
absl::StatusOr<NodeOptions> OptionsFromFlags(const ParticipantFlags& flags);

// CLI11 parse with nodelink's exit codes: --help 0, bad usage 2.
int ParseOrExit(CLI::App& app, int argc, char** argv, bool& should_exit);

}  // namespace nodelink::tools

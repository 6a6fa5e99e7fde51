#include "participant_flags.h"

#include <cstdlib>
#include <cstring>

namespace nodelink::tools {

void AddParticipantFlags(CLI::App& app, ParticipantFlags& f, bool store_and_hub_required) {
  app.add_option("--store", f.store, "key store of this participant (nodelink-keys init)")
      ->required(store_and_hub_required);
  app.add_option("--passphrase-file", f.passphrase_file,
                 "file holding the store passphrase (else NODELINK_PASSPHRASE)");
  app.add_option("--key-file", f.key_file, "store key file (nodelink-keys init --new-key-file)");
  app.add_option("--hub", f.hub, "hub address HOST:PORT")->required(store_and_hub_required);
  app.add_flag("--insecure", f.insecure,
               "development only: no TLS, loopback hubs only (the hub must run --insecure too)");
  app.add_option("--tls-server-name", f.tls_server_name,
                 "expect this name in the hub certificate instead of HOST (testing)");
  app.add_option("--max-in-flight", f.max_in_flight,
                 "envelopes the hub may push before receipts (default 256)")
      ->check(CLI::Range(1, 65536));
  app.add_option("--workers", f.workers, "handler threads (default 4)")->check(CLI::Range(1, 256));
  app.add_option("--store-synchronous", f.store_synchronous,
                 "normal (default): a key-store commit survives a killed process; full: each "
                 "is fsynced and survives power loss too (run the hub with "
                 "--sqlite-synchronous full as well)")
      ->check(CLI::IsMember({"normal", "full"}));
}

absl::StatusOr<NodeOptions> OptionsFromFlags(const ParticipantFlags& f) {
  NodeOptions o;
  o.store_path = f.store;
  o.passphrase_file = f.passphrase_file;
  o.key_file = f.key_file;
  o.hub_address = f.hub;
  o.insecure = f.insecure;
  o.tls_server_name = f.tls_server_name;
  o.max_in_flight = f.max_in_flight;
  o.workers = f.workers;
  if (f.store_synchronous != "normal" && f.store_synchronous != "full") {  // from a config file
    return absl::InvalidArgumentError("store_synchronous must be \"normal\" or \"full\", not \"" +
                                      f.store_synchronous + "\"");
  }
  o.store_sync_every_commit = f.store_synchronous == "full";
  if (o.passphrase_file.empty() && o.key_file.empty()) {
    const char* env = std::getenv("NODELINK_PASSPHRASE");
    if (env == nullptr || *env == '\0') {
      return absl::InvalidArgumentError(
          "no store key: give --passphrase-file or --key-file, or set NODELINK_PASSPHRASE");
    }
    o.passphrase = env;
    // Keep the passphrase out of /proc/<pid>/environ from here on.
    std::memset(const_cast<char*>(env), 0, std::strlen(env));
    ::unsetenv("NODELINK_PASSPHRASE");
  }
  return o;
}

int ParseOrExit(CLI::App& app, int argc, char** argv, bool& should_exit) {
  should_exit = false;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    should_exit = true;
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  return 0;
}

}  // namespace nodelink::tools

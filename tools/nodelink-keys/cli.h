// nodelink-keys: the command line over the keys library. Parsing and printing only; every
// operation is a library call that tests reach directly.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <iosfwd>
#include <memory>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "keys/key_store.h"

namespace nodelink::keys::cli {

inline constexpr char kPassphraseEnv[] = "NODELINK_PASSPHRASE";
inline constexpr char kNewPassphraseEnv[] = "NODELINK_NEW_PASSPHRASE";
inline constexpr char kStoreEnv[] = "NODELINK_STORE";

// A usage problem found after parsing (e.g. conflicting options): exit code 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// What a subcommand's parse callback leaves behind for Run to execute.
struct Context {
  std::ostream& out;
  std::ostream& err;
  const core::Clock& clock;
  std::function<absl::Status()> action;

  void Json(const nlohmann::json& j) const;
  void Warn(const std::string& message) const;
};

// Options of every command that opens a participant store.
struct StoreArgs {
  std::string store;
  std::string passphrase_file;
  std::string key_file;
};
void AddStoreOptions(CLI::App* cmd, StoreArgs* args);
// The key source the options and environment name. Throws UsageError if none or several.
StoreKeySource KeySourceFrom(const StoreArgs& args);
absl::StatusOr<std::unique_ptr<KeyStore>> OpenStore(const StoreArgs& args);

void AddCaCommands(CLI::App& app, Context& ctx);
void AddStoreCommands(CLI::App& app, Context& ctx);
void AddTrustCommands(CLI::App& app, Context& ctx);

// Parses and runs one command. Exit codes: 0 ok, 1 operation failed, 2 bad usage.
int Run(int argc, char** argv, std::ostream& out, std::ostream& err);

}  // namespace nodelink::keys::cli

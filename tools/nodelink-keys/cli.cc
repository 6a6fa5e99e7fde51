#include "cli.h"

#include <cstdlib>
#include <iostream>

#include "keys/store_key.h"

namespace nodelink::keys::cli {

void Context::Json(const nlohmann::json& j) const { out << j.dump(2) << "\n"; }

void Context::Warn(const std::string& message) const { err << message << "\n"; }

void AddStoreOptions(CLI::App* cmd, StoreArgs* args) {
  cmd->add_option("--store", args->store, "Key store file (or $NODELINK_STORE)")
      ->envname(kStoreEnv)
      ->required();
  cmd->add_option("--passphrase-file", args->passphrase_file,
                  "File holding the store passphrase (else $NODELINK_PASSPHRASE)");
  cmd->add_option("--key-file", args->key_file,
                  "Key file (32 random bytes, mode 0600) instead of a passphrase");
}

StoreKeySource KeySourceFrom(const StoreArgs& args) {
  if (!args.key_file.empty() && !args.passphrase_file.empty()) {
    throw UsageError("give either --key-file or --passphrase-file, not both");
  }
  if (!args.key_file.empty()) return StoreKeySource::KeyFile(args.key_file);
  if (!args.passphrase_file.empty()) {
    auto pass = ReadPassphraseFile(args.passphrase_file);
    if (!pass.ok()) throw UsageError(std::string(pass.status().message()));
    return StoreKeySource::Passphrase(*std::move(pass));
  }
  const char* env = std::getenv(kPassphraseEnv);
  if (env == nullptr) {
    throw UsageError(
        "no store passphrase: set NODELINK_PASSPHRASE, or pass --passphrase-file FILE or "
        "--key-file FILE");
  }
  if (*env == '\0') throw UsageError("NODELINK_PASSPHRASE is empty");
  return StoreKeySource::Passphrase(core::SecretBytes::CopyOf(AsBytes(env)));
}

absl::StatusOr<std::unique_ptr<KeyStore>> OpenStore(const StoreArgs& args) {
  StoreKeySource source = KeySourceFrom(args);
  return KeyStore::Open(args.store, source);
}

int Run(int argc, char** argv, std::ostream& out, std::ostream& err) {
  CLI::App app{
      "nodelink-keys: identity keys, certificates, trust and channels of a nodelink participant, "
      "and a small federation CA.\nExit codes: 0 ok, 1 operation failed, 2 bad usage.",
      "nodelink-keys"};
  app.require_subcommand(1);
  app.fallthrough();  // before add_subcommand (IMPLEMENTATION-NOTES 6.2)
  Context ctx{out, err, core::SystemClock::Get(), {}};
  AddCaCommands(app, ctx);
  AddStoreCommands(app, ctx);
  AddTrustCommands(app, ctx);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e, out, err);
    return rc == 0 ? 0 : 2;
  }
  if (!ctx.action) {
    err << app.help();
    return 2;
  }
  try {
    absl::Status status = ctx.action();
    if (!status.ok()) {
      err << "nodelink-keys: " << status.message() << "\n";
      return 1;
    }
    return 0;
  } catch (const UsageError& e) {
    err << "nodelink-keys: " << e.what() << "\nRun with --help for usage.\n";
    return 2;
  } catch (const std::exception& e) {
    err << "nodelink-keys: internal error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace nodelink::keys::cli

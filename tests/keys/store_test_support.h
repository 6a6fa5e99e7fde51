// Helpers for key store tests.
#pragma once

#include <SQLiteCpp/SQLiteCpp.h>

#include <memory>
#include <string>
#include <string_view>

#include "keys/key_store.h"
#include "keys/seal_contexts.h"
#include "keys/store_sql.h"
#include "test_support.h"

namespace nodelink::keys::testing {

inline StoreKeySource Pass(std::string_view passphrase) {
  return StoreKeySource::Passphrase(core::SecretBytes::CopyOf(AsBytes(passphrase)));
}

inline StoreOptions FastOptions(const core::Clock& clock) {
  StoreOptions options;
  options.busy_timeout_ms = 200;
  options.clock = &clock;
  return options;
}

inline std::unique_ptr<KeyStore> CreateStore(const std::string& path, const core::Clock& clock,
                                             std::string_view passphrase = "correct horse") {
  auto store = KeyStore::Create(path, Pass(passphrase), KdfProfile::kMinimal, FastOptions(clock));
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return *std::move(store);
}

inline std::unique_ptr<KeyStore> OpenStore(const std::string& path, const core::Clock& clock,
                                           std::string_view passphrase = "correct horse") {
  auto store = KeyStore::Open(path, Pass(passphrase), FastOptions(clock));
  REQUIRE_MESSAGE(store.ok(), store.status().ToString());
  return *std::move(store);
}

// Inserts a live channel row whose secret is sealed under the store key, as the overlay will.
// Returns the sealed blob written.
inline Bytes InsertChannel(KeyStore& store, std::string_view peer, ByteView channel_id,
                           const core::SecretBytes& secret, uint64_t created_ms,
                           const core::EcPublicKey& peer_key, uint64_t superseded_ms = 0) {
  auto sealed = store.Seal(secret.ExposeSecret(), ChannelSecretContext(peer, channel_id));
  REQUIRE(sealed.ok());
  absl::Status status = store.WithTransaction([&](SQLite::Database& db) {
    SQLite::Statement insert(db,
                             "INSERT INTO channels(peer, channel_id, secret, initiator, peer_key, "
                             "created_ms, superseded_ms) VALUES(?, ?, ?, 1, ?, ?, ?)");
    insert.bind(1, std::string(peer));
    BindBlob(insert, 2, channel_id);
    BindBlob(insert, 3, *sealed);
    BindBlob(insert, 4, peer_key.SpkiDer());
    insert.bind(5, static_cast<int64_t>(created_ms));
    insert.bind(6, static_cast<int64_t>(superseded_ms));
    insert.exec();
    return absl::OkStatus();
  });
  REQUIRE_MESSAGE(status.ok(), status.ToString());
  return *sealed;
}

}  // namespace nodelink::keys::testing

// Secure-aggregation contexts and their pairwise keys in the key store (PROTOCOL.md section 8).
// Contexts are keyed by (researcher, context_id); each is accepted at most once, and an input
// digest, when given, may belong to one context only. State blobs and pairwise keys are sealed
// with the store key (contexts in keys/seal_contexts.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/secret_bytes.h"
#include "keys/key_store.h"

namespace nodelink::keys {

enum class ContextState { kStarted, kFinished, kRefused };
std::string_view ContextStateName(ContextState state);  // "started", "finished", "refused"

struct SecaggContext {
  std::string researcher;
  std::string context_id;
  int scheme = 0;  // nodelink.v1.Scheme
  ContextState state = ContextState::kStarted;
  uint64_t created_ms = 0;
  uint64_t updated_ms = 0;
  uint64_t expires_ms = 0;  // 0: none
  Bytes params_digest;
  std::vector<std::string> parties;  // ascending
  std::optional<Bytes> input_digest;
  // Filled by Get/List only:
  bool has_state = false;
  int pairwise_key_count = 0;
};

// Thread-safe (through KeyStore). Each call is one transaction; the *Tx functions run inside a
// caller's KeyStore::WithTransaction so secagg can combine them with other writes.
class ContextStore {
 public:
  explicit ContextStore(KeyStore& store) : store_(store) {}

  // AlreadyExists if the context exists or its input_digest was used by another context.
  [[nodiscard]] absl::Status Put(const SecaggContext& context, const core::SecretBytes* state);
  // Sets the state (and the sealed state blob when `state_blob` is non-null). NotFound if absent.
  [[nodiscard]] absl::Status Update(std::string_view researcher, std::string_view context_id,
                                    ContextState state, const core::SecretBytes* state_blob,
                                    uint64_t now_ms);
  [[nodiscard]] absl::StatusOr<std::optional<SecaggContext>> Get(std::string_view researcher,
                                                                 std::string_view context_id) const;
  [[nodiscard]] absl::StatusOr<std::optional<core::SecretBytes>> GetState(
      std::string_view researcher, std::string_view context_id) const;
  [[nodiscard]] absl::StatusOr<std::vector<SecaggContext>> List() const;

  // The context must exist (NotFound); replaces a key for the same peer.
  [[nodiscard]] absl::Status PutPairwiseKey(std::string_view researcher,
                                            std::string_view context_id, std::string_view peer,
                                            const core::SecretBytes& key, uint64_t now_ms);
  [[nodiscard]] absl::StatusOr<std::optional<core::SecretBytes>> GetPairwiseKey(
      std::string_view researcher, std::string_view context_id, std::string_view peer) const;

  // Deletes the context and its pairwise keys, then checkpoints (erasure). Returns whether it
  // existed. Its input digest goes with it: an operator who drops a context lets that input be
  // used again.
  [[nodiscard]] absl::StatusOr<bool> Drop(std::string_view researcher, std::string_view context_id);

  [[nodiscard]] static absl::Status PutTx(SQLite::Database& db, const KeyStore& store,
                                          const SecaggContext& context,
                                          const core::SecretBytes* state);
  [[nodiscard]] static absl::Status PutPairwiseKeyTx(SQLite::Database& db, const KeyStore& store,
                                                     std::string_view researcher,
                                                     std::string_view context_id,
                                                     std::string_view peer,
                                                     const core::SecretBytes& key, uint64_t now_ms);

 private:
  KeyStore& store_;
};

}  // namespace nodelink::keys

#include "keys/context_store.h"

#include "core/status.h"
#include "keys/seal_contexts.h"
#include "keys/store_sql.h"
#include "messages/names.h"

namespace nodelink::keys {

namespace {

absl::StatusOr<ContextState> ParseState(const std::string& name) {
  if (name == "started") return ContextState::kStarted;
  if (name == "finished") return ContextState::kFinished;
  if (name == "refused") return ContextState::kRefused;
  return absl::DataLossError("stored context state \"" + name + "\" is invalid");
}

std::string JoinParties(const std::vector<std::string>& parties) {
  std::string out;
  for (const std::string& p : parties) {
    if (!out.empty()) out += ',';
    out += p;
  }
  return out;
}

std::vector<std::string> SplitParties(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    out.push_back(text.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

absl::Status CheckNames(std::string_view researcher, std::string_view context_id) {
  if (!messages::IsValidName(researcher) || !messages::IsValidName(context_id)) {
    return absl::InvalidArgumentError(
        "researcher and context id must be valid names "
        "(PROTOCOL.md section 1)");
  }
  return absl::OkStatus();
}

constexpr const char* kContextColumns =
    "researcher, context_id, scheme, state, created_ms, updated_ms, expires_ms, params_digest, "
    "parties, input_digest, state_sealed IS NOT NULL, (SELECT count(*) FROM pairwise_keys p "
    "WHERE p.researcher = c.researcher AND p.context_id = c.context_id)";

absl::StatusOr<SecaggContext> ReadContext(SQLite::Statement& q) {
  SecaggContext c;
  c.researcher = q.getColumn(0).getString();
  c.context_id = q.getColumn(1).getString();
  c.scheme = q.getColumn(2).getInt();
  NL_ASSIGN_OR_RETURN(c.state, ParseState(q.getColumn(3).getString()));
  c.created_ms = static_cast<uint64_t>(q.getColumn(4).getInt64());
  c.updated_ms = static_cast<uint64_t>(q.getColumn(5).getInt64());
  c.expires_ms = static_cast<uint64_t>(q.getColumn(6).getInt64());
  c.params_digest = BlobOf(q.getColumn(7));
  c.parties = SplitParties(q.getColumn(8).getString());
  if (!q.getColumn(9).isNull()) c.input_digest = BlobOf(q.getColumn(9));
  c.has_state = q.getColumn(10).getInt() != 0;
  c.pairwise_key_count = q.getColumn(11).getInt();
  return c;
}

}  // namespace

std::string_view ContextStateName(ContextState state) {
  switch (state) {
    case ContextState::kStarted:
      return "started";
    case ContextState::kFinished:
      return "finished";
    case ContextState::kRefused:
      return "refused";
  }
  return "refused";
}

absl::Status ContextStore::PutTx(SQLite::Database& db, const KeyStore& store,
                                 const SecaggContext& context, const core::SecretBytes* state) {
  NL_RETURN_IF_ERROR(CheckNames(context.researcher, context.context_id));
  for (const std::string& p : context.parties) {
    if (!messages::IsValidName(p)) {
      return absl::InvalidArgumentError("party \"" + p + "\" is not a valid node id");
    }
  }
  SQLite::Statement exists(db, "SELECT 1 FROM contexts WHERE researcher = ? AND context_id = ?");
  BindText(exists, 1, context.researcher);
  BindText(exists, 2, context.context_id);
  if (exists.executeStep()) {
    return absl::AlreadyExistsError("context \"" + context.context_id + "\" of researcher \"" +
                                    context.researcher + "\" exists; a rerun uses a new context");
  }
  if (context.input_digest) {
    SQLite::Statement used(db, "SELECT context_id FROM contexts WHERE input_digest = ?");
    BindBlob(used, 1, *context.input_digest);
    if (used.executeStep()) {
      return absl::AlreadyExistsError("this input was already contributed to context \"" +
                                      used.getColumn(0).getString() +
                                      "\"; an input goes into one context only");
    }
  }
  std::optional<Bytes> sealed;
  if (state != nullptr) {
    NL_ASSIGN_OR_RETURN(sealed,
                        store.Seal(state->ExposeSecret(),
                                   SecaggStateContext(context.researcher, context.context_id)));
  }
  SQLite::Statement insert(
      db,
      "INSERT INTO contexts(researcher, context_id, scheme, state, created_ms, updated_ms, "
      "expires_ms, params_digest, parties, input_digest, state_sealed) "
      "VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  BindText(insert, 1, context.researcher);
  BindText(insert, 2, context.context_id);
  insert.bind(3, context.scheme);
  BindText(insert, 4, ContextStateName(context.state));
  insert.bind(5, static_cast<int64_t>(context.created_ms));
  insert.bind(6, static_cast<int64_t>(context.created_ms));
  insert.bind(7, static_cast<int64_t>(context.expires_ms));
  BindBlob(insert, 8, context.params_digest);
  BindText(insert, 9, JoinParties(context.parties));
  if (context.input_digest) {
    BindBlob(insert, 10, *context.input_digest);
  } else {
    insert.bind(10);
  }
  if (sealed) {
    BindBlob(insert, 11, *sealed);
  } else {
    insert.bind(11);
  }
  insert.exec();
  return absl::OkStatus();
}

absl::Status ContextStore::Put(const SecaggContext& context, const core::SecretBytes* state) {
  return store_.WithTransaction(
      [&](SQLite::Database& db) { return PutTx(db, store_, context, state); });
}

absl::Status ContextStore::Update(std::string_view researcher, std::string_view context_id,
                                  ContextState state, const core::SecretBytes* state_blob,
                                  uint64_t now_ms) {
  std::optional<Bytes> sealed;
  if (state_blob != nullptr) {
    NL_ASSIGN_OR_RETURN(sealed, store_.Seal(state_blob->ExposeSecret(),
                                            SecaggStateContext(researcher, context_id)));
  }
  return store_.WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement update(
        db, sealed ? "UPDATE contexts SET state = ?, updated_ms = ?, state_sealed = ? "
                     "WHERE researcher = ? AND context_id = ?"
                   : "UPDATE contexts SET state = ?, updated_ms = ? "
                     "WHERE researcher = ? AND context_id = ?");
    int i = 1;
    BindText(update, i++, ContextStateName(state));
    update.bind(i++, static_cast<int64_t>(now_ms));
    if (sealed) BindBlob(update, i++, *sealed);
    BindText(update, i++, researcher);
    BindText(update, i++, context_id);
    if (update.exec() == 0) {
      return absl::NotFoundError("no context \"" + std::string(context_id) + "\" of researcher \"" +
                                 std::string(researcher) + "\"");
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::optional<SecaggContext>> ContextStore::Get(std::string_view researcher,
                                                               std::string_view context_id) const {
  std::optional<SecaggContext> out;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement q(db, std::string("SELECT ") + kContextColumns +
                                " FROM contexts c WHERE researcher = ? AND context_id = ?");
    BindText(q, 1, researcher);
    BindText(q, 2, context_id);
    if (q.executeStep()) {
      auto c = ReadContext(q);
      if (!c.ok()) return c.status();
      out = *std::move(c);
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<std::optional<core::SecretBytes>> ContextStore::GetState(
    std::string_view researcher, std::string_view context_id) const {
  std::optional<Bytes> sealed;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement q(
        db,
        "SELECT state_sealed FROM contexts WHERE researcher = ? AND context_id = ? AND "
        "state_sealed IS NOT NULL");
    BindText(q, 1, researcher);
    BindText(q, 2, context_id);
    if (q.executeStep()) sealed = BlobOf(q.getColumn(0));
    return absl::OkStatus();
  }));
  if (!sealed) return std::optional<core::SecretBytes>();
  NL_ASSIGN_OR_RETURN(core::SecretBytes plain,
                      store_.Unseal(*sealed, SecaggStateContext(researcher, context_id)));
  return std::optional<core::SecretBytes>(std::move(plain));
}

absl::StatusOr<std::vector<SecaggContext>> ContextStore::List() const {
  std::vector<SecaggContext> out;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement q(db, std::string("SELECT ") + kContextColumns +
                                " FROM contexts c ORDER BY researcher, context_id");
    while (q.executeStep()) {
      auto c = ReadContext(q);
      if (!c.ok()) return c.status();
      out.push_back(*std::move(c));
    }
    return absl::OkStatus();
  }));
  return out;
}

absl::Status ContextStore::PutPairwiseKeyTx(SQLite::Database& db, const KeyStore& store,
                                            std::string_view researcher,
                                            std::string_view context_id, std::string_view peer,
                                            const core::SecretBytes& key, uint64_t now_ms) {
  if (!messages::IsValidName(peer)) {
    return absl::InvalidArgumentError("\"" + std::string(peer) + "\" is not a valid node id");
  }
  SQLite::Statement exists(db, "SELECT 1 FROM contexts WHERE researcher = ? AND context_id = ?");
  BindText(exists, 1, researcher);
  BindText(exists, 2, context_id);
  if (!exists.executeStep()) {
    return absl::NotFoundError("no context \"" + std::string(context_id) + "\" of researcher \"" +
                               std::string(researcher) + "\"");
  }
  NL_ASSIGN_OR_RETURN(Bytes sealed, store.Seal(key.ExposeSecret(),
                                               PairwiseKeyContext(researcher, context_id, peer)));
  SQLite::Statement upsert(db,
                           "INSERT OR REPLACE INTO pairwise_keys(researcher, context_id, peer, "
                           "key_sealed, created_ms) VALUES(?, ?, ?, ?, ?)");
  BindText(upsert, 1, researcher);
  BindText(upsert, 2, context_id);
  BindText(upsert, 3, peer);
  BindBlob(upsert, 4, sealed);
  upsert.bind(5, static_cast<int64_t>(now_ms));
  upsert.exec();
  return absl::OkStatus();
}

absl::Status ContextStore::PutPairwiseKey(std::string_view researcher, std::string_view context_id,
                                          std::string_view peer, const core::SecretBytes& key,
                                          uint64_t now_ms) {
  return store_.WithTransaction([&](SQLite::Database& db) {
    return PutPairwiseKeyTx(db, store_, researcher, context_id, peer, key, now_ms);
  });
}

absl::StatusOr<std::optional<core::SecretBytes>> ContextStore::GetPairwiseKey(
    std::string_view researcher, std::string_view context_id, std::string_view peer) const {
  std::optional<Bytes> sealed;
  NL_RETURN_IF_ERROR(store_.WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement q(db,
                        "SELECT key_sealed FROM pairwise_keys WHERE researcher = ? AND "
                        "context_id = ? AND peer = ?");
    BindText(q, 1, researcher);
    BindText(q, 2, context_id);
    BindText(q, 3, peer);
    if (q.executeStep()) sealed = BlobOf(q.getColumn(0));
    return absl::OkStatus();
  }));
  if (!sealed) return std::optional<core::SecretBytes>();
  NL_ASSIGN_OR_RETURN(core::SecretBytes plain,
                      store_.Unseal(*sealed, PairwiseKeyContext(researcher, context_id, peer)));
  return std::optional<core::SecretBytes>(std::move(plain));
}

absl::StatusOr<bool> ContextStore::Drop(std::string_view researcher, std::string_view context_id) {
  int removed = 0;
  NL_RETURN_IF_ERROR(store_.WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement keys(db, "DELETE FROM pairwise_keys WHERE researcher = ? AND context_id = ?");
    BindText(keys, 1, researcher);
    BindText(keys, 2, context_id);
    keys.exec();
    SQLite::Statement ctx(db, "DELETE FROM contexts WHERE researcher = ? AND context_id = ?");
    BindText(ctx, 1, researcher);
    BindText(ctx, 2, context_id);
    removed = ctx.exec();
    return absl::OkStatus();
  }));
  NL_RETURN_IF_ERROR(store_.CheckpointErased());
  return removed > 0;
}

}  // namespace nodelink::keys

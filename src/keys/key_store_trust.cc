// KeyStore: pin policy, TOFU records, pins and approvals (PROTOCOL.md sections 3 and 8).
#include <map>

#include "core/status.h"
#include "keys/cert_info.h"
#include "keys/fingerprint.h"
#include "keys/key_store.h"
#include "keys/store_sql.h"
#include "messages/names.h"

namespace nodelink::keys {

namespace {

constexpr std::string_view kAnyMember = "*";

std::string_view ApprovalName(ApprovalRole role) {
  return role == ApprovalRole::kResearcher ? "researcher" : "co-party";
}

absl::Status CheckNodeId(std::string_view node_id) {
  if (!messages::IsValidName(node_id)) {
    return absl::InvalidArgumentError("\"" + std::string(node_id) +
                                      "\" is not a valid node id (PROTOCOL.md section 1)");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<PinPolicy> KeyStore::GetPinPolicyIn(SQLite::Database& db) {
  std::string name;
  SQLite::Statement query(db, "SELECT value FROM settings WHERE key = 'pin_policy'");
  if (query.executeStep()) name = ToString(BlobOf(query.getColumn(0)));
  if (name.empty()) return kDefaultPinPolicy;
  auto policy = ParsePinPolicy(name);
  if (!policy.ok()) return absl::DataLossError("stored pin policy is invalid: store corrupt");
  return *policy;
}

absl::StatusOr<PinPolicy> KeyStore::GetPinPolicy() const {
  absl::StatusOr<PinPolicy> policy = kDefaultPinPolicy;
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    policy = GetPinPolicyIn(db);
    return absl::OkStatus();
  }));
  return policy;
}

absl::Status KeyStore::SetPinPolicy(PinPolicy policy) {
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement upsert(db,
                             "INSERT OR REPLACE INTO settings(key, value) VALUES('pin_policy', ?)");
    BindBlob(upsert, 1, AsBytes(PinPolicyName(policy)));
    upsert.exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<PinVerdict> KeyStore::CheckPin(std::string_view node_id,
                                              const core::EcPublicKey& key) const {
  absl::StatusOr<PinVerdict> verdict;
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    verdict = CheckPinIn(db, node_id, key);
    return absl::OkStatus();
  }));
  return verdict;
}

absl::StatusOr<PinVerdict> KeyStore::CheckPinIn(SQLite::Database& db, std::string_view node_id,
                                                const core::EcPublicKey& key) {
  NL_ASSIGN_OR_RETURN(PinPolicy policy, GetPinPolicyIn(db));
  Bytes fingerprint = key.Fingerprint();
  std::vector<Bytes> pins;
  std::optional<Bytes> recorded;
  uint64_t first_seen_ms = 0;
  SQLite::Statement pin_query(db, "SELECT fingerprint FROM pins WHERE node_id = ?");
  BindText(pin_query, 1, node_id);
  while (pin_query.executeStep()) pins.push_back(BlobOf(pin_query.getColumn(0)));
  SQLite::Statement tofu_query(db, "SELECT fingerprint, first_seen_ms FROM tofu WHERE node_id = ?");
  BindText(tofu_query, 1, node_id);
  if (tofu_query.executeStep()) {
    recorded = BlobOf(tofu_query.getColumn(0));
    first_seen_ms = static_cast<uint64_t>(tofu_query.getColumn(1).getInt64());
  }
  std::string who = "node \"" + std::string(node_id) + "\"";
  std::string shown = FingerprintHex(fingerprint);
  // Pins an operator listed bind under every policy.
  if (!pins.empty()) {
    for (const Bytes& pin : pins) {
      if (pin == fingerprint) return PinVerdict{PinVerdict::Kind::kAccepted, ""};
    }
    return PinVerdict{PinVerdict::Kind::kNotPinned,
                      who + " presented key " + shown +
                          ", which is not among its pinned keys; if the node really has a new "
                          "key, compare it out of band and run: nodelink-keys trust pin " +
                          std::string(node_id) + " " + shown};
  }
  switch (policy) {
    case PinPolicy::kCa:
      return PinVerdict{PinVerdict::Kind::kAccepted, ""};
    case PinPolicy::kPinned:
      return PinVerdict{PinVerdict::Kind::kNotPinned,
                        "pin policy is \"pinned\" and " + who +
                            " has no pinned key; compare its fingerprint out of band, then run: "
                            "nodelink-keys trust pin " +
                            std::string(node_id) + " " + shown};
    case PinPolicy::kTofu:
      if (!recorded) return PinVerdict{PinVerdict::Kind::kFirstUse, ""};
      if (*recorded == fingerprint) return PinVerdict{PinVerdict::Kind::kAccepted, ""};
      return PinVerdict{PinVerdict::Kind::kKeyChanged,
                        who + " presented key " + shown + ", but key " + FingerprintHex(*recorded) +
                            " was recorded on first use (" + FormatUtc(first_seen_ms) +
                            "); if the node really changed its key, run: nodelink-keys trust "
                            "reset " +
                            std::string(node_id)};
  }
  return PinVerdict{PinVerdict::Kind::kNotPinned, "unknown pin policy"};
}

absl::Status KeyStore::RecordFirstUse(std::string_view node_id, const core::EcPublicKey& key) {
  NL_RETURN_IF_ERROR(CheckNodeId(node_id));
  return WithTransaction(
      [&](SQLite::Database& db) { return RecordFirstUseIn(db, node_id, key, NowMs()); });
}

absl::Status KeyStore::RecordFirstUseIn(SQLite::Database& db, std::string_view node_id,
                                        const core::EcPublicKey& key, uint64_t now_ms) {
  NL_RETURN_IF_ERROR(CheckNodeId(node_id));
  NL_ASSIGN_OR_RETURN(PinPolicy policy, GetPinPolicyIn(db));
  if (policy != PinPolicy::kTofu) return absl::OkStatus();
  SQLite::Statement insert(db,
                           "INSERT OR IGNORE INTO tofu(node_id, public_key, fingerprint, "
                           "first_seen_ms) VALUES(?, ?, ?, ?)");
  BindText(insert, 1, node_id);
  BindBlob(insert, 2, key.SpkiDer());
  BindBlob(insert, 3, key.Fingerprint());
  insert.bind(4, static_cast<int64_t>(now_ms));
  insert.exec();
  return absl::OkStatus();
}

absl::StatusOr<bool> KeyStore::ResetTrust(std::string_view node_id) {
  NL_RETURN_IF_ERROR(CheckNodeId(node_id));
  int removed = 0;
  NL_RETURN_IF_ERROR(WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement del(db, "DELETE FROM tofu WHERE node_id = ?");
    BindText(del, 1, node_id);
    removed = del.exec();
    return absl::OkStatus();
  }));
  return removed > 0;
}

absl::Status KeyStore::AddPin(std::string_view node_id, ByteView fingerprint) {
  NL_RETURN_IF_ERROR(CheckNodeId(node_id));
  if (fingerprint.size() != kFingerprintBytes) {
    return absl::InvalidArgumentError("a pinned fingerprint is a 32-byte SHA-256");
  }
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    SQLite::Statement insert(
        db, "INSERT OR IGNORE INTO pins(node_id, fingerprint, added_ms) VALUES(?, ?, ?)");
    BindText(insert, 1, node_id);
    BindBlob(insert, 2, fingerprint);
    insert.bind(3, static_cast<int64_t>(NowMs()));
    insert.exec();
    return absl::OkStatus();
  });
}

absl::StatusOr<int> KeyStore::RemovePins(std::string_view node_id, ByteView fingerprint) {
  NL_RETURN_IF_ERROR(CheckNodeId(node_id));
  int removed = 0;
  NL_RETURN_IF_ERROR(WithTransaction([&](SQLite::Database& db) -> absl::Status {
    if (fingerprint.empty()) {
      SQLite::Statement del(db, "DELETE FROM pins WHERE node_id = ?");
      BindText(del, 1, node_id);
      removed = del.exec();
    } else {
      SQLite::Statement del(db, "DELETE FROM pins WHERE node_id = ? AND fingerprint = ?");
      BindText(del, 1, node_id);
      BindBlob(del, 2, fingerprint);
      removed = del.exec();
    }
    return absl::OkStatus();
  }));
  return removed;
}

absl::Status KeyStore::SetApproval(std::string_view node_id, ApprovalRole role, bool approved) {
  if (node_id == kAnyMember) {
    if (role == ApprovalRole::kResearcher) {
      return absl::InvalidArgumentError(
          "\"*\" cannot be a researcher: name each researcher this participant accepts");
    }
  } else {
    NL_RETURN_IF_ERROR(CheckNodeId(node_id));
  }
  return WithTransaction([&](SQLite::Database& db) -> absl::Status {
    if (approved) {
      SQLite::Statement insert(
          db, "INSERT OR IGNORE INTO approvals(node_id, role, added_ms) VALUES(?, ?, ?)");
      BindText(insert, 1, node_id);
      BindText(insert, 2, ApprovalName(role));
      insert.bind(3, static_cast<int64_t>(NowMs()));
      insert.exec();
    } else {
      SQLite::Statement del(db, "DELETE FROM approvals WHERE node_id = ? AND role = ?");
      BindText(del, 1, node_id);
      BindText(del, 2, ApprovalName(role));
      del.exec();
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<std::vector<TrustEntry>> KeyStore::ListTrust() const {
  std::map<std::string, TrustEntry> entries;
  auto entry = [&entries](const std::string& node) -> TrustEntry& {
    TrustEntry& e = entries[node];
    e.node_id = node;
    return e;
  };
  NL_RETURN_IF_ERROR(WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement tofu(db, "SELECT node_id, fingerprint, first_seen_ms FROM tofu");
    while (tofu.executeStep()) {
      TrustEntry& e = entry(tofu.getColumn(0).getString());
      e.tofu_fingerprint = BlobOf(tofu.getColumn(1));
      e.first_seen_ms = static_cast<uint64_t>(tofu.getColumn(2).getInt64());
    }
    SQLite::Statement pins(db, "SELECT node_id, fingerprint FROM pins ORDER BY added_ms, rowid");
    while (pins.executeStep()) {
      entry(pins.getColumn(0).getString()).pins.push_back(BlobOf(pins.getColumn(1)));
    }
    SQLite::Statement approvals(db, "SELECT node_id, role FROM approvals");
    while (approvals.executeStep()) {
      TrustEntry& e = entry(approvals.getColumn(0).getString());
      if (approvals.getColumn(1).getString() == "researcher") {
        e.researcher = true;
      } else {
        e.approved_co_party = true;
      }
    }
    return absl::OkStatus();
  }));
  std::vector<TrustEntry> out;
  for (auto& [node, e] : entries) out.push_back(std::move(e));
  return out;
}

bool KeyStore::IsResearcher(std::string_view node_id) const {
  bool yes = false;
  absl::Status status = WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement query(db,
                            "SELECT 1 FROM approvals WHERE node_id = ? AND role = 'researcher'");
    BindText(query, 1, node_id);
    yes = query.executeStep();
    return absl::OkStatus();
  });
  return status.ok() && yes;
}

bool KeyStore::IsApprovedCoParty(std::string_view node_id) const {
  if (!messages::IsValidName(node_id)) return false;
  bool yes = false;
  absl::Status status = WithDatabase([&](SQLite::Database& db) {
    SQLite::Statement query(db,
                            "SELECT 1 FROM approvals WHERE role = 'co-party' AND node_id IN (?, "
                            "'*') UNION ALL SELECT 1 FROM pins WHERE node_id = ? LIMIT 1");
    BindText(query, 1, node_id);
    BindText(query, 2, node_id);
    yes = query.executeStep();
    return absl::OkStatus();
  });
  return status.ok() && yes;
}

}  // namespace nodelink::keys

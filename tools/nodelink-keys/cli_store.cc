// nodelink-keys init, csr, import-cert, import-crl, show, passphrase change: a participant's
// own identity and store.
#include <unistd.h>

#include <cstdlib>
#include <memory>

#include "cli.h"
#include "core/status.h"
#include "keys/cert_info.h"
#include "keys/files.h"
#include "keys/fingerprint.h"
#include "keys/pem.h"
#include "keys/x509.h"

namespace nodelink::keys::cli {

namespace {

constexpr uint64_t kExpiryWarningMs = 14ull * 86400 * 1000;

struct InitArgs {
  StoreArgs store;
  std::string new_key_file, federation, node_id, out_csr, ca, hub_ca;
  std::string kdf = "interactive";
};

struct CsrArgs {
  StoreArgs store;
  std::string out;
};

struct ImportCertArgs {
  StoreArgs store;
  std::string cert, ca, hub_ca, hub_cert, crl;
};

struct ImportCrlArgs {
  StoreArgs store;
  std::string crl;
};

struct ShowArgs {
  StoreArgs store;
  std::string hub_cert;
  bool json = false;
};

struct PassphraseArgs {
  StoreArgs store;
  std::string new_passphrase_file, new_key_file, kdf;
};

absl::StatusOr<std::vector<Bytes>> ReadCaFile(const std::string& path) {
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> certs, ReadCertificatesFile(path));
  return certs;
}

absl::Status WriteCsr(Context& ctx, const KeyStore& store, const std::string& out) {
  NL_ASSIGN_OR_RETURN(Bytes csr, store.CreateIdentityCsr());
  NL_RETURN_IF_ERROR(WriteFileAtomically(out, DerToPem(kPemCsr, csr), 0644));
  NL_ASSIGN_OR_RETURN(Identity id, store.LoadIdentity());
  ctx.out << "wrote the CSR for nodelink://" << id.federation << "/" << id.node_id << " to " << out
          << "\n"
          << "  key fingerprint: " << FingerprintHex(id.key.PublicKey().Fingerprint()) << "\n"
          << "send the CSR to the CA holder and compare this fingerprint with theirs out of band;"
          << " then: nodelink-keys import-cert --store " << store.path() << " --cert CERT.pem\n";
  return absl::OkStatus();
}

absl::Status Init(Context& ctx, const InitArgs& a) {
  if (!a.new_key_file.empty() && (!a.store.key_file.empty() || !a.store.passphrase_file.empty())) {
    throw UsageError("--new-key-file replaces --key-file and --passphrase-file");
  }
  auto profile = ParseKdfProfile(a.kdf);
  if (!profile.ok()) throw UsageError(std::string(profile.status().message()));
  std::vector<Bytes> anchors, hub_anchors;
  if (!a.ca.empty()) {
    NL_ASSIGN_OR_RETURN(anchors, ReadCaFile(a.ca));
  }
  if (!a.hub_ca.empty()) {
    NL_ASSIGN_OR_RETURN(hub_anchors, ReadCaFile(a.hub_ca));
  }
  bool created_key_file = false;
  StoreKeySource source = StoreKeySource::KeyFile(a.new_key_file);
  if (!a.new_key_file.empty()) {
    if (FileExists(a.store.store)) {
      return absl::AlreadyExistsError(a.store.store +
                                      " already exists; refusing to overwrite a key store");
    }
    NL_RETURN_IF_ERROR(CreateKeyFile(a.new_key_file));
    created_key_file = true;
  } else {
    source = KeySourceFrom(a.store);
  }
  auto store = KeyStore::Create(a.store.store, source, *profile);
  if (!store.ok()) {
    if (created_key_file) ::unlink(a.new_key_file.c_str());
    return store.status();
  }
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey key, core::EcPrivateKey::Generate());
  NL_RETURN_IF_ERROR((*store)->SetIdentity(a.federation, a.node_id, key));
  for (const Bytes& der : anchors) {
    NL_RETURN_IF_ERROR((*store)->AddAnchor(AnchorRole::kFederation, der));
  }
  for (const Bytes& der : hub_anchors) {
    NL_RETURN_IF_ERROR((*store)->AddAnchor(AnchorRole::kHub, der));
  }
  ctx.out << "created key store " << a.store.store << " for node \"" << a.node_id
          << "\" of federation \"" << a.federation << "\"";
  if (created_key_file) ctx.out << ", sealed with key file " << a.new_key_file;
  ctx.out << "\n";
  if (*profile == KdfProfile::kMinimal) {
    ctx.Warn(
        "warning: --kdf minimal gives the passphrase no brute-force resistance; it is for "
        "tests and demos only");
  }
  return WriteCsr(ctx, **store, a.out_csr);
}

absl::Status Csr(Context& ctx, const CsrArgs& a) {
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  return WriteCsr(ctx, *store, a.out);
}

void PrintSameIssuerWarning(Context& ctx, const KeyStore& store, const Bytes* hub_cert) {
  auto warning = store.SameIssuerWarningFor(hub_cert);
  if (warning.ok() && warning->has_value()) ctx.Warn(**warning);
}

absl::Status ImportCert(Context& ctx, const ImportCertArgs& a) {
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> chain, ReadCertificatesFile(a.cert));
  std::vector<Bytes> anchors, hub_anchors;
  std::optional<Bytes> crl, hub_cert;
  if (!a.ca.empty()) {
    NL_ASSIGN_OR_RETURN(anchors, ReadCaFile(a.ca));
  }
  if (!a.hub_ca.empty()) {
    NL_ASSIGN_OR_RETURN(hub_anchors, ReadCaFile(a.hub_ca));
  }
  if (!a.crl.empty()) {
    NL_ASSIGN_OR_RETURN(crl, ReadCrlFile(a.crl));
  }
  if (!a.hub_cert.empty()) {
    NL_ASSIGN_OR_RETURN(hub_cert, ReadCertificateFile(a.hub_cert));
  }
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  for (const Bytes& der : anchors) {
    NL_RETURN_IF_ERROR(store->AddAnchor(AnchorRole::kFederation, der));
  }
  for (const Bytes& der : hub_anchors) NL_RETURN_IF_ERROR(store->AddAnchor(AnchorRole::kHub, der));
  if (crl) NL_RETURN_IF_ERROR(store->ImportCrl(*crl));
  NL_RETURN_IF_ERROR(store->ImportCertificateChain(chain, ctx.clock.NowMs()));
  if (hub_cert) NL_RETURN_IF_ERROR(store->SetHubCertificate(*hub_cert));
  NL_ASSIGN_OR_RETURN(CertInfo info, DescribeCertificate(chain[0]));
  ctx.out << "imported the certificate for " << info.uris.at(0) << ", valid until "
          << FormatUtc(info.not_after_ms) << "\n";
  PrintSameIssuerWarning(ctx, *store, nullptr);
  return absl::OkStatus();
}

absl::Status ImportCrl(Context& ctx, const ImportCrlArgs& a) {
  NL_ASSIGN_OR_RETURN(Bytes crl, ReadCrlFile(a.crl));
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_RETURN_IF_ERROR(store->ImportCrl(crl));
  ctx.out << "loaded the CRL from " << a.crl << "\n";
  return absl::OkStatus();
}

std::string KdfDescription(const KeyStore& store) {
  if (store.key_source_kind() == "key-file") return "key file (HKDF-SHA256)";
  KdfParams p = store.kdf_params();
  std::string name = "custom";
  for (KdfProfile profile :
       {KdfProfile::kMinimal, KdfProfile::kInteractive, KdfProfile::kModerate}) {
    KdfParams q = KdfParamsOf(profile);
    if (q.opslimit == p.opslimit && q.memlimit == p.memlimit) name = KdfProfileName(profile);
  }
  return "passphrase, Argon2id " + name + " (opslimit " + std::to_string(p.opslimit) +
         ", memlimit " + std::to_string(p.memlimit / 1024) + " KiB)";
}

absl::Status Show(Context& ctx, const ShowArgs& a) {
  std::optional<Bytes> hub_cert;
  if (!a.hub_cert.empty()) {
    NL_ASSIGN_OR_RETURN(hub_cert, ReadCertificateFile(a.hub_cert));
  }
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  NL_ASSIGN_OR_RETURN(Identity id, store->LoadIdentity());
  NL_ASSIGN_OR_RETURN(PinPolicy policy, store->GetPinPolicy());
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> fed_anchors, store->Anchors(AnchorRole::kFederation));
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> hub_anchors, store->Anchors(AnchorRole::kHub));
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> crls, store->Crls());
  std::vector<std::string> warnings;
  std::optional<CertInfo> cert;
  if (!id.cert_chain_der.empty()) {
    NL_ASSIGN_OR_RETURN(cert, DescribeCertificate(id.cert_chain_der[0]));
    uint64_t now = ctx.clock.NowMs();
    if (cert->not_after_ms <= now) {
      warnings.push_back("the certificate expired at " + FormatUtc(cert->not_after_ms) +
                         "; send a new CSR (nodelink-keys csr) to the CA holder");
    } else if (cert->not_after_ms - now < kExpiryWarningMs) {
      warnings.push_back("the certificate expires at " + FormatUtc(cert->not_after_ms) +
                         "; renew it soon (nodelink-keys csr)");
    }
  } else {
    warnings.push_back("no certificate imported yet: nodelink-keys import-cert");
  }
  auto same_issuer = store->SameIssuerWarningFor(hub_cert ? &*hub_cert : nullptr);
  if (same_issuer.ok() && same_issuer->has_value()) warnings.push_back(**same_issuer);
  std::string fingerprint = FingerprintHex(id.key.PublicKey().Fingerprint());

  auto anchor_fps = [](const std::vector<Bytes>& ders) {
    std::vector<std::string> out;
    for (const Bytes& der : ders) {
      auto info = DescribeCertificate(der);
      if (info.ok()) out.push_back(FingerprintHex(info->cert_fingerprint));
    }
    return out;
  };
  if (a.json) {
    nlohmann::json j;
    j["store"] = store->path();
    j["node_id"] = id.node_id;
    j["federation"] = id.federation;
    j["fingerprint"] = fingerprint;
    if (cert) {
      j["certificate"] = {{"subject", cert->subject},
                          {"issuer", cert->issuer},
                          {"serial", cert->serial_hex},
                          {"not_before", FormatUtc(cert->not_before_ms)},
                          {"not_after", FormatUtc(cert->not_after_ms)},
                          {"not_after_ms", cert->not_after_ms},
                          {"uri", cert->uris.empty() ? "" : cert->uris[0]},
                          {"chain_length", id.cert_chain_der.size()}};
    } else {
      j["certificate"] = nullptr;
    }
    j["pin_policy"] = std::string(PinPolicyName(policy));
    j["federation_anchors"] = anchor_fps(fed_anchors);
    j["hub_anchors"] = anchor_fps(hub_anchors);
    j["crls"] = crls.size();
    j["key_source"] = std::string(store->key_source_kind());
    j["kdf"] = KdfDescription(*store);
    j["schema_version"] = store->schema_version();
    j["warnings"] = warnings;
    ctx.Json(j);
  } else {
    ctx.out << "store:        " << store->path() << "\n"
            << "node id:      " << id.node_id << "\n"
            << "federation:   " << id.federation << "\n"
            << "fingerprint:  " << fingerprint << "\n";
    if (cert) {
      ctx.out << "certificate:  " << cert->uris.at(0) << ", serial " << cert->serial_hex << "\n"
              << "  expires:    " << FormatUtc(cert->not_after_ms) << "\n"
              << "  issuer:     " << cert->issuer << "\n";
    } else {
      ctx.out << "certificate:  none\n";
    }
    ctx.out << "pin policy:   " << PinPolicyName(policy) << "\n"
            << "anchors:      " << fed_anchors.size() << " federation CA, " << hub_anchors.size()
            << " hub CA; " << crls.size() << " CRL\n"
            << "store key:    " << KdfDescription(*store) << "\n";
    for (const std::string& w : warnings) {
      ctx.Warn(w.rfind("warning:", 0) == 0 ? w : "warning: " + w);
    }
  }
  return absl::OkStatus();
}

absl::Status ChangePassphrase(Context& ctx, const PassphraseArgs& a) {
  int given = (a.new_key_file.empty() ? 0 : 1) + (a.new_passphrase_file.empty() ? 0 : 1);
  if (given > 1) throw UsageError("give either --new-passphrase-file or --new-key-file");
  KdfProfile profile = kDefaultKdfProfile;
  if (!a.kdf.empty()) {
    auto parsed = ParseKdfProfile(a.kdf);
    if (!parsed.ok()) throw UsageError(std::string(parsed.status().message()));
    profile = *parsed;
  }
  std::unique_ptr<StoreKeySource> next;
  if (!a.new_passphrase_file.empty()) {
    auto pass = ReadPassphraseFile(a.new_passphrase_file);
    if (!pass.ok()) throw UsageError(std::string(pass.status().message()));
    next = std::make_unique<StoreKeySource>(StoreKeySource::Passphrase(*std::move(pass)));
  } else if (a.new_key_file.empty()) {
    const char* env = std::getenv(kNewPassphraseEnv);
    if (env == nullptr || *env == '\0') {
      throw UsageError(
          "no new passphrase: set NODELINK_NEW_PASSPHRASE, or pass "
          "--new-passphrase-file FILE or --new-key-file FILE");
    }
    next = std::make_unique<StoreKeySource>(
        StoreKeySource::Passphrase(core::SecretBytes::CopyOf(AsBytes(env))));
  }
  NL_ASSIGN_OR_RETURN(std::unique_ptr<KeyStore> store, OpenStore(a.store));
  if (a.kdf.empty()) {  // keep the current profile when it is a named one
    KdfParams p = store->kdf_params();
    for (KdfProfile candidate :
         {KdfProfile::kMinimal, KdfProfile::kInteractive, KdfProfile::kModerate}) {
      KdfParams q = KdfParamsOf(candidate);
      if (q.opslimit == p.opslimit && q.memlimit == p.memlimit) profile = candidate;
    }
  }
  if (!a.new_key_file.empty()) {
    NL_RETURN_IF_ERROR(CreateKeyFile(a.new_key_file));
    next = std::make_unique<StoreKeySource>(StoreKeySource::KeyFile(a.new_key_file));
  }
  absl::Status status = store->ChangeStoreKey(*next, profile);
  if (!status.ok()) {
    if (!a.new_key_file.empty() && status.code() != absl::StatusCode::kUnavailable) {
      ::unlink(a.new_key_file.c_str());  // the store still uses the old key
    }
    return status;
  }
  ctx.out << "re-sealed key store " << store->path() << " under the new "
          << (a.new_key_file.empty() ? "passphrase" : "key file " + a.new_key_file)
          << "; the old one no longer opens it\n";
  return absl::OkStatus();
}

}  // namespace

void AddStoreCommands(CLI::App& app, Context& ctx) {
  auto init = std::make_shared<InitArgs>();
  CLI::App* cmd =
      app.add_subcommand("init", "Create a key store with a new identity key, and write its CSR");
  AddStoreOptions(cmd, &init->store);
  cmd->add_option("--new-key-file", init->new_key_file,
                  "Create this key file (mode 0600) and seal the store with it");
  cmd->add_option("--federation", init->federation, "Federation name")->required();
  cmd->add_option("--node-id", init->node_id, "This participant's node id")->required();
  cmd->add_option("--out-csr", init->out_csr, "CSR file to write (PEM)")->required();
  cmd->add_option("--ca", init->ca, "Federation CA certificate(s) to trust (PEM)");
  cmd->add_option("--hub-ca", init->hub_ca,
                  "CA of the hub's TLS certificate, when not the federation CA (PEM)");
  cmd->add_option("--kdf", init->kdf,
                  "Argon2id cost for a passphrase: interactive (default), moderate, or minimal "
                  "(tests and demos only)")
      ->check(CLI::IsMember({"minimal", "interactive", "moderate"}));
  cmd->callback([&ctx, init] { ctx.action = [&ctx, init] { return Init(ctx, *init); }; });

  auto csr = std::make_shared<CsrArgs>();
  cmd = app.add_subcommand("csr", "Write a new CSR for the stored identity key (renewal)");
  AddStoreOptions(cmd, &csr->store);
  cmd->add_option("--out", csr->out, "CSR file to write (PEM)")->required();
  cmd->callback([&ctx, csr] { ctx.action = [&ctx, csr] { return Csr(ctx, *csr); }; });

  auto imp = std::make_shared<ImportCertArgs>();
  cmd = app.add_subcommand("import-cert",
                           "Import this participant's certificate (checked against the CA)");
  AddStoreOptions(cmd, &imp->store);
  cmd->add_option("--cert", imp->cert, "Certificate chain, leaf first (PEM)")->required();
  cmd->add_option("--ca", imp->ca, "Federation CA certificate(s) to trust (PEM)");
  cmd->add_option("--hub-ca", imp->hub_ca, "CA of the hub's TLS certificate (PEM)");
  cmd->add_option("--hub-cert", imp->hub_cert,
                  "The hub's certificate, to check whether it shares the participants' issuer");
  cmd->add_option("--crl", imp->crl, "CRL published by the federation CA (PEM)");
  cmd->callback([&ctx, imp] { ctx.action = [&ctx, imp] { return ImportCert(ctx, *imp); }; });

  auto crl = std::make_shared<ImportCrlArgs>();
  cmd = app.add_subcommand("import-crl", "Load a CRL published by the federation CA");
  AddStoreOptions(cmd, &crl->store);
  cmd->add_option("--crl", crl->crl, "CRL file (PEM or DER)")->required();
  cmd->callback([&ctx, crl] { ctx.action = [&ctx, crl] { return ImportCrl(ctx, *crl); }; });

  auto show = std::make_shared<ShowArgs>();
  cmd = app.add_subcommand("show", "Show node id, federation, key fingerprint and certificate");
  AddStoreOptions(cmd, &show->store);
  cmd->add_option("--hub-cert", show->hub_cert,
                  "Check this hub certificate for the same-issuer warning (PROTOCOL 3)");
  cmd->add_flag("--json", show->json, "JSON output");
  cmd->callback([&ctx, show] { ctx.action = [&ctx, show] { return Show(ctx, *show); }; });

  CLI::App* pass = app.add_subcommand("passphrase", "The store's passphrase or key file");
  pass->require_subcommand(1);
  auto change = std::make_shared<PassphraseArgs>();
  cmd = pass->add_subcommand(
      "change",
      "Re-seal every secret under a new passphrase ($NODELINK_NEW_PASSPHRASE or "
      "--new-passphrase-file) or a new key file; stop the node daemon first");
  AddStoreOptions(cmd, &change->store);
  cmd->add_option("--new-passphrase-file", change->new_passphrase_file,
                  "File holding the new passphrase");
  cmd->add_option("--new-key-file", change->new_key_file,
                  "Create this key file (mode 0600) and seal the store with it");
  cmd->add_option("--kdf", change->kdf, "Argon2id cost (default: keep the current one)")
      ->check(CLI::IsMember({"minimal", "interactive", "moderate"}));
  cmd->callback(
      [&ctx, change] { ctx.action = [&ctx, change] { return ChangePassphrase(ctx, *change); }; });
}

}  // namespace nodelink::keys::cli

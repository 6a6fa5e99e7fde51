// nodelink-keys ca ... and hub-key: the federation CA holder's commands.
#include <memory>

#include "cli.h"
#include "core/encoding.h"
#include "core/status.h"
#include "keys/ca_directory.h"
#include "keys/cert_info.h"
#include "keys/files.h"
#include "keys/fingerprint.h"
#include "keys/pem.h"
#include "keys/san_uri.h"
#include "keys/x509.h"

namespace nodelink::keys::cli {

namespace {

struct CaInitArgs {
  std::string dir, federation, name;
  uint32_t days = kCaCertDays;
};

struct CaSignArgs {
  std::string dir, csr, out, node_id;
  uint32_t days = 0;
  bool hub = false;
  std::vector<std::string> dns, ips;
};

struct CaRevokeArgs {
  std::string dir, serial, cert;
};

struct CaCrlArgs {
  std::string dir, out;
  uint32_t days = kCrlDays;
};

struct CaListArgs {
  std::string dir;
  bool json = false;
};

struct HubKeyArgs {
  std::string out_key, out_csr, name = "nodelink-hub";
};

absl::Status CaInit(Context& ctx, const CaInitArgs& a) {
  NL_ASSIGN_OR_RETURN(CaDirectory ca,
                      CaDirectory::Init(a.dir, a.federation, a.name, a.days, ctx.clock));
  NL_ASSIGN_OR_RETURN(CertInfo info, DescribeCertificate(ca.cert_der()));
  ctx.out << "created the CA of federation \"" << ca.federation() << "\" in " << a.dir << "\n"
          << "  certificate: " << ca.cert_path()
          << " (give it to every participant and to the hub)\n"
          << "  key:         " << a.dir << "/ca.key (mode 0600; keep this directory offline)\n"
          << "  certificate fingerprint: " << FingerprintHex(info.cert_fingerprint) << "\n"
          << "  valid until: " << FormatUtc(info.not_after_ms) << "\n";
  return absl::OkStatus();
}

absl::Status CaSign(Context& ctx, const CaSignArgs& a) {
  if (!a.hub && (!a.dns.empty() || !a.ips.empty())) {
    throw UsageError("--dns and --ip are for hub certificates: add --hub");
  }
  if (a.hub && !a.node_id.empty()) throw UsageError("--node-id is for participant certificates");
  if (a.hub && a.dns.empty() && a.ips.empty()) {
    throw UsageError("a hub certificate needs at least one --dns NAME or --ip ADDRESS");
  }
  NL_ASSIGN_OR_RETURN(CaDirectory ca, CaDirectory::Open(a.dir));
  NL_ASSIGN_OR_RETURN(Bytes csr, ReadCsrFile(a.csr));
  Bytes cert;
  if (a.hub) {
    NL_ASSIGN_OR_RETURN(
        cert, ca.SignHub(csr, {a.dns, a.ips}, a.days == 0 ? kHubCertDays : a.days, ctx.clock));
  } else {
    NL_ASSIGN_OR_RETURN(
        cert,
        ca.SignParticipant(csr, a.node_id, a.days == 0 ? kParticipantCertDays : a.days, ctx.clock));
  }
  NL_RETURN_IF_ERROR(WriteFileAtomically(a.out, DerToPem(kPemCertificate, cert), 0644));
  NL_ASSIGN_OR_RETURN(CertInfo info, DescribeCertificate(cert));
  if (a.hub) {
    ctx.out << "issued a hub certificate for";
    for (const std::string& n : info.dns) ctx.out << " " << n;
    for (const std::string& n : info.ips) ctx.out << " " << n;
    ctx.out << "\n";
  } else {
    ctx.out << "issued a participant certificate for " << info.uris.at(0) << "\n";
  }
  ctx.out << "  key fingerprint: " << FingerprintHex(info.spki_fingerprint)
          << " (compare it with the requester's, out of band)\n"
          << "  serial:          " << info.serial_hex << "\n"
          << "  valid until:     " << FormatUtc(info.not_after_ms) << "\n"
          << "  written to:      " << a.out << "\n";
  return absl::OkStatus();
}

absl::Status CaRevoke(Context& ctx, const CaRevokeArgs& a) {
  if (a.serial.empty() == a.cert.empty()) {
    throw UsageError("give exactly one of --serial HEX or --cert FILE");
  }
  NL_ASSIGN_OR_RETURN(CaDirectory ca, CaDirectory::Open(a.dir));
  Bytes serial;
  if (!a.serial.empty()) {
    auto parsed = core::FromHex(a.serial);
    if (!parsed.ok() || parsed->empty()) throw UsageError("--serial must be hex digits");
    serial = *parsed;
    while (serial.size() > 1 && serial[0] == 0) serial.erase(serial.begin());
  } else {
    NL_ASSIGN_OR_RETURN(Bytes cert, ReadCertificateFile(a.cert));
    NL_ASSIGN_OR_RETURN(CertInfo info, DescribeCertificate(cert));
    serial = info.serial;
  }
  NL_RETURN_IF_ERROR(ca.Revoke(serial, ctx.clock));
  ctx.out << "revoked serial " << core::ToHex(serial) << "\n"
          << "publish a new CRL: nodelink-keys ca crl --dir " << a.dir << " --out crl.pem\n";
  return absl::OkStatus();
}

absl::Status CaCrl(Context& ctx, const CaCrlArgs& a) {
  NL_ASSIGN_OR_RETURN(CaDirectory ca, CaDirectory::Open(a.dir));
  NL_ASSIGN_OR_RETURN(Bytes crl, ca.IssueCrl(a.days, ctx.clock));
  NL_RETURN_IF_ERROR(WriteFileAtomically(a.out, DerToPem(kPemCrl, crl), 0644));
  NL_ASSIGN_OR_RETURN(std::vector<IssuedCertRecord> issued, ca.ListIssued());
  size_t revoked = 0;
  for (const IssuedCertRecord& r : issued) revoked += r.revoked ? 1 : 0;
  ctx.out << "wrote a CRL with " << revoked << " revoked serial(s) to " << a.out
          << "; it expires in " << a.days << " days, publish a new one before then\n";
  return absl::OkStatus();
}

absl::Status CaList(Context& ctx, const CaListArgs& a) {
  NL_ASSIGN_OR_RETURN(CaDirectory ca, CaDirectory::Open(a.dir));
  NL_ASSIGN_OR_RETURN(std::vector<IssuedCertRecord> issued, ca.ListIssued());
  if (a.json) {
    nlohmann::json list = nlohmann::json::array();
    for (const IssuedCertRecord& r : issued) {
      list.push_back({{"serial", r.serial_hex},
                      {"kind", r.kind},
                      {"subject", r.subject},
                      {"key_fingerprint", r.spki_fingerprint},
                      {"issued", FormatUtc(r.issued_ms)},
                      {"not_after", FormatUtc(r.not_after_ms)},
                      {"revoked", r.revoked}});
    }
    ctx.Json({{"federation", ca.federation()}, {"issued", list}});
    return absl::OkStatus();
  }
  ctx.out << "federation " << ca.federation() << ": " << issued.size() << " certificate(s)\n";
  for (const IssuedCertRecord& r : issued) {
    ctx.out << "  " << r.kind << " " << r.subject << "  serial " << r.serial_hex << "  until "
            << FormatUtc(r.not_after_ms) << (r.revoked ? "  REVOKED" : "") << "\n";
  }
  return absl::OkStatus();
}

absl::Status HubKey(Context& ctx, const HubKeyArgs& a) {
  NL_ASSIGN_OR_RETURN(core::EcPrivateKey key, core::EcPrivateKey::Generate());
  NL_ASSIGN_OR_RETURN(Bytes csr, CreateHubCsr(key, a.name));
  NL_ASSIGN_OR_RETURN(core::SecretBytes pem, key.ExportPem());
  NL_RETURN_IF_ERROR(WriteNewSecretFile(a.out_key, pem.ExposeSecret()));
  NL_RETURN_IF_ERROR(WriteFileAtomically(a.out_csr, DerToPem(kPemCsr, csr), 0644));
  ctx.out << "wrote the hub's TLS key to " << a.out_key << " (mode 0600) and its CSR to "
          << a.out_csr << "\n"
          << "  key fingerprint: " << FingerprintHex(key.PublicKey().Fingerprint()) << "\n"
          << "next: nodelink-keys ca sign --dir CA --hub --csr " << a.out_csr
          << " --dns HOST --ip ADDRESS --out hub.pem\n";
  return absl::OkStatus();
}

}  // namespace

void AddCaCommands(CLI::App& app, Context& ctx) {
  CLI::App* ca = app.add_subcommand("ca", "The federation CA (run by the CA holder, offline)");
  ca->require_subcommand(1);

  auto init = std::make_shared<CaInitArgs>();
  CLI::App* cmd = ca->add_subcommand("init", "Create a federation CA in a new directory");
  cmd->add_option("--dir", init->dir, "CA directory to create")->required();
  cmd->add_option("--federation", init->federation, "Federation name")->required();
  cmd->add_option("--name", init->name, "CA common name (default: \"<federation> federation CA\")");
  cmd->add_option("--days", init->days, "Validity in days")
      ->capture_default_str()
      ->check(CLI::Range(1u, kMaxCertDays));
  cmd->callback([&ctx, init] { ctx.action = [&ctx, init] { return CaInit(ctx, *init); }; });

  auto sign = std::make_shared<CaSignArgs>();
  cmd = ca->add_subcommand("sign", "Issue a certificate for a CSR (participant, or --hub)");
  cmd->add_option("--dir", sign->dir, "CA directory")->required();
  cmd->add_option("--csr", sign->csr, "CSR file (PEM or DER)")->required();
  cmd->add_option("--out", sign->out, "Certificate file to write (PEM)")->required();
  cmd->add_option("--node-id", sign->node_id,
                  "Participant node id (default: the CSR's CN; must match it)");
  cmd->add_option("--days", sign->days,
                  "Validity in days (default 90 for participants, 365 for hubs)")
      ->check(CLI::Range(1u, kMaxCertDays));
  cmd->add_flag("--hub", sign->hub, "Issue a hub (TLS server) certificate");
  cmd->add_option("--dns", sign->dns, "Hub DNS name (repeatable)");
  cmd->add_option("--ip", sign->ips, "Hub IP address (repeatable)");
  cmd->callback([&ctx, sign] { ctx.action = [&ctx, sign] { return CaSign(ctx, *sign); }; });

  auto revoke = std::make_shared<CaRevokeArgs>();
  cmd = ca->add_subcommand("revoke", "Revoke an issued certificate (then publish a CRL)");
  cmd->add_option("--dir", revoke->dir, "CA directory")->required();
  cmd->add_option("--serial", revoke->serial, "Serial number in hex");
  cmd->add_option("--cert", revoke->cert, "The certificate file");
  cmd->callback([&ctx, revoke] { ctx.action = [&ctx, revoke] { return CaRevoke(ctx, *revoke); }; });

  auto crl = std::make_shared<CaCrlArgs>();
  cmd = ca->add_subcommand("crl", "Write a CRL of every revoked certificate");
  cmd->add_option("--dir", crl->dir, "CA directory")->required();
  cmd->add_option("--out", crl->out, "CRL file to write (PEM)")->required();
  cmd->add_option("--days", crl->days, "Days until the CRL expires (verifiers then refuse all)")
      ->capture_default_str()
      ->check(CLI::Range(1u, 366u));
  cmd->callback([&ctx, crl] { ctx.action = [&ctx, crl] { return CaCrl(ctx, *crl); }; });

  auto list = std::make_shared<CaListArgs>();
  cmd = ca->add_subcommand("list", "List the certificates this CA issued");
  cmd->add_option("--dir", list->dir, "CA directory")->required();
  cmd->add_flag("--json", list->json, "JSON output");
  cmd->callback([&ctx, list] { ctx.action = [&ctx, list] { return CaList(ctx, *list); }; });

  auto hub = std::make_shared<HubKeyArgs>();
  cmd = app.add_subcommand("hub-key", "Create the hub's TLS key (0600 PEM) and its CSR");
  cmd->add_option("--out-key", hub->out_key, "Key file to create (PEM, mode 0600)")->required();
  cmd->add_option("--out-csr", hub->out_csr, "CSR file to write (PEM)")->required();
  cmd->add_option("--name", hub->name, "Common name in the CSR (for people)")
      ->capture_default_str();
  cmd->callback([&ctx, hub] { ctx.action = [&ctx, hub] { return HubKey(ctx, *hub); }; });
}

}  // namespace nodelink::keys::cli

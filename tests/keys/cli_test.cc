// The real nodelink-keys binary, driven like an operator would: a CA, a hub certificate, three
// node stores with certificates, trust commands, revocation, and every kind of bad usage.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <map>
#include <nlohmann/json.hpp>

#include "keys/cert_info.h"
#include "keys/files.h"
#include "keys/fingerprint.h"
#include "keys/pem.h"
#include "run_tool.h"
#include "store_test_support.h"
#include "testdata_path.h"

namespace nodelink::keys {
namespace {

using nlohmann::json;
using testing::ToolResult;

struct Session {
  testing::TempDir dir;
  std::string binary = nodelink::testing::BinPath("nodelink-keys");

  ToolResult Run(const std::vector<std::string>& args, const std::string& passphrase = "pw",
                 std::vector<std::string> env = {}) {
    if (!passphrase.empty()) env.push_back("NODELINK_PASSPHRASE=" + passphrase);
    return testing::RunTool(binary, args, env, dir.path());
  }
  // Runs and requires exit 0.
  ToolResult Ok(const std::vector<std::string>& args, const std::string& passphrase = "pw",
                std::vector<std::string> env = {}) {
    ToolResult r = Run(args, passphrase, std::move(env));
    INFO("args: " << args.at(0) << " " << (args.size() > 1 ? args[1] : ""));
    INFO("stderr: " << r.err);
    REQUIRE(r.exit_code == 0);
    return r;
  }
  json Json(const std::vector<std::string>& args, const std::string& passphrase = "pw") {
    ToolResult r = Ok(args, passphrase);
    try {
      return json::parse(r.out);
    } catch (const json::exception& e) {
      FAIL("not JSON: " << r.out);
      return json();
    }
  }
  std::string File(const std::string& name) const { return dir.File(name); }
};

TEST_CASE("scripted session: CA, hub certificate, three node stores, show --json, trust") {
  Session s;
  s.Ok({"ca", "init", "--dir", "ca", "--federation", "fed"}, "");
  s.Ok({"hub-key", "--out-key", "hub.key", "--out-csr", "hub.csr"}, "");
  s.Ok({"ca", "sign", "--dir", "ca", "--hub", "--csr", "hub.csr", "--dns", "hub.example", "--ip",
        "127.0.0.1", "--out", "hub.pem"},
       "");
  auto hub = DescribeCertificate(*ReadCertificateFile(s.File("hub.pem")));
  REQUIRE(hub.ok());
  CHECK(hub->ips == std::vector<std::string>{"127.0.0.1"});
  CHECK(hub->dns == std::vector<std::string>{"hub.example"});
  CHECK(hub->uris.empty());
  struct stat st {};
  REQUIRE(::stat(s.File("hub.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  REQUIRE(::stat(s.File("ca/ca.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);

  std::map<std::string, std::string> fingerprints;
  for (const std::string node : {"node-a", "node-b", "node-c"}) {
    CAPTURE(node);
    std::vector<std::string> init = {"init",      "--store", node + ".db", "--federation", "fed",
                                     "--node-id", node,      "--out-csr",  node + ".csr",  "--ca",
                                     "ca/ca.pem", "--kdf",   "minimal"};
    // node-c is sealed with a key file instead of a passphrase.
    std::string pass = node == "node-c" ? "" : "pw";
    std::vector<std::string> key_args;
    if (node == "node-c") {
      init.insert(init.end(), {"--new-key-file", "node-c.key"});
      key_args = {"--key-file", "node-c.key"};
    }
    ToolResult created = s.Ok(init, pass);
    CHECK(created.err.find("tests and demos only") != std::string::npos);
    s.Ok({"ca", "sign", "--dir", "ca", "--csr", node + ".csr", "--out", node + ".pem"}, "");
    std::vector<std::string> import = {"import-cert", "--store",    node + ".db", "--cert",
                                       node + ".pem", "--hub-cert", "hub.pem"};
    import.insert(import.end(), key_args.begin(), key_args.end());
    ToolResult imported = s.Ok(import, pass);
    CHECK(imported.err.find("same issuer") != std::string::npos);  // PROTOCOL 3 warning

    std::vector<std::string> show = {"show", "--store", node + ".db", "--json"};
    show.insert(show.end(), key_args.begin(), key_args.end());
    json j = s.Json(show, pass);
    CHECK(j["node_id"] == node);
    CHECK(j["federation"] == "fed");
    CHECK(j["pin_policy"] == "tofu");
    CHECK(j["certificate"]["uri"] == "nodelink://fed/" + node);
    CHECK(j["certificate"]["not_after_ms"].get<uint64_t>() > 0);
    CHECK(j["key_source"] == (node == "node-c" ? "key-file" : "passphrase"));
    std::string fp = j["fingerprint"];
    auto cert = DescribeCertificate(*ReadCertificateFile(s.File(node + ".pem")));
    REQUIRE(cert.ok());
    CHECK(fp == FingerprintHex(cert->spki_fingerprint));
    fingerprints[node] = fp;
    bool warned = false;
    for (const auto& w : j["warnings"]) {
      warned = warned || w.get<std::string>().find("same issuer") != std::string::npos;
    }
    CHECK(warned);
  }

  // The stores verify each other's certificates.
  auto store = testing::OpenStore(s.File("node-a.db"), core::SystemClock::Get(), "pw");
  auto verifier = store->MakeParticipantVerifier();
  REQUIRE(verifier.ok());
  auto b_chain = ReadCertificatesFile(s.File("node-b.pem"));
  CHECK(verifier->Check(*b_chain, "fed", "node-b", core::SystemClock::Get().NowMs()).error ==
        CertError::kOk);
  store.reset();

  // Trust commands round trip.
  s.Ok({"trust", "pin", "--store", "node-a.db", "node-b", fingerprints["node-b"]});
  s.Ok({"trust", "pin", "--store", "node-a.db", "node-c",
        fingerprints["node-c"].substr(7)});  // plain hex with colons, no prefix
  s.Ok({"trust", "researcher", "--store", "node-a.db", "node-c"});
  s.Ok({"trust", "approve", "--store", "node-a.db", "node-d"});
  ToolResult star = s.Ok({"trust", "approve", "--store", "node-a.db", "*"});
  CHECK(star.err.find("deliberate risk") != std::string::npos);
  s.Ok({"trust", "approve", "--store", "node-a.db", "*", "--remove"});
  s.Ok({"trust", "policy", "--store", "node-a.db", "pinned"});
  CHECK(s.Ok({"trust", "policy", "--store", "node-a.db"}).out == "pinned\n");
  json trust = s.Json({"trust", "list", "--store", "node-a.db", "--json"});
  CHECK(trust["policy"] == "pinned");
  REQUIRE(trust["nodes"].size() == 3);
  CHECK(trust["nodes"][0]["node_id"] == "node-b");
  CHECK(trust["nodes"][0]["pins"][0] == fingerprints["node-b"]);
  CHECK(trust["nodes"][0]["co_party"] == true);
  CHECK(trust["nodes"][1]["node_id"] == "node-c");
  CHECK(trust["nodes"][1]["researcher"] == true);
  CHECK(trust["nodes"][2]["node_id"] == "node-d");
  CHECK(trust["nodes"][2]["approved"] == true);
  s.Ok({"trust", "unpin", "--store", "node-a.db", "node-c"});
  ToolResult no_record = s.Run({"trust", "reset", "--store", "node-a.db", "node-b"});
  CHECK(no_record.exit_code == 1);
  CHECK(no_record.err.find("no first-use record") != std::string::npos);

  store = testing::OpenStore(s.File("node-a.db"), core::SystemClock::Get(), "pw");
  auto b_verified = verifier->Verify(*b_chain, "fed", "node-b", core::SystemClock::Get().NowMs());
  REQUIRE(b_verified.ok());
  CHECK(store->CheckPin("node-b", b_verified->key)->kind == PinVerdict::Kind::kAccepted);
  CHECK(store->CheckPin("node-c", testing::NewKey().PublicKey())->kind ==
        PinVerdict::Kind::kNotPinned);
  CHECK(store->IsResearcher("node-c"));
  CHECK(store->IsApprovedCoParty("node-d"));
  CHECK_FALSE(store->IsApprovedCoParty("node-e"));
  store.reset();
  // A first-use record (what a verified setup leaves under tofu), then reset by the operator.
  s.Ok({"trust", "policy", "--store", "node-a.db", "tofu"});
  const core::EcPublicKey e_key = testing::NewKey().PublicKey();
  store = testing::OpenStore(s.File("node-a.db"), core::SystemClock::Get(), "pw");
  REQUIRE(store->RecordFirstUse("node-e", e_key).ok());
  store.reset();
  auto has_node = [&](const std::string& id) {
    const json listed = s.Json({"trust", "list", "--store", "node-a.db", "--json"});
    for (const json& n : listed["nodes"]) {
      if (n["node_id"] == id) return true;
    }
    return false;
  };
  CHECK(has_node("node-e"));
  s.Ok({"trust", "reset", "--store", "node-a.db", "node-e"});
  CHECK_FALSE(has_node("node-e"));
  store = testing::OpenStore(s.File("node-a.db"), core::SystemClock::Get(), "pw");
  CHECK(store->CheckPin("node-e", e_key)->kind == PinVerdict::Kind::kFirstUse);  // forgotten
  store.reset();
  s.Ok({"trust", "policy", "--store", "node-a.db", "pinned"});

  // Channels and contexts listings parse (empty until the overlay fills them).
  CHECK(s.Json({"channels", "list", "--store", "node-a.db", "--json"}).empty());
  CHECK(s.Json({"contexts", "list", "--store", "node-a.db", "--json"}).empty());
  s.Ok({"channels", "drop", "--store", "node-a.db", "--all"});
  ToolResult renew = s.Run({"channels", "renew", "--store", "node-a.db", "node-b"});
  CHECK(renew.exit_code == 1);
  CHECK(renew.err.find("no live channel") != std::string::npos);

  // Revocation: the CA revokes node-b, publishes a CRL, node-a loads it and refuses node-b.
  s.Ok({"ca", "revoke", "--dir", "ca", "--cert", "node-b.pem"}, "");
  s.Ok({"ca", "crl", "--dir", "ca", "--out", "crl.pem"}, "");
  s.Ok({"import-crl", "--store", "node-a.db", "--crl", "crl.pem"});
  json ca_list = s.Json({"ca", "list", "--dir", "ca", "--json"}, "");
  CHECK(ca_list["issued"].size() == 4);
  store = testing::OpenStore(s.File("node-a.db"), core::SystemClock::Get(), "pw");
  auto with_crl = store->MakeParticipantVerifier();
  REQUIRE(with_crl.ok());
  CHECK(with_crl->Check(*b_chain, "fed", "node-b", core::SystemClock::Get().NowMs() + 1000).error ==
        CertError::kRevoked);
  store.reset();

  // Passphrase change: the old passphrase stops working.
  s.Ok({"passphrase", "change", "--store", "node-b.db"}, "pw", {"NODELINK_NEW_PASSPHRASE=pw2"});
  ToolResult old = s.Run({"show", "--store", "node-b.db"}, "pw");
  CHECK(old.exit_code == 1);
  CHECK(old.err.find("wrong passphrase") != std::string::npos);
  s.Ok({"show", "--store", "node-b.db"}, "pw2");
}

TEST_CASE("bad usage exits 2, failed operations exit 1 with a clear message") {
  Session s;
  s.Ok({"ca", "init", "--dir", "ca", "--federation", "fed"}, "");
  s.Ok({"init", "--store", "a.db", "--federation", "fed", "--node-id", "node-a", "--out-csr",
        "a.csr", "--kdf", "minimal"});

  struct Case {
    std::vector<std::string> args;
    std::string passphrase;
    std::string expect;  // in stderr
  };
  std::vector<Case> usage = {
      {{}, "pw", "subcommand"},
      {{"frobnicate"}, "pw", ""},
      {{"show"}, "pw", "--store"},
      {{"show", "--store", "a.db", "--bogus"}, "pw", ""},
      {{"show", "--store", "a.db"}, "", "NODELINK_PASSPHRASE"},
      {{"show", "--store", "a.db", "--key-file", "k", "--passphrase-file", "p"}, "pw", "not both"},
      {{"init", "--store", "b.db", "--federation", "fed", "--node-id", "b", "--out-csr", "b.csr",
        "--kdf", "fast"},
       "pw",
       ""},
      {{"ca", "sign", "--dir", "ca", "--csr", "a.csr", "--out", "x.pem", "--dns", "h"},
       "",
       "--hub"},
      {{"ca", "sign", "--dir", "ca", "--csr", "a.csr", "--out", "x.pem", "--days", "0"}, "", ""},
      {{"ca", "revoke", "--dir", "ca"}, "", "exactly one"},
      {{"trust", "pin", "--store", "a.db", "node-b", "abcd"}, "pw", "32 bytes"},
      {{"trust", "pin", "--store", "a.db", "node-b"}, "pw", "fingerprint"},
      {{"trust", "policy", "--store", "a.db", "paranoid"}, "pw", ""},
      {{"channels", "drop", "--store", "a.db"}, "pw", "PEER or --all"},
      {{"channels", "drop", "--store", "a.db", "node-b", "--all"}, "pw", "PEER or --all"},
      {{"passphrase", "change", "--store", "a.db"}, "pw", "NODELINK_NEW_PASSPHRASE"},
  };
  for (const Case& c : usage) {
    CAPTURE(c.args.empty() ? std::string("<none>") : c.args[0]);
    CAPTURE(c.args.size() > 1 ? c.args[1] : std::string());
    ToolResult r = s.Run(c.args, c.passphrase);
    CHECK(r.exit_code == 2);
    CHECK(r.err.find(c.expect) != std::string::npos);
  }

  Bytes before = testing::ReadAll(s.File("a.db"));
  std::vector<Case> failures = {
      {{"show", "--store", "a.db"}, "wrong", "wrong passphrase"},
      {{"show", "--store", "missing.db"}, "pw", "no key store at"},
      {{"show", "--store", "a.csr"}, "pw", "not a nodelink key store"},
      {{"init", "--store", "a.db", "--federation", "fed", "--node-id", "node-a", "--out-csr",
        "x.csr"},
       "pw",
       "already exists"},
      {{"init", "--store", "c.db", "--federation", "fed", "--node-id", "bad id", "--out-csr",
        "c.csr", "--kdf", "minimal"},
       "pw",
       "not a valid node id"},
      {{"import-cert", "--store", "a.db", "--cert", "ca/ca.pem"}, "pw", "another key"},
      {{"import-cert", "--store", "a.db", "--cert", "nothing.pem"}, "pw", "nothing.pem"},
      {{"ca", "sign", "--dir", "ca", "--csr", "a.csr", "--out", "x.pem", "--node-id", "node-z"},
       "",
       "--node-id"},
      {{"ca", "sign", "--dir", "nowhere", "--csr", "a.csr", "--out", "x.pem"}, "", "CA directory"},
      {{"ca", "init", "--dir", "ca", "--federation", "fed"}, "", "not empty"},
      {{"ca", "revoke", "--dir", "ca", "--serial", "abcdef"}, "", "no certificate with serial"},
      {{"trust", "reset", "--store", "a.db", "node-b"}, "pw", "no first-use record"},
      {{"trust", "researcher", "--store", "a.db", "*"}, "pw", "cannot be a researcher"},
      {{"contexts", "drop", "--store", "a.db", "ctx-1"}, "pw", "no context"},
  };
  for (const Case& c : failures) {
    CAPTURE(c.args[0]);
    CAPTURE(c.args.size() > 1 ? c.args[1] : std::string());
    ToolResult r = s.Run(c.args, c.passphrase);
    CHECK(r.exit_code == 1);
    CHECK(r.err.find(c.expect) != std::string::npos);
    CHECK(r.err.find("nodelink-keys: ") == 0);
  }
  // A CSR whose signature does not verify is refused by the CA.
  Bytes csr = *ReadCsrFile(s.File("a.csr"));
  csr[csr.size() - 3] ^= 1;
  testing::WriteAll(s.File("bad.csr"), csr);
  ToolResult bad = s.Run({"ca", "sign", "--dir", "ca", "--csr", "bad.csr", "--out", "x.pem"}, "");
  CHECK(bad.exit_code == 1);
  CHECK(bad.err.find("signature does not verify") != std::string::npos);
  CHECK_FALSE(FileExists(s.File("x.pem")));
  // None of the failures changed the store.
  CHECK(testing::ReadAll(s.File("a.db")) == before);
}

TEST_CASE("--help works on every subcommand") {
  Session s;
  std::vector<std::vector<std::string>> commands = {
      {},
      {"ca"},
      {"ca", "init"},
      {"ca", "sign"},
      {"ca", "revoke"},
      {"ca", "crl"},
      {"ca", "list"},
      {"hub-key"},
      {"init"},
      {"csr"},
      {"import-cert"},
      {"import-crl"},
      {"show"},
      {"trust"},
      {"trust", "list"},
      {"trust", "pin"},
      {"trust", "unpin"},
      {"trust", "reset"},
      {"trust", "policy"},
      {"trust", "approve"},
      {"trust", "researcher"},
      {"channels"},
      {"channels", "list"},
      {"channels", "renew"},
      {"channels", "drop"},
      {"contexts"},
      {"contexts", "list"},
      {"contexts", "drop"},
      {"passphrase"},
      {"passphrase", "change"},
  };
  for (std::vector<std::string> args : commands) {
    std::string shown = args.empty() ? "<root>" : args.back();
    CAPTURE(shown);
    args.push_back("--help");
    ToolResult r = s.Run(args, "");
    CHECK(r.exit_code == 0);
    CHECK(r.out.find("Usage:") != std::string::npos);
  }
}

}  // namespace
}  // namespace nodelink::keys

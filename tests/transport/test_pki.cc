#include "test_pki.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace nodelink::testing {

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

namespace {

void WriteFile(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::trunc);
  out << content;
}

}  // namespace

void TestPki::Run(const std::string& command) const {
  const std::string full = command + " >>" + dir_ + "/openssl.log 2>&1";
  if (std::system(full.c_str()) != 0) {
    std::fprintf(stderr, "TestPki: failed: %s (see %s/openssl.log)\n", command.c_str(),
                 dir_.c_str());
    std::abort();
  }
}

TestPki::TestPki(std::string dir, std::string federation)
    : dir_(std::move(dir)), federation_(std::move(federation)) {
  ca_cert_ = dir_ + "/ca.pem";
  ca_key_ = dir_ + "/ca.key";
  Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + ca_key_ +
      " -out " + ca_cert_ + " -days 30 -subj '/CN=" + federation_ +
      " test CA' -addext basicConstraints=critical,CA:TRUE"
      " -addext keyUsage=critical,keyCertSign,cRLSign");
  ca_config_ = dir_ + "/ca.cnf";
  WriteFile(dir_ + "/index.txt", "");
  WriteFile(dir_ + "/crlnumber", "01\n");
  WriteFile(ca_config_, "[ ca ]\ndefault_ca = test_ca\n[ test_ca ]\ndatabase = " + dir_ +
                            "/index.txt\ncrlnumber = " + dir_ +
                            "/crlnumber\ncertificate = " + ca_cert_ + "\nprivate_key = " + ca_key_ +
                            "\ndefault_md = sha256\ndefault_crl_days = 30\n");
  hub_ = Issue("hub",
               "subjectAltName=IP:127.0.0.1\nkeyUsage=critical,digitalSignature\n"
               "extendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n");
}

IssuedCert TestPki::Issue(const std::string& name, const std::string& extensions) {
  const std::string base = dir_ + "/" + name + "-" + std::to_string(serial_);
  IssuedCert c{base + ".pem", base + ".key"};
  WriteFile(base + ".ext", extensions);
  Run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " + c.key_path +
      " -out " + base + ".csr -subj '/CN=" + name + "'");
  Run("openssl x509 -req -in " + base + ".csr -CA " + ca_cert_ + " -CAkey " + ca_key_ +
      " -set_serial " + std::to_string(1000 + serial_) + " -days 30 -sha256 -extfile " + base +
      ".ext -out " + c.cert_path);
  ++serial_;
  return c;
}

IssuedCert TestPki::IssueParticipant(const std::string& node_id, std::vector<std::string> uris,
                                     const std::string& eku) {
  if (uris.empty()) uris.push_back("nodelink://" + federation_ + "/" + node_id);
  std::string san = "subjectAltName=";
  for (size_t i = 0; i < uris.size(); ++i) san += (i ? ",URI:" : "URI:") + uris[i];
  return Issue(node_id, san + "\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=" + eku +
                            "\nbasicConstraints=critical,CA:FALSE\n");
}

std::string TestPki::Revoke(const IssuedCert& cert) {
  Run("openssl ca -config " + ca_config_ + " -revoke " + cert.cert_path);
  return CrlPath();
}

std::string TestPki::CrlPath() {
  const std::string path = dir_ + "/crl.pem";
  Run("openssl ca -config " + ca_config_ + " -gencrl -out " + path);
  return path;
}

transport::TlsMaterial TestPki::Material(const IssuedCert& cert) const {
  transport::TlsMaterial m;
  m.ca_pem = ReadWholeFile(ca_cert_);
  m.cert_chain_pem = ReadWholeFile(cert.cert_path);
  m.key_pem = core::SecretBytes::CopyOf(AsBytes(ReadWholeFile(cert.key_path)));
  return m;
}

transport::HubServerTls TestPki::HubTls(bool with_crl) {
  transport::HubServerTls t;
  t.cert_chain_pem = ReadWholeFile(hub_.cert_path);
  t.key_pem = core::SecretBytes::CopyOf(AsBytes(ReadWholeFile(hub_.key_path)));
  t.ca_pem = ReadWholeFile(ca_cert_);
  if (with_crl) t.crl_pem = ReadWholeFile(CrlPath());
  return t;
}

}  // namespace nodelink::testing

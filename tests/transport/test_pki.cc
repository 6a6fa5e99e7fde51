// The parts of TestPki shared by both implementations.
#include "test_pki.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "process/temp_dir.h"

namespace nodelink::testing {

TestPki& Pki() {
  static process::TempDir dir("nodelink-pki");
  static TestPki pki(dir.path(), "fed");
  return pki;
}

TestPki& OtherPki() {
  static process::TempDir dir("nodelink-pki-other");
  static TestPki pki(dir.path(), "fed");
  return pki;
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteWholeFile(const std::string& path, std::string_view content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out.flush()) {
    std::fprintf(stderr, "TestPki: cannot write %s\n", path.c_str());
    std::abort();
  }
}

transport::TlsMaterial TestPki::Material(const IssuedCert& cert) const {
  transport::TlsMaterial m;
  m.ca_pem = ReadWholeFile(ca_path_);
  m.cert_chain_pem = ReadWholeFile(cert.cert_path);
  std::string key = ReadWholeFile(cert.key_path);
  m.key_pem = core::SecretBytes::CopyOf(AsBytes(key));
  core::WipeString(key);
  return m;
}

transport::HubServerTls TestPki::HubTls(bool with_crl) {
  transport::HubServerTls t;
  t.cert_chain_pem = ReadWholeFile(hub_.cert_path);
  std::string key = ReadWholeFile(hub_.key_path);
  t.key_pem = core::SecretBytes::CopyOf(AsBytes(key));
  core::WipeString(key);
  t.ca_pem = ReadWholeFile(ca_path_);
  if (with_crl) t.crl_pem = ReadWholeFile(CrlPath());
  return t;
}

}  // namespace nodelink::testing

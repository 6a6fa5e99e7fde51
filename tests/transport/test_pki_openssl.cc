// STOPGAP TestPki, used until src/keys (branch `keys`) is in main; then delete this file (the
// CMakeLists picks test_pki_keys.cc as soon as the nodelink::keys target exists). The CA, the hub
// certificate, custom participant certificates and CRLs come from the openssl command line;
// FastParticipant() signs with OpenSSL calls, for tests that need a thousand participants.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <cstdlib>

#include "test_pki.h"

namespace nodelink::testing {

struct TestPki::Impl {
  std::string dir;
  std::string ca_key;
  std::string ca_config;
  int serial = 1;

  void Run(const std::string& command) const {
    const std::string full = command + " >>" + dir + "/openssl.log 2>&1";
    if (std::system(full.c_str()) != 0) {
      std::fprintf(stderr, "TestPki: failed: %s (see %s/openssl.log)\n", command.c_str(),
                   dir.c_str());
      std::abort();
    }
  }

  IssuedCert Issue(const std::string& ca_cert, const std::string& name,
                   const std::string& extensions) {
    const std::string base = dir + "/" + name + "-" + std::to_string(serial);
    IssuedCert c{base + ".pem", base + ".key"};
    WriteWholeFile(base + ".ext", extensions);
    Run("openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
        c.key_path + " -out " + base + ".csr -subj '/CN=" + name + "'");
    Run("openssl x509 -req -in " + base + ".csr -CA " + ca_cert + " -CAkey " + ca_key +
        " -set_serial " + std::to_string(1000 + serial) + " -days 30 -sha256 -extfile " + base +
        ".ext -out " + c.cert_path);
    ++serial;
    return c;
  }
};

TestPki::TestPki(std::string dir, std::string federation)
    : dir_(std::move(dir)), federation_(std::move(federation)), impl_(std::make_unique<Impl>()) {
  impl_->dir = dir_;
  ca_path_ = dir_ + "/ca.pem";
  impl_->ca_key = dir_ + "/ca.key";
  impl_->Run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout " +
             impl_->ca_key + " -out " + ca_path_ + " -days 30 -subj '/CN=" + federation_ +
             " test CA' -addext basicConstraints=critical,CA:TRUE"
             " -addext keyUsage=critical,keyCertSign,cRLSign");
  impl_->ca_config = dir_ + "/ca.cnf";
  WriteWholeFile(dir_ + "/index.txt", "");
  WriteWholeFile(dir_ + "/crlnumber", "01\n");
  WriteWholeFile(impl_->ca_config, "[ ca ]\ndefault_ca = test_ca\n[ test_ca ]\ndatabase = " + dir_ +
                                       "/index.txt\ncrlnumber = " + dir_ +
                                       "/crlnumber\ncertificate = " + ca_path_ +
                                       "\nprivate_key = " + impl_->ca_key +
                                       "\ndefault_md = sha256\ndefault_crl_days = 30\n");
  hub_ = impl_->Issue(ca_path_, "hub",
                      "subjectAltName=IP:127.0.0.1\nkeyUsage=critical,digitalSignature\n"
                      "extendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n");
}

TestPki::~TestPki() = default;

IssuedCert TestPki::IssueParticipant(const std::string& node_id, std::vector<std::string> uris) {
  if (uris.empty()) uris.push_back("nodelink://" + federation_ + "/" + node_id);
  std::string san = "subjectAltName=";
  for (size_t i = 0; i < uris.size(); ++i) san += (i ? ",URI:" : "URI:") + uris[i];
  return impl_->Issue(ca_path_, node_id,
                      san +
                          "\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth"
                          "\nbasicConstraints=critical,CA:FALSE\n");
}

std::string TestPki::Revoke(const IssuedCert& cert) {
  impl_->Run("openssl ca -config " + impl_->ca_config + " -revoke " + cert.cert_path);
  return CrlPath();
}

std::string TestPki::CrlPath() {
  const std::string path = dir_ + "/crl.pem";
  impl_->Run("openssl ca -config " + impl_->ca_config + " -gencrl -out " + path);
  return path;
}

namespace {

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<size_t>(n));
}

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "TestPki: %s failed\n", what);
    std::abort();
  }
}

}  // namespace

transport::TlsMaterial TestPki::FastParticipant(const std::string& node_id) {
  BIO* in = BIO_new_file(impl_->ca_key.c_str(), "r");
  EVP_PKEY* ca_key = PEM_read_bio_PrivateKey(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  in = BIO_new_file(ca_path_.c_str(), "r");
  X509* ca = PEM_read_bio_X509(in, nullptr, nullptr, nullptr);
  BIO_free(in);
  Check(ca_key != nullptr && ca != nullptr, "load CA");
  EVP_PKEY* key = EVP_EC_gen("P-256");
  Check(key != nullptr, "EVP_EC_gen");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 100000 + impl_->serial++);
  X509_set_issuer_name(cert, X509_get_subject_name(ca));
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(node_id.c_str()), -1, -1, 0);
  X509_gmtime_adj(X509_getm_notBefore(cert), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 24 * 3600);
  X509_set_pubkey(cert, key);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, ca, cert, nullptr, nullptr, 0);
  const std::string san = "URI:nodelink://" + federation_ + "/" + node_id;
  const std::pair<int, std::string> exts[] = {{NID_subject_alt_name, san},
                                              {NID_key_usage, "critical,digitalSignature"},
                                              {NID_ext_key_usage, "clientAuth"},
                                              {NID_basic_constraints, "critical,CA:FALSE"}};
  for (const auto& [nid, value] : exts) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
    Check(ext != nullptr && X509_add_ext(cert, ext, -1) == 1, "extension");
    X509_EXTENSION_free(ext);
  }
  Check(X509_sign(cert, ca_key, EVP_sha256()) > 0, "X509_sign");
  BIO* cert_pem = BIO_new(BIO_s_mem());
  BIO* key_pem = BIO_new(BIO_s_mem());
  Check(PEM_write_bio_X509(cert_pem, cert) == 1 &&
            PEM_write_bio_PrivateKey(key_pem, key, nullptr, nullptr, 0, nullptr, nullptr) == 1,
        "PEM");
  transport::TlsMaterial m;
  m.ca_pem = ReadWholeFile(ca_path_);
  m.cert_chain_pem = BioToString(cert_pem);
  std::string k = BioToString(key_pem);
  m.key_pem = core::SecretBytes::CopyOf(AsBytes(k));
  core::WipeString(k);
  BIO_free(cert_pem);
  BIO_free(key_pem);
  X509_free(cert);
  EVP_PKEY_free(key);
  X509_free(ca);
  EVP_PKEY_free(ca_key);
  return m;
}

}  // namespace nodelink::testing

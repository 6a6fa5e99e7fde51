#include "transport/tls_files.h"

#include <openssl/pem.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/ossl.h"
#include "fmt/format.h"

namespace nodelink::transport {

absl::Status WriteCrlDirectory(const std::string& crl_pem, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError("cannot create CRL directory " + dir + ": " + ec.message());
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.find(".r") != std::string::npos) std::filesystem::remove(entry.path(), ec);
  }
  core::BioPtr bio(BIO_new_mem_buf(crl_pem.data(), static_cast<int>(crl_pem.size())));
  if (!bio) return core::OpenSslError("BIO_new_mem_buf");
  std::map<unsigned long, int> next_index;  // several CRLs of one issuer: .r0, .r1, ...
  int written = 0;
  for (;;) {
    core::X509CrlPtr crl(PEM_read_bio_X509_CRL(bio.get(), nullptr, nullptr, nullptr));
    if (!crl) break;
    int ok = 0;
    const unsigned long hash =
        X509_NAME_hash_ex(X509_CRL_get_issuer(crl.get()), nullptr, nullptr, &ok);
    if (ok != 1) return core::OpenSslError("X509_NAME_hash_ex");
    const std::string path = fmt::format("{}/{:08x}.r{}", dir, hash, next_index[hash]++);
    core::BioPtr out(BIO_new_file(path.c_str(), "w"));
    if (!out || PEM_write_bio_X509_CRL(out.get(), crl.get()) != 1) {
      return core::OpenSslError("write " + path, absl::StatusCode::kUnavailable);
    }
    ++written;
  }
  core::ClearOpenSslErrors();  // the end of the PEM stream leaves a "no start line" error
  if (written == 0) {
    return absl::InvalidArgumentError(
        "the CRL file holds no PEM X509 CRL; pass the CA's CRL in "
        "PEM form");
  }
  return absl::OkStatus();
}

}  // namespace nodelink::transport

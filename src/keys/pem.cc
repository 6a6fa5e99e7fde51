#include "keys/pem.h"

#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/status.h"
#include "keys/files.h"

namespace nodelink::keys {

namespace {

template <typename T, T* (*D2i)(T**, const unsigned char**, long), void (*Free)(T*)>
absl::StatusOr<core::OsslPtr<T, Free>> ParseExactDer(ByteView der, std::string_view what) {
  if (der.empty()) return absl::InvalidArgumentError(std::string(what) + " is empty");
  const unsigned char* p = der.data();
  core::OsslPtr<T, Free> obj(D2i(nullptr, &p, static_cast<long>(der.size())));
  if (obj == nullptr) {
    return core::OpenSslError(std::string(what) + " is not valid DER",
                              absl::StatusCode::kInvalidArgument);
  }
  if (p != der.data() + der.size()) {
    return absl::InvalidArgumentError(std::string(what) + " has trailing bytes after its DER");
  }
  return obj;
}

template <typename T, int (*I2d)(const T*, unsigned char**)>
absl::StatusOr<Bytes> EncodeDer(const T* obj, std::string_view what) {
  unsigned char* der = nullptr;
  int len = I2d(obj, &der);
  if (len <= 0 || der == nullptr) return core::OpenSslError("encoding " + std::string(what));
  Bytes out(der, der + len);
  OPENSSL_free(der);
  return out;
}

}  // namespace

absl::StatusOr<core::X509Ptr> ParseCertificateDer(ByteView der) {
  return ParseExactDer<X509, d2i_X509, X509_free>(der, "certificate");
}

absl::StatusOr<core::X509ReqPtr> ParseCsrDer(ByteView der) {
  return ParseExactDer<X509_REQ, d2i_X509_REQ, X509_REQ_free>(der, "certificate signing request");
}

absl::StatusOr<core::X509CrlPtr> ParseCrlDer(ByteView der) {
  return ParseExactDer<X509_CRL, d2i_X509_CRL, X509_CRL_free>(der, "CRL");
}

absl::StatusOr<Bytes> CertificateToDer(X509* cert) {
  return EncodeDer<X509, i2d_X509>(cert, "certificate");
}
absl::StatusOr<Bytes> CsrToDer(X509_REQ* csr) {
  return EncodeDer<X509_REQ, i2d_X509_REQ>(csr, "certificate signing request");
}
absl::StatusOr<Bytes> CrlToDer(X509_CRL* crl) {
  return EncodeDer<X509_CRL, i2d_X509_CRL>(crl, "CRL");
}

std::string DerToPem(std::string_view label, ByteView der) {
  core::BioPtr bio(BIO_new(BIO_s_mem()));
  std::string name(label);
  if (bio == nullptr ||
      PEM_write_bio(bio.get(), name.c_str(), "", der.data(), static_cast<long>(der.size())) <= 0) {
    core::Die("PEM encoding into a memory BIO failed");
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(len));
}

std::string DersToPem(std::string_view label, const std::vector<Bytes>& ders) {
  std::string out;
  for (const Bytes& der : ders) out += DerToPem(label, der);
  return out;
}

absl::StatusOr<std::vector<Bytes>> DecodePemOrDer(std::string_view text, std::string_view label) {
  std::vector<Bytes> out;
  if (text.find("-----BEGIN ") == std::string_view::npos) {
    if (text.empty()) return absl::InvalidArgumentError("input is empty");
    out.emplace_back(text.begin(), text.end());
    return out;
  }
  core::BioPtr bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
  if (bio == nullptr) return core::OpenSslError("reading PEM");
  while (true) {
    char* name = nullptr;
    char* header = nullptr;
    unsigned char* data = nullptr;
    long len = 0;
    if (PEM_read_bio(bio.get(), &name, &header, &data, &len) != 1) {
      core::ClearOpenSslErrors();  // the end of the input reads as an error
      break;
    }
    std::string_view got(name);
    bool label_ok = got == label || (label == kPemCsr && got == "NEW CERTIFICATE REQUEST");
    std::string got_copy(got);
    if (label_ok) out.emplace_back(data, data + len);
    OPENSSL_free(name);
    OPENSSL_free(header);
    OPENSSL_free(data);
    if (!label_ok) {
      return absl::InvalidArgumentError("PEM block is \"" + got_copy + "\", expected \"" +
                                        std::string(label) + "\"");
    }
  }
  if (out.empty()) {
    return absl::InvalidArgumentError("no valid PEM block \"" + std::string(label) + "\" found");
  }
  return out;
}

absl::StatusOr<std::vector<Bytes>> ReadCertificatesFile(const std::string& path) {
  NL_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
  auto ders = DecodePemOrDer(text, kPemCertificate);
  if (!ders.ok())
    return absl::InvalidArgumentError(path + ": " + std::string(ders.status().message()));
  for (const Bytes& der : *ders) {
    auto cert = ParseCertificateDer(der);
    if (!cert.ok()) {
      return absl::InvalidArgumentError(path + ": " + std::string(cert.status().message()));
    }
  }
  return ders;
}

absl::StatusOr<Bytes> ReadCertificateFile(const std::string& path) {
  NL_ASSIGN_OR_RETURN(std::vector<Bytes> ders, ReadCertificatesFile(path));
  if (ders.size() != 1) {
    return absl::InvalidArgumentError(path + " holds " + std::to_string(ders.size()) +
                                      " certificates; expected exactly one");
  }
  return std::move(ders[0]);
}

absl::StatusOr<Bytes> ReadCsrFile(const std::string& path) {
  NL_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
  auto ders = DecodePemOrDer(text, kPemCsr);
  if (!ders.ok())
    return absl::InvalidArgumentError(path + ": " + std::string(ders.status().message()));
  if (ders->size() != 1) return absl::InvalidArgumentError(path + " holds more than one CSR");
  auto csr = ParseCsrDer((*ders)[0]);
  if (!csr.ok())
    return absl::InvalidArgumentError(path + ": " + std::string(csr.status().message()));
  return std::move((*ders)[0]);
}

absl::StatusOr<Bytes> ReadCrlFile(const std::string& path) {
  NL_ASSIGN_OR_RETURN(std::string text, ReadSmallFile(path));
  auto ders = DecodePemOrDer(text, kPemCrl);
  if (!ders.ok())
    return absl::InvalidArgumentError(path + ": " + std::string(ders.status().message()));
  if (ders->size() != 1) return absl::InvalidArgumentError(path + " holds more than one CRL");
  auto crl = ParseCrlDer((*ders)[0]);
  if (!crl.ok())
    return absl::InvalidArgumentError(path + ": " + std::string(crl.status().message()));
  return std::move((*ders)[0]);
}

}  // namespace nodelink::keys

#include "keys/cert_parts.h"

#include <arpa/inet.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstring>
#include <ctime>

#include "core/sha256.h"

namespace nodelink::keys {

std::string NameToString(const X509_NAME* name) {
  core::BioPtr bio(BIO_new(BIO_s_mem()));
  if (bio == nullptr || X509_NAME_print_ex(bio.get(), name, 0, XN_FLAG_RFC2253) < 0) {
    core::ClearOpenSslErrors();
    return "";
  }
  char* data = nullptr;
  long len = BIO_get_mem_data(bio.get(), &data);
  return len > 0 ? std::string(data, static_cast<size_t>(len)) : "";
}

std::string NameEntryUtf8(const X509_NAME* name, int nid) {
  int idx = X509_NAME_get_index_by_NID(name, nid, -1);
  if (idx < 0) return "";
  const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, idx));
  unsigned char* utf8 = nullptr;
  int len = ASN1_STRING_to_UTF8(&utf8, data);
  if (len < 0) {
    core::ClearOpenSslErrors();
    return "";
  }
  std::string out(reinterpret_cast<char*>(utf8), static_cast<size_t>(len));
  OPENSSL_free(utf8);
  return out;
}

Bytes SerialBytes(const X509* cert) {
  const ASN1_INTEGER* serial = X509_get0_serialNumber(cert);
  core::BnPtr bn(ASN1_INTEGER_to_BN(serial, nullptr));
  if (bn == nullptr) {
    core::ClearOpenSslErrors();
    return {};
  }
  Bytes out(static_cast<size_t>(BN_num_bytes(bn.get())));
  BN_bn2bin(bn.get(), out.data());
  return out;
}

absl::StatusOr<uint64_t> Asn1TimeToMs(const ASN1_TIME* t) {
  struct tm tm {};
  if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
    return core::OpenSslError("certificate has an unreadable time",
                              absl::StatusCode::kInvalidArgument);
  }
  time_t secs = timegm(&tm);
  if (secs < 0) return uint64_t{0};
  return static_cast<uint64_t>(secs) * 1000;
}

absl::StatusOr<Bytes> SpkiFingerprint(X509* cert) {
  unsigned char* der = nullptr;
  int len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
  if (len <= 0 || der == nullptr) return core::OpenSslError("encoding a public key failed");
  Bytes fp = core::Sha256Bytes(ByteView(der, static_cast<size_t>(len)));
  OPENSSL_free(der);
  return fp;
}

namespace {

std::string IaString(const ASN1_IA5STRING* s, bool* has_nul) {
  std::string out(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                  static_cast<size_t>(ASN1_STRING_length(s)));
  if (has_nul != nullptr && out.find('\0') != std::string::npos) *has_nul = true;
  return out;
}

std::string IpString(const ASN1_OCTET_STRING* s) {
  const unsigned char* p = ASN1_STRING_get0_data(s);
  int len = ASN1_STRING_length(s);
  char buf[INET6_ADDRSTRLEN] = {0};
  if (len == 4)
    inet_ntop(AF_INET, p, buf, sizeof(buf));
  else if (len == 16)
    inet_ntop(AF_INET6, p, buf, sizeof(buf));
  else
    return "<malformed IP of " + std::to_string(len) + " bytes>";
  return buf;
}

}  // namespace

SubjectAltNames ReadSubjectAltNames(X509* cert) {
  SubjectAltNames out;
  int crit = 0;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, nullptr));
  if (names == nullptr) {
    out.duplicated = crit == -2;
    out.present = crit == -2;
    core::ClearOpenSslErrors();
    return out;
  }
  out.present = true;
  for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(names, i);
    int type = 0;
    void* value = GENERAL_NAME_get0_value(gen, &type);
    switch (type) {
      case GEN_URI:
        out.uris.push_back(IaString(static_cast<ASN1_IA5STRING*>(value), &out.uri_has_nul));
        break;
      case GEN_DNS:
        out.dns.push_back(IaString(static_cast<ASN1_IA5STRING*>(value), nullptr));
        break;
      case GEN_IPADD:
        out.ips.push_back(IpString(static_cast<ASN1_OCTET_STRING*>(value)));
        break;
      case GEN_EMAIL:
        out.other.push_back("email:" + IaString(static_cast<ASN1_IA5STRING*>(value), nullptr));
        break;
      case GEN_DIRNAME:
        out.other.push_back("dirName");
        break;
      case GEN_OTHERNAME:
        out.other.push_back("otherName");
        break;
      default:
        out.other.push_back("type " + std::to_string(type));
        break;
    }
  }
  GENERAL_NAMES_free(names);
  return out;
}

}  // namespace nodelink::keys

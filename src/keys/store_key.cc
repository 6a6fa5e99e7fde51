#include "keys/store_key.h"

#include <sodium.h>

#include <algorithm>

#include "core/crypto_init.h"
#include "core/hkdf.h"
#include "core/random.h"
#include "core/status.h"
#include "keys/files.h"

namespace nodelink::keys {

namespace {
constexpr uint8_t kSealFormat = 0x01;
constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
static_assert(kSealOverheadBytes == 1 + kNonceBytes + kTagBytes);
static_assert(kStoreSaltBytes == crypto_pwhash_SALTBYTES);
static_assert(kStoreKeyBytes == crypto_aead_xchacha20poly1305_ietf_KEYBYTES);

std::string SealAd(std::string_view context) {
  return "nodelink/1 keystore:" + std::string(context);
}
}  // namespace

KdfParams KdfParamsOf(KdfProfile profile) {
  switch (profile) {
    case KdfProfile::kMinimal:
      return {crypto_pwhash_argon2id_OPSLIMIT_MIN, crypto_pwhash_argon2id_MEMLIMIT_MIN};
    case KdfProfile::kInteractive:
      return {crypto_pwhash_argon2id_OPSLIMIT_INTERACTIVE,
              crypto_pwhash_argon2id_MEMLIMIT_INTERACTIVE};
    case KdfProfile::kModerate:
      return {crypto_pwhash_argon2id_OPSLIMIT_MODERATE, crypto_pwhash_argon2id_MEMLIMIT_MODERATE};
  }
  return KdfParamsOf(kDefaultKdfProfile);
}

std::string_view KdfProfileName(KdfProfile profile) {
  switch (profile) {
    case KdfProfile::kMinimal:
      return "minimal";
    case KdfProfile::kInteractive:
      return "interactive";
    case KdfProfile::kModerate:
      return "moderate";
  }
  return "interactive";
}

absl::StatusOr<KdfProfile> ParseKdfProfile(std::string_view name) {
  if (name == "minimal") return KdfProfile::kMinimal;
  if (name == "interactive") return KdfProfile::kInteractive;
  if (name == "moderate") return KdfProfile::kModerate;
  return absl::InvalidArgumentError("KDF profile \"" + std::string(name) +
                                    "\" is not one of minimal, interactive, moderate");
}

absl::Status CheckKdfParams(const KdfParams& params) {
  KdfParams max = KdfParamsOf(KdfProfile::kModerate);
  if (params.opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN || params.opslimit > 4 * max.opslimit ||
      params.memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN || params.memlimit > max.memlimit) {
    return absl::InvalidArgumentError(
        "store header asks for Argon2id parameters outside the supported range (opslimit " +
        std::to_string(params.opslimit) + ", memlimit " + std::to_string(params.memlimit) +
        "); the file is corrupt or not from nodelink");
  }
  return absl::OkStatus();
}

StoreKeySource StoreKeySource::Passphrase(core::SecretBytes passphrase) {
  StoreKeySource s;
  s.passphrase_ = std::move(passphrase);
  return s;
}

StoreKeySource StoreKeySource::KeyFile(std::string path) {
  StoreKeySource s;
  s.key_file_ = true;
  s.path_ = std::move(path);
  return s;
}

absl::Status CreateKeyFile(const std::string& path) {
  core::SecretBytes key = core::RandomSecret(kKeyFileBytes);
  return WriteNewSecretFile(path, key.ExposeSecret());
}

absl::StatusOr<core::SecretBytes> ReadPassphraseFile(const std::string& path) {
  NL_ASSIGN_OR_RETURN(core::SecretBytes raw, ReadSecretFile(path));
  ByteView text = raw.ExposeSecret();
  size_t len = text.size();
  if (len > 0 && text[len - 1] == '\n') --len;
  if (len > 0 && text[len - 1] == '\r') --len;
  if (len == 0) return absl::InvalidArgumentError("passphrase file " + path + " is empty");
  return core::SecretBytes::CopyOf(text.first(len));
}

absl::StatusOr<core::SecretBytes> DeriveStoreKey(const StoreKeySource& source, ByteView salt,
                                                 const KdfParams& params) {
  core::EnsureCryptoInitialized();
  if (salt.size() != kStoreSaltBytes) {
    return absl::InvalidArgumentError("store salt has the wrong size; the file is corrupt");
  }
  core::SecretBytes key = core::SecretBytes::Locked(kStoreKeyBytes);
  if (source.is_key_file()) {
    const std::string& path = source.key_file_path();
    NL_RETURN_IF_ERROR(CheckPrivateFileMode(path));
    NL_ASSIGN_OR_RETURN(core::SecretBytes file_key, ReadSecretFile(path, kKeyFileBytes + 1));
    if (file_key.size() != kKeyFileBytes) {
      return absl::InvalidArgumentError("key file " + path + " does not hold exactly " +
                                        std::to_string(kKeyFileBytes) +
                                        " bytes; it is not a nodelink key file");
    }
    NL_ASSIGN_OR_RETURN(
        core::SecretBytes derived,
        core::HkdfSha256(file_key, salt, AsBytes("nodelink/1 keystore key-file"), kStoreKeyBytes));
    std::copy(derived.ExposeSecret().begin(), derived.ExposeSecret().end(),
              key.MutableSecret().begin());
    return key;
  }
  NL_RETURN_IF_ERROR(CheckKdfParams(params));
  ByteView pass = source.passphrase().ExposeSecret();
  if (pass.empty()) return absl::InvalidArgumentError("the passphrase is empty");
  if (crypto_pwhash(key.MutableSecret().data(), key.size(),
                    reinterpret_cast<const char*>(pass.data()), pass.size(), salt.data(),
                    params.opslimit, static_cast<size_t>(params.memlimit),
                    crypto_pwhash_ALG_ARGON2ID13) != 0) {
    return absl::ResourceExhaustedError(
        "Argon2id failed: not enough memory for the store's KDF parameters (" +
        std::to_string(params.memlimit / 1024) + " KiB)");
  }
  return key;
}

StoreSealer::StoreSealer(core::SecretBytes key) : key_(std::move(key)) {
  if (key_.size() != kStoreKeyBytes) core::Die("StoreSealer: store key must be 32 bytes");
  core::EnsureCryptoInitialized();
}

absl::StatusOr<Bytes> StoreSealer::Seal(ByteView plain, std::string_view context) const {
  std::string ad = SealAd(context);
  Bytes out(kSealOverheadBytes + plain.size());
  out[0] = kSealFormat;
  core::RandomFill(std::span<uint8_t>(out.data() + 1, kNonceBytes));
  unsigned long long written = 0;
  static const uint8_t kEmpty = 0;
  if (crypto_aead_xchacha20poly1305_ietf_encrypt(
          out.data() + 1 + kNonceBytes, &written, plain.empty() ? &kEmpty : plain.data(),
          plain.size(), reinterpret_cast<const uint8_t*>(ad.data()), ad.size(), nullptr,
          out.data() + 1, key_.ExposeSecret().data()) != 0 ||
      written != plain.size() + kTagBytes) {
    return absl::InternalError("sealing a store value failed");
  }
  return out;
}

absl::StatusOr<core::SecretBytes> StoreSealer::Unseal(ByteView sealed,
                                                      std::string_view context) const {
  if (sealed.size() < kSealOverheadBytes || sealed[0] != kSealFormat) {
    return absl::InvalidArgumentError("store value for \"" + std::string(context) +
                                      "\" is not a sealed value; the store is corrupt");
  }
  std::string ad = SealAd(context);
  core::SecretBytes plain(sealed.size() - kSealOverheadBytes);
  unsigned long long written = 0;
  uint8_t dummy = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(
          plain.empty() ? &dummy : plain.MutableSecret().data(), &written, nullptr,
          sealed.data() + 1 + kNonceBytes, sealed.size() - 1 - kNonceBytes,
          reinterpret_cast<const uint8_t*>(ad.data()), ad.size(), sealed.data() + 1,
          key_.ExposeSecret().data()) != 0) {
    return absl::PermissionDeniedError(
        "store value for \"" + std::string(context) +
        "\" does not open with this store key: it was tampered with, moved from another row, "
        "or sealed under another passphrase");
  }
  return plain;
}

}  // namespace nodelink::keys

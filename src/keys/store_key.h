// The key store's key: where it comes from (a passphrase through Argon2id, or a random key file)
// and how values are sealed with it (XChaCha20-Poly1305, the value's place bound as AD).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "core/bytes.h"
#include "core/secret_bytes.h"

namespace nodelink::keys {

// Argon2id cost profiles (libsodium crypto_pwhash). The parameters are stored in the store
// header, so a store opens with the profile it was created with.
enum class KdfProfile {
  kMinimal,      // opslimit 1, memlimit 8 KiB: FOR TESTS AND DEMOS ONLY, no brute-force resistance
  kInteractive,  // libsodium INTERACTIVE: opslimit 2, 64 MiB (default)
  kModerate,     // libsodium MODERATE: opslimit 3, 256 MiB
};
inline constexpr KdfProfile kDefaultKdfProfile = KdfProfile::kInteractive;

struct KdfParams {
  uint64_t opslimit = 0;
  uint64_t memlimit = 0;  // bytes
};
KdfParams KdfParamsOf(KdfProfile profile);
std::string_view KdfProfileName(KdfProfile profile);  // "minimal", "interactive", "moderate"
[[nodiscard]] absl::StatusOr<KdfProfile> ParseKdfProfile(std::string_view name);
// Refuses parameters outside what libsodium accepts or above kModerate's cost (a hostile store
// header must not make Open allocate gigabytes).
[[nodiscard]] absl::Status CheckKdfParams(const KdfParams& params);

inline constexpr size_t kStoreKeyBytes = 32;
inline constexpr size_t kStoreSaltBytes = 16;  // crypto_pwhash_SALTBYTES
inline constexpr size_t kKeyFileBytes = 32;

// Where the store key comes from. Move-only (holds the passphrase).
class StoreKeySource {
 public:
  // A passphrase, as read by the caller from NODELINK_PASSPHRASE or a --passphrase-file.
  static StoreKeySource Passphrase(core::SecretBytes passphrase);
  // A key file of kKeyFileBytes random bytes (see CreateKeyFile).
  static StoreKeySource KeyFile(std::string path);

  bool is_key_file() const { return key_file_; }
  const std::string& key_file_path() const { return path_; }
  const core::SecretBytes& passphrase() const { return passphrase_; }
  std::string_view kind() const { return key_file_ ? "key-file" : "passphrase"; }

 private:
  StoreKeySource() = default;
  bool key_file_ = false;
  std::string path_;
  core::SecretBytes passphrase_;
};

// Creates a key file of kKeyFileBytes random bytes with mode 0600; AlreadyExists if `path`
// exists (a key file is never overwritten).
[[nodiscard]] absl::Status CreateKeyFile(const std::string& path);

// Reads a passphrase file; one trailing "\n" or "\r\n" is dropped (editors add it).
// InvalidArgument if the passphrase is empty.
[[nodiscard]] absl::StatusOr<core::SecretBytes> ReadPassphraseFile(const std::string& path);

// Derives the 32-byte store key: Argon2id(passphrase, salt, params) for a passphrase;
// HKDF-SHA256(key file, salt, "nodelink/1 keystore key-file") for a key file (already 256 random
// bits: no stretching needed). The key file must have mode 0600 and exactly kKeyFileBytes.
// Result in locked memory.
[[nodiscard]] absl::StatusOr<core::SecretBytes> DeriveStoreKey(const StoreKeySource& source,
                                                               ByteView salt,
                                                               const KdfParams& params);

// Seals and opens values with the store key: crypto_aead_xchacha20poly1305_ietf with a random
// 24-byte nonce; AD = "nodelink/1 keystore:" || context, so a sealed value cannot be moved to
// another row or column. Format: 0x01 || nonce || ciphertext || tag (41 bytes of overhead).
// Immutable; thread-safe.
class StoreSealer {
 public:
  explicit StoreSealer(core::SecretBytes key);

  [[nodiscard]] absl::StatusOr<Bytes> Seal(ByteView plain, std::string_view context) const;
  // PermissionDenied if the value does not open under this key and context (tampered, moved,
  // or sealed with another store key); InvalidArgument if it is not a sealed value at all.
  [[nodiscard]] absl::StatusOr<core::SecretBytes> Unseal(ByteView sealed,
                                                         std::string_view context) const;

 private:
  core::SecretBytes key_;
};

inline constexpr size_t kSealOverheadBytes = 1 + 24 + 16;

}  // namespace nodelink::keys

// federated/release/signing_key.h — Ed25519 keys (OpenSSL) that sign and
// verify release manifests. Keys are PEM files: PKCS#8 for the private key,
// SubjectPublicKeyInfo for the public one. A key is named by its key id, the
// first 16 hex digits of the SHA-256 of its raw 32-byte public key, so a
// signature says which key made it without carrying the key.
#ifndef EDGELLM_FEDERATED_RELEASE_SIGNING_KEY_H_
#define EDGELLM_FEDERATED_RELEASE_SIGNING_KEY_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace edgellm::release {

struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const;
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyDeleter>;

// Thread-safe: signing does not change the key.
class SigningKey {
 public:
  // A fresh key from the system's random source.
  static absl::StatusOr<SigningKey> Generate();
  // InvalidArgument when `pem` is not an Ed25519 private key.
  static absl::StatusOr<SigningKey> FromPem(std::string_view pem);
  static absl::StatusOr<SigningKey> Load(const std::string& path);

  // The 64-byte signature of `message`.
  std::string Sign(std::string_view message) const;
  std::string PrivatePem() const;
  std::string PublicPem() const;
  const std::string& key_id() const { return key_id_; }

 private:
  SigningKey(PkeyPtr key, std::string key_id) : key_(std::move(key)), key_id_(std::move(key_id)) {}
  std::shared_ptr<EVP_PKEY> key_;
  std::string key_id_;
};

// Thread-safe.
class PublicKey {
 public:
  // InvalidArgument when `pem` is not an Ed25519 public key.
  static absl::StatusOr<PublicKey> FromPem(std::string_view pem);
  static absl::StatusOr<PublicKey> Load(const std::string& path);

  // True when `signature` is this key's signature of `message`.
  bool Verify(std::string_view message, std::string_view signature) const;
  const std::string& key_id() const { return key_id_; }

 private:
  PublicKey(PkeyPtr key, std::string key_id) : key_(std::move(key)), key_id_(std::move(key_id)) {}
  std::shared_ptr<EVP_PKEY> key_;
  std::string key_id_;
};

std::string Base64Encode(std::string_view bytes);
// InvalidArgument for text that is not padded standard base64.
absl::StatusOr<std::string> Base64Decode(std::string_view text);

}  // namespace edgellm::release

#endif  // EDGELLM_FEDERATED_RELEASE_SIGNING_KEY_H_

// federated/protocol/sha256.h — SHA-256 (OpenSSL) in hex, of bytes or of a
// file read in pieces: artifacts are addressed by it, updates and base models
// are identified by it.
#ifndef EDGELLM_FEDERATED_PROTOCOL_SHA256_H_
#define EDGELLM_FEDERATED_PROTOCOL_SHA256_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace edgellm::federated {

// Incremental: Update any number of times, then Finish once.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(std::string_view bytes);
  // Lower-case hex of the digest.
  std::string Finish();

 private:
  struct Context;
  std::unique_ptr<Context> context_;
};

std::string Sha256Hex(std::string_view bytes);
// NotFound when the file cannot be read.
absl::StatusOr<std::string> Sha256OfFile(const std::string& path);
// True for 64 lower-case hex digits.
bool IsSha256Hex(std::string_view text);

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_PROTOCOL_SHA256_H_

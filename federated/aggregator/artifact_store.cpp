#include "federated/aggregator/artifact_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>

#include "common/atomic_file.h"
#include "common/read_file.h"
#include "common/str_cat.h"
#include "federated/protocol/sha256.h"

namespace edgellm::federated {

std::string ArtifactStore::PathOf(const std::string& sha256) const {
  return (std::filesystem::path(dir_) / sha256.substr(0, 2) / sha256).string();
}

absl::StatusOr<std::string> ArtifactStore::Put(std::string_view bytes) const {
  const std::string sha = Sha256Hex(bytes);
  const std::string path = PathOf(sha);
  if (std::filesystem::exists(path)) return sha;
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return absl::InternalError(StrCat(path, ": ", ec.message()));
  if (absl::Status s = WriteFileAtomically(path, bytes); !s.ok()) return s;
  return sha;
}

absl::Status ArtifactStore::Adopt(const std::string& from, const std::string& sha256) const {
  const std::string path = PathOf(sha256);
  std::error_code ec;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
  if (ec) return absl::InternalError(StrCat(path, ": ", ec.message()));
  // The source is fsynced before it becomes visible under its name; the
  // directory after, so the rename itself survives a crash.
  const int fd = ::open(from.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0) ::close(fd);
    return absl::InternalError(StrCat(from, ": cannot be synced"));
  }
  ::close(fd);
  std::filesystem::rename(from, path, ec);
  if (ec) return absl::InternalError(StrCat("moving ", from, " to ", path, ": ", ec.message()));
  const int dir = ::open(std::filesystem::path(path).parent_path().c_str(), O_RDONLY | O_DIRECTORY);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ArtifactStore::Get(const std::string& sha256) const {
  auto bytes = ReadFileToString(PathOf(sha256), "artifact");
  if (!bytes.ok()) return bytes.status();
  if (Sha256Hex(*bytes) != sha256) return absl::DataLossError(StrCat("artifact ", sha256, " does not match its hash"));
  return bytes;
}

}  // namespace edgellm::federated

// common/atomic_file.h — write a file so that readers see the old or the new
// content, never a torn mix: write a temporary beside it, fsync, rename, fsync
// the directory.
#ifndef EDGELLM_COMMON_ATOMIC_FILE_H_
#define EDGELLM_COMMON_ATOMIC_FILE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace edgellm {

// A sequential sink handed to the producer of an atomic write. Not thread-safe.
class FileSink {
 public:
  virtual ~FileSink() = default;
  // Appends `bytes`; returns an error naming the file on a failed write.
  virtual absl::Status Append(absl::Span<const uint8_t> bytes) = 0;
  // Bytes appended so far.
  virtual uint64_t size() const = 0;
};

// Calls `produce` with a sink over a temporary file in the directory of `path`,
// then makes the result visible at `path` atomically. If `produce` fails, or any
// write, fsync or rename fails, the temporary is removed, `path` is untouched and
// the error is returned. Blocks on disk I/O.
absl::Status WriteFileAtomically(const std::string& path,
                                 const std::function<absl::Status(FileSink&)>& produce);

// fsyncs the file or directory at `path`: after a rename into a directory,
// sync the directory to make the new name durable.
absl::Status SyncPath(const std::string& path);

// Convenience form for content already in memory.
absl::Status WriteFileAtomically(const std::string& path, std::string_view content);

}  // namespace edgellm

#endif  // EDGELLM_COMMON_ATOMIC_FILE_H_

// common/read_file.h — a whole file into a string.
#ifndef EDGELLM_COMMON_READ_FILE_H_
#define EDGELLM_COMMON_READ_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace edgellm {

// The bytes of the file at `path`. NotFound "<what> <path>: cannot be read"
// when it cannot be opened; `what` names the file for the reader of the
// error (a flag or a config key).
absl::StatusOr<std::string> ReadFileToString(const std::string& path, std::string_view what = "file");

}  // namespace edgellm

#endif  // EDGELLM_COMMON_READ_FILE_H_

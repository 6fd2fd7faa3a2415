#include "common/read_file.h"

#include <fstream>
#include <sstream>

#include "common/str_cat.h"

namespace edgellm {

absl::StatusOr<std::string> ReadFileToString(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(edgellm::StrCat(what, " ", path, ": cannot be read"));
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace edgellm

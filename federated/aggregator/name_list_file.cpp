#include "federated/aggregator/name_list_file.h"

#include <sys/stat.h>

#include <fstream>

#include "absl/strings/ascii.h"

namespace edgellm::federated {

bool NameListFile::Contains(const std::string& name) {
  if (path_.empty()) return false;
  struct stat info {};
  const bool exists = ::stat(path_.c_str(), &info) == 0;
  MutexLock lock(&mu_);
  const off_t size = exists ? info.st_size : -1;
  const bool changed = size != size_ || info.st_mtim.tv_sec != modified_.tv_sec ||
                       info.st_mtim.tv_nsec != modified_.tv_nsec;
  if (changed) {
    names_.clear();
    std::ifstream in(path_);
    for (std::string line; std::getline(in, line);) {
      const std::string entry(absl::StripAsciiWhitespace(line.substr(0, line.find('#'))));
      if (!entry.empty()) names_.insert(entry);
    }
    modified_ = info.st_mtim;
    size_ = size;
  }
  return names_.contains(name);
}

}  // namespace edgellm::federated

// federated/aggregator/name_list_file.h — a file of names, one per line
// ('#' starts a comment), read again whenever it changes, so that an
// operator's edit takes effect at the next call, without a restart: the
// revoked certificates (a stolen device is refused at once, without waiting
// for its certificate to expire) and each model's allowed devices.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_NAME_LIST_FILE_H_
#define EDGELLM_FEDERATED_AGGREGATOR_NAME_LIST_FILE_H_

#include <ctime>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace edgellm::federated {

class NameListFile {
 public:
  // "" and a file that does not exist (yet) list nobody.
  explicit NameListFile(std::string path) : path_(std::move(path)) {}

  // Whether `name` is listed, after reading the file again if it changed.
  bool Contains(const std::string& name);
  const std::string& path() const { return path_; }

 private:
  const std::string path_;
  Mutex mu_;
  struct timespec modified_ ABSL_GUARDED_BY(mu_) = {};
  off_t size_ ABSL_GUARDED_BY(mu_) = -1;
  std::set<std::string> names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_NAME_LIST_FILE_H_

// federated/aggregator/revocation_list.h — certificates the aggregator no
// longer accepts, by common name: a file of names, one per line ('#' starts a
// comment). A stolen device is revoked by adding its name; the file is read
// again whenever it changes, so the next call of that device is refused,
// without a restart and without waiting for its certificate to expire.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_REVOCATION_LIST_H_
#define EDGELLM_FEDERATED_AGGREGATOR_REVOCATION_LIST_H_

#include <ctime>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace edgellm::federated {

class RevocationList {
 public:
  // "" revokes nobody. A file that does not exist (yet) revokes nobody.
  explicit RevocationList(std::string path) : path_(std::move(path)) {}

  // Whether `name` is revoked, after reading the file again if it changed.
  bool Revoked(const std::string& name);

 private:
  const std::string path_;
  absl::Mutex mu_;
  struct timespec modified_ ABSL_GUARDED_BY(mu_) = {};
  off_t size_ ABSL_GUARDED_BY(mu_) = -1;
  std::set<std::string> names_ ABSL_GUARDED_BY(mu_);
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_REVOCATION_LIST_H_

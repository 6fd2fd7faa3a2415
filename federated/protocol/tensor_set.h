// federated/protocol/tensor_set.h — an adapter (or a difference of two) as an
// ordered list of named matrices: what devices send and the aggregator sums.
// Plain data, nothing of the engine: federated/adapter/adapter_tensors.h makes
// sets from engine adapters and applies them back.
#ifndef EDGELLM_FEDERATED_PROTOCOL_TENSOR_SET_H_
#define EDGELLM_FEDERATED_PROTOCOL_TENSOR_SET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace edgellm::federated {

struct NamedTensor {
  std::string name;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;  // rows × cols, row-major
};
using TensorSet = std::vector<NamedTensor>;

// OK when `got` has exactly `expected`'s tensors, in order, with its shapes;
// else InvalidArgument naming the first difference.
absl::Status CheckSameLayout(const TensorSet& expected, const TensorSet& got);
// after − before, for sets of the same layout.
absl::StatusOr<TensorSet> Difference(const TensorSet& after, const TensorSet& before);
// A copy of `layout` with every value zero.
TensorSet ZerosLike(const TensorSet& layout);
// The L2 norm of all values together.
double L2Norm(const TensorSet& set);
// The name of the first tensor holding a NaN or an infinity, or "".
std::string FirstNonFinite(const TensorSet& set);
int64_t ValueCount(const TensorSet& set);

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_PROTOCOL_TENSOR_SET_H_

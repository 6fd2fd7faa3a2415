// federated/protocol/tensor_set.h — an adapter (or a difference of two) as an
// ordered list of named matrices: what devices send and the aggregator sums.
//
// Names are "layers.N.<target>.lora_A" / "lora_B", in layer-then-target order;
// B rows are in the engine's (GGUF) order, so sets are only ever combined with
// sets made the same way.
#ifndef EDGELLM_FEDERATED_PROTOCOL_TENSOR_SET_H_
#define EDGELLM_FEDERATED_PROTOCOL_TENSOR_SET_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/engine/lora_adapter.h"

namespace edgellm::federated {

struct NamedTensor {
  std::string name;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<float> values;  // rows × cols, row-major
};
using TensorSet = std::vector<NamedTensor>;

std::string AdapterTensorName(int32_t layer, engine::LoraTarget target, bool b);

// The adapter's tensors; with include_a false only the B matrices (the part
// that trains under FFA-LoRA).
TensorSet AdapterTensors(const engine::LoraAdapter& adapter, bool include_a);
// adapter += factor × delta, for every tensor of `delta` (a subset of the
// adapter's, e.g. B only). InvalidArgument naming an unknown tensor or a
// wrong shape; the adapter is unchanged then.
absl::Status AddToAdapter(engine::LoraAdapter& adapter, const TensorSet& delta, float factor = 1.0f);
// Overwrites the adapter's tensors with `values` (same checks).
absl::Status SetAdapterTensors(engine::LoraAdapter& adapter, const TensorSet& values);

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

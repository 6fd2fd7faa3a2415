// federated/adapter/adapter_tensors.h — an engine LoRA adapter as the tensor
// set the federated protocol carries, and a set applied back to an adapter.
//
// Names are "layers.N.<target>.lora_A" / "lora_B", in layer-then-target order;
// B rows are in the engine's (GGUF) order, so sets are only ever combined with
// sets made the same way.
#ifndef EDGELLM_FEDERATED_ADAPTER_ADAPTER_TENSORS_H_
#define EDGELLM_FEDERATED_ADAPTER_ADAPTER_TENSORS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "daemon/engine/lora_adapter.h"
#include "federated/protocol/tensor_set.h"

namespace edgellm::federated {

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

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_ADAPTER_ADAPTER_TENSORS_H_

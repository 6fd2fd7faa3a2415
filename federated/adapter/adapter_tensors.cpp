#include "federated/adapter/adapter_tensors.h"

#include <map>

#include "common/str_cat.h"

namespace edgellm::federated {
namespace {

// Applies op(adapter_values, set_values) to the tensors of `set`, after
// checking every one of them exists in the adapter with the set's shape.
template <typename Op>
absl::Status ForAdapterTensors(engine::LoraAdapter& adapter, const TensorSet& set, Op op) {
  std::map<std::string, std::vector<float>*> by_name;
  const int64_t rank = adapter.config().rank;
  for (int32_t layer = 0; layer < adapter.n_layer(); ++layer) {
    for (engine::LoraTarget target : engine::AllLoraTargets()) {
      engine::LoraWeights* w = adapter.Find(layer, target);
      if (w == nullptr) continue;
      by_name[AdapterTensorName(layer, target, false)] = &w->a;
      by_name[AdapterTensorName(layer, target, true)] = &w->b;
    }
  }
  std::vector<std::vector<float>*> destinations;
  for (const NamedTensor& t : set) {
    auto it = by_name.find(t.name);
    if (it == by_name.end()) return absl::InvalidArgumentError(StrCat("tensor ", t.name, " is not in the adapter"));
    const bool is_b = t.name.ends_with("lora_B");
    const int64_t size = static_cast<int64_t>(it->second->size());
    const int64_t rows = is_b ? size / rank : rank;
    if (t.rows != rows || t.cols != size / rows || static_cast<int64_t>(t.values.size()) != size) {
      return absl::InvalidArgumentError(StrCat("tensor ", t.name, " is ", t.rows, "x", t.cols, "; the adapter's is ",
                                               rows, "x", size / rows));
    }
    destinations.push_back(it->second);
  }
  for (size_t i = 0; i < set.size(); ++i) op(*destinations[i], set[i].values);
  return absl::OkStatus();
}

}  // namespace

std::string AdapterTensorName(int32_t layer, engine::LoraTarget target, bool b) {
  return StrCat("layers.", layer, ".", engine::LoraTargetName(target), b ? ".lora_B" : ".lora_A");
}

TensorSet AdapterTensors(const engine::LoraAdapter& adapter, bool include_a) {
  TensorSet set;
  const int64_t rank = adapter.config().rank;
  for (int32_t layer = 0; layer < adapter.n_layer(); ++layer) {
    for (engine::LoraTarget target : engine::AllLoraTargets()) {
      const engine::LoraWeights* w = adapter.Find(layer, target);
      if (w == nullptr) continue;
      if (include_a) set.push_back({AdapterTensorName(layer, target, false), rank, w->in, w->a});
      set.push_back({AdapterTensorName(layer, target, true), w->out, rank, w->b});
    }
  }
  return set;
}

absl::Status AddToAdapter(engine::LoraAdapter& adapter, const TensorSet& delta, float factor) {
  return ForAdapterTensors(adapter, delta, [factor](std::vector<float>& to, const std::vector<float>& d) {
    for (size_t i = 0; i < to.size(); ++i) to[i] += factor * d[i];
  });
}

absl::Status SetAdapterTensors(engine::LoraAdapter& adapter, const TensorSet& values) {
  return ForAdapterTensors(adapter, values,
                           [](std::vector<float>& to, const std::vector<float>& v) { to = v; });
}

}  // namespace edgellm::federated

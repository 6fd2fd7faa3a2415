#include "federated/protocol/tensor_set.h"

#include <cmath>

#include "common/str_cat.h"

namespace edgellm::federated {

absl::Status CheckSameLayout(const TensorSet& expected, const TensorSet& got) {
  if (got.size() != expected.size()) {
    return absl::InvalidArgumentError(
        StrCat("the update has ", got.size(), " tensors; the round's adapter has ", expected.size()));
  }
  for (size_t i = 0; i < got.size(); ++i) {
    const NamedTensor& e = expected[i];
    const NamedTensor& g = got[i];
    if (g.name != e.name) {
      return absl::InvalidArgumentError(StrCat("tensor ", i, " is ", g.name, "; expected ", e.name));
    }
    if (g.rows != e.rows || g.cols != e.cols || g.values.size() != e.values.size()) {
      return absl::InvalidArgumentError(
          StrCat("tensor ", g.name, " is ", g.rows, "x", g.cols, "; expected ", e.rows, "x", e.cols));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<TensorSet> Difference(const TensorSet& after, const TensorSet& before) {
  if (absl::Status s = CheckSameLayout(before, after); !s.ok()) return s;
  TensorSet delta = after;
  for (size_t t = 0; t < delta.size(); ++t) {
    for (size_t i = 0; i < delta[t].values.size(); ++i) delta[t].values[i] -= before[t].values[i];
  }
  return delta;
}

TensorSet ZerosLike(const TensorSet& layout) {
  TensorSet zeros;
  zeros.reserve(layout.size());
  for (const NamedTensor& t : layout) {
    zeros.push_back({t.name, t.rows, t.cols, std::vector<float>(t.values.size(), 0.0f)});
  }
  return zeros;
}

double L2Norm(const TensorSet& set) {
  double sum = 0.0;
  for (const NamedTensor& t : set) {
    for (float v : t.values) sum += static_cast<double>(v) * v;
  }
  return std::sqrt(sum);
}

std::string FirstNonFinite(const TensorSet& set) {
  for (const NamedTensor& t : set) {
    for (float v : t.values) {
      if (!std::isfinite(v)) return t.name;
    }
  }
  return "";
}

int64_t ValueCount(const TensorSet& set) {
  int64_t n = 0;
  for (const NamedTensor& t : set) n += static_cast<int64_t>(t.values.size());
  return n;
}

}  // namespace edgellm::federated

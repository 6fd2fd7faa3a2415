#include "daemon/train/held_out_set.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/str_cat.h"
#include "daemon/engine/fast_exp.h"
#include "daemon/train/dataset.h"

namespace edgellm::train {

absl::StatusOr<HeldOutSet> HeldOutSet::Load(const std::string& path, const engine::Tokenizer& tokenizer,
                                            int32_t max_length) {
  DatasetOptions options;
  options.max_length = max_length;
  options.eval_fraction = 0.0;
  auto data = LoadJsonlDataset(path, tokenizer, options);
  if (!data.ok()) return data.status();
  // Packed rows are cut back into their examples: each is run on its own.
  std::vector<HeldOutExample> examples;
  for (const PackedRow& row : data->train) {
    for (size_t i = 0; i < row.tokens.size(); ++i) {
      if (i == 0 || row.segments[i] != row.segments[i - 1]) examples.emplace_back();
      examples.back().tokens.push_back(row.tokens[i]);
      examples.back().labels.push_back(row.labels[i]);
    }
  }
  if (examples.empty()) return absl::InvalidArgumentError(StrCat(path, ": no held-out examples"));
  return HeldOutSet(std::move(examples));
}

absl::StatusOr<LossSum> HeldOutSet::ExampleLoss(const engine::LlamaModel& model, const HeldOutExample& example,
                                                const engine::LoraAdapter* adapter) {
  const int32_t vocab = model.config().n_vocab;
  const size_t row_size = static_cast<size_t>(vocab);
  auto cache = model.NewCache(static_cast<int32_t>(example.tokens.size()));
  if (!cache.ok()) return cache.status();
  // The example goes through in chunks on one cache, so its logits never
  // take more than kChunkRows rows: a whole signed example of 4096 tokens
  // would otherwise hold 2.5 GB of logits on a 152k-token vocabulary.
  constexpr size_t kChunkRows = 64;
  std::vector<float> logits;
  std::vector<float> shifted(row_size);
  const absl::Span<const engine::TokenId> tokens(example.tokens);
  LossSum sum;
  for (size_t begin = 0; begin < tokens.size(); begin += kChunkRows) {
    const size_t rows = std::min(kChunkRows, tokens.size() - begin);
    if (absl::Status s = model.Forward(tokens.subspan(begin, rows), cache->get(), true, &logits, adapter); !s.ok()) {
      return s;
    }
    // Each labelled row's log-sum-exp with the engine's vectorized exp (a
    // call of std::exp per logit was most of an example's time).
    for (size_t r = 0; r < rows; ++r) {
      const engine::TokenId label = example.labels[begin + r];
      if (label < 0) continue;
      const float* row = logits.data() + r * row_size;
      const float max = *std::max_element(row, row + vocab);
      for (size_t v = 0; v < row_size; ++v) shifted[v] = row[v] - max;
      engine::ExpInPlace(shifted.data(), vocab);
      double exp_sum = 0.0;
      for (float e : shifted) exp_sum += e;
      sum.total += static_cast<double>(max) + std::log(exp_sum) - row[label];
      ++sum.tokens;
    }
  }
  return sum;
}

absl::StatusOr<double> HeldOutSet::MeanLoss(const engine::LlamaModel& model,
                                            const engine::LoraAdapter* adapter) const {
  LossSum sum;
  for (const HeldOutExample& example : examples_) {
    absl::StatusOr<LossSum> one = ExampleLoss(model, example, adapter);
    if (!one.ok()) return one.status();
    sum.Add(*one);
  }
  if (sum.tokens == 0) return absl::InvalidArgumentError("held-out set: no labelled tokens");
  return sum.total / static_cast<double>(sum.tokens);
}

}  // namespace edgellm::train

#include "federated/aggregator/evaluator.h"

#include <cmath>

#include "common/str_cat.h"
#include "daemon/train/dataset.h"

namespace edgellm::federated {

absl::StatusOr<std::unique_ptr<Evaluator>> Evaluator::Create(const engine::LlamaModel& model, const std::string& path,
                                                             int32_t max_length) {
  train::DatasetOptions options;
  options.max_length = max_length;
  options.eval_fraction = 0.0;
  auto data = train::LoadJsonlDataset(path, model.tokenizer(), options);
  if (!data.ok()) return data.status();
  // Packed rows are cut back into their examples: each is run on its own.
  std::vector<Example> examples;
  for (const train::PackedRow& row : data->train) {
    for (size_t i = 0; i < row.tokens.size(); ++i) {
      if (i == 0 || row.segments[i] != row.segments[i - 1]) examples.emplace_back();
      examples.back().tokens.push_back(row.tokens[i]);
      examples.back().labels.push_back(row.labels[i]);
    }
  }
  if (examples.empty()) return absl::InvalidArgumentError(StrCat(path, ": no evaluation examples"));
  return std::unique_ptr<Evaluator>(new Evaluator(model, std::move(examples)));
}

absl::StatusOr<double> Evaluator::Loss(const engine::LoraAdapter* adapter) const {
  const int32_t vocab = model_.config().n_vocab;
  double total = 0.0;
  int64_t count = 0;
  std::vector<float> logits;
  for (const Example& e : examples_) {
    auto cache = model_.NewCache(static_cast<int32_t>(e.tokens.size()));
    if (!cache.ok()) return cache.status();
    if (absl::Status s = model_.Forward(e.tokens, cache->get(), true, &logits, adapter); !s.ok()) return s;
    for (size_t i = 0; i < e.tokens.size(); ++i) {
      if (e.labels[i] < 0) continue;
      const float* row = logits.data() + i * static_cast<size_t>(vocab);
      double max = row[0];
      for (int32_t v = 1; v < vocab; ++v) max = std::max<double>(max, row[v]);
      double sum = 0.0;
      for (int32_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
      total += max + std::log(sum) - row[e.labels[i]];
      ++count;
    }
  }
  if (count == 0) return absl::InvalidArgumentError("evaluation: no labelled tokens");
  return total / static_cast<double>(count);
}

}  // namespace edgellm::federated

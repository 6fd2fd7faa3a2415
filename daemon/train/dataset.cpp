#include "daemon/train/dataset.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>

#include "common/hashing.h"
#include "common/read_file.h"
#include "common/str_cat.h"
#include "common/status_macros.h"

namespace edgellm::train {
namespace {

// One tokenized line: its tokens and which of them are learned.
struct Example {
  std::vector<TokenId> tokens;
  std::vector<uint8_t> learned;  // learned[i]: predicting tokens[i] counts in the loss
};

std::string_view Trimmed(std::string_view line) {
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.remove_suffix(1);
  while (!line.empty() && std::isspace(static_cast<unsigned char>(line.front()))) line.remove_prefix(1);
  return line;
}

// The example of one JSONL line, or the reason it cannot be one.
absl::StatusOr<Example> ParseLine(std::string_view line, const engine::Tokenizer& tokenizer) {
  const nlohmann::json json = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) return absl::InvalidArgumentError("not valid JSON");
  if (!json.is_object()) return absl::InvalidArgumentError("not a JSON object");
  auto string_field = [&](const char* key) -> const nlohmann::json* {
    auto it = json.find(key);
    return it != json.end() && it->is_string() ? &*it : nullptr;
  };
  const nlohmann::json* text = string_field("text");
  const nlohmann::json* prompt = string_field("prompt");
  const nlohmann::json* completion = string_field("completion");
  Example example;
  size_t first_learned = 1;  // the first token has nothing before it to be predicted from
  if (text != nullptr && prompt == nullptr && completion == nullptr) {
    if (text->get_ref<const std::string&>().empty()) return absl::InvalidArgumentError("the text is empty");
    example.tokens = tokenizer.Encode(text->get<std::string>(), /*add_special=*/true, /*parse_special=*/false);
  } else if (text == nullptr && prompt != nullptr && completion != nullptr) {
    const std::string p = prompt->get<std::string>();
    example.tokens = tokenizer.Encode(p + completion->get<std::string>(), true, false);
    const std::vector<TokenId> prompt_only = tokenizer.Encode(p, true, false);
    // The completion is what the prompt's own tokens do not already cover.
    size_t common = 0;
    while (common < prompt_only.size() && common < example.tokens.size() &&
           prompt_only[common] == example.tokens[common]) {
      ++common;
    }
    if (common == example.tokens.size()) return absl::InvalidArgumentError("the completion adds no tokens");
    first_learned = std::max<size_t>(common, 1);
  } else {
    return absl::InvalidArgumentError(
        "expected {\"text\": string} or {\"prompt\": string, \"completion\": string}");
  }
  if (tokenizer.eos_id() >= 0) example.tokens.push_back(tokenizer.eos_id());
  if (example.tokens.size() < 2) return absl::InvalidArgumentError("the text has no tokens");
  example.learned.assign(example.tokens.size(), 0);
  std::fill(example.learned.begin() + static_cast<std::ptrdiff_t>(first_learned), example.learned.end(), 1);
  return example;
}

// Packs examples in the given order into rows of at most `max_length`
// tokens, cutting longer ones into pieces.
std::vector<PackedRow> Pack(const std::vector<Example>& examples, const std::vector<size_t>& order,
                            int32_t max_length) {
  std::vector<PackedRow> rows;
  PackedRow row;
  auto close_row = [&] {
    if (!row.tokens.empty()) rows.push_back(std::move(row));
    row = PackedRow();
  };
  for (size_t index : order) {
    const Example& e = examples[index];
    for (size_t begin = 0; begin < e.tokens.size(); begin += static_cast<size_t>(max_length)) {
      const size_t end = std::min(e.tokens.size(), begin + static_cast<size_t>(max_length));
      if (end - begin < 2) continue;  // a lone token predicts nothing
      if (row.tokens.size() + (end - begin) > static_cast<size_t>(max_length)) close_row();
      const int32_t segment = row.segments.empty() ? 0 : row.segments.back() + 1;
      for (size_t i = begin; i < end; ++i) {
        row.tokens.push_back(e.tokens[i]);
        row.labels.push_back(i + 1 < end && e.learned[i + 1] ? e.tokens[i + 1] : -1);
        row.positions.push_back(static_cast<int32_t>(i - begin));
        row.segments.push_back(segment);
      }
    }
  }
  close_row();
  return rows;
}

}  // namespace

int64_t PackedRow::loss_tokens() const {
  return std::count_if(labels.begin(), labels.end(), [](TokenId t) { return t >= 0; });
}

absl::StatusOr<Dataset> ParseJsonlDataset(std::string_view text, const engine::Tokenizer& tokenizer,
                                          const DatasetOptions& options) {
  if (options.max_length < 2) {
    return absl::InvalidArgumentError(edgellm::StrCat("data: max_length ", options.max_length, " is below 2"));
  }
  if (!(options.eval_fraction >= 0.0 && options.eval_fraction < 1.0)) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("data: eval_fraction ", options.eval_fraction, " is outside [0, 1)"));
  }
  Dataset data;
  std::vector<Example> examples;
  int64_t line_number = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = Trimmed(text.substr(start, end - start));
    start = end + 1;
    ++line_number;
    if (line.empty()) continue;
    absl::StatusOr<Example> example = ParseLine(line, tokenizer);
    if (!example.ok()) {
      data.problems.push_back({line_number, std::string(example.status().message())});
      continue;
    }
    examples.push_back(*std::move(example));
  }
  if (examples.empty()) {
    std::string first_problem;
    if (!data.problems.empty()) {
      first_problem = edgellm::StrCat(" (line ", data.problems[0].line, ": ", data.problems[0].reason, ")");
    }
    return absl::InvalidArgumentError(
        edgellm::StrCat("data: none of ", line_number, " lines is a usable example", first_problem));
  }
  data.examples = static_cast<int64_t>(examples.size());

  std::vector<size_t> order(examples.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(options.seed);
  // Fisher–Yates with the generator's raw output, so the order is the same everywhere.
  for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng() % i]);
  size_t held_out = 0;
  if (examples.size() >= 2 && options.eval_fraction > 0.0) {
    held_out = std::clamp<size_t>(static_cast<size_t>(std::llround(options.eval_fraction * examples.size())), 1,
                                  examples.size() - 1);
  }
  const std::vector<size_t> eval_order(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(held_out));
  const std::vector<size_t> train_order(order.begin() + static_cast<std::ptrdiff_t>(held_out), order.end());
  data.train = Pack(examples, train_order, options.max_length);
  data.eval = Pack(examples, eval_order, options.max_length);

  uint64_t hash = Fnv1a(text);
  hash = Fnv1a(&options.max_length, sizeof(options.max_length), hash);
  hash = Fnv1a(&options.eval_fraction, sizeof(options.eval_fraction), hash);
  data.fingerprint = Fnv1a(&options.seed, sizeof(options.seed), hash);
  return data;
}

absl::StatusOr<Dataset> LoadJsonlDataset(const std::string& path, const engine::Tokenizer& tokenizer,
                                         const DatasetOptions& options) {
  EDGELLM_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path, "training data"));
  return ParseJsonlDataset(text, tokenizer, options);
}

}  // namespace edgellm::train

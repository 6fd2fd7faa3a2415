// train/dataset.h — a node's local training data: JSONL lines of
// {"text": …} (every token is learned) or {"prompt": …, "completion": …}
// (only the completion and its end are learned), tokenized with the model's
// tokenizer, split into training and held-out examples with a seed, and
// packed into rows of at most max_length tokens.
//
// Packing keeps examples apart: each token carries its example's segment and
// its position within it, so the trainer's attention never crosses from one
// example into another and a packed row trains exactly as its examples would
// one by one. A malformed line is reported with its line number and skipped.
#ifndef EDGELLM_TRAIN_DATASET_H_
#define EDGELLM_TRAIN_DATASET_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/engine/tokenizer.h"

namespace edgellm::train {

using engine::TokenId;

// Tokens of one or more examples, at most max_length of them.
struct PackedRow {
  std::vector<TokenId> tokens;
  std::vector<TokenId> labels;      // the token to predict after each one, or -1: no loss here
  std::vector<int32_t> positions;   // within its example, from 0
  std::vector<int32_t> segments;    // which example of the row (0, 1, ...)

  int64_t loss_tokens() const;
};

struct DataProblem {
  int64_t line;  // 1-based
  std::string reason;
};

struct DatasetOptions {
  int32_t max_length = 256;     // tokens per packed row; a longer example is cut into pieces this long
  double eval_fraction = 0.1;   // share of the examples held out (at least one once there are two)
  uint64_t seed = 0;            // the split and the packing order
};

struct Dataset {
  std::vector<PackedRow> train;
  std::vector<PackedRow> eval;
  std::vector<DataProblem> problems;  // lines skipped, with the reason
  int64_t examples = 0;               // lines used
  uint64_t fingerprint = 0;           // of the text and the options: a checkpoint resumes only on the same data
};

// Parses JSONL `text` (`name` appears in problems' context). InvalidArgument
// when no line is usable or the options are bad.
absl::StatusOr<Dataset> ParseJsonlDataset(std::string_view text, const engine::Tokenizer& tokenizer,
                                          const DatasetOptions& options);
// Same, from a file; NotFound when it cannot be read.
absl::StatusOr<Dataset> LoadJsonlDataset(const std::string& path, const engine::Tokenizer& tokenizer,
                                         const DatasetOptions& options);

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_DATASET_H_

// federated/release/evaluation.h — how a release is judged by its answers.
//
// A release may carry, inside its signed manifest, an evaluation: a small
// held-out set (JSONL lines as devices train on: the mean loss per labelled
// token) and prompts whose greedy completion must begin with an expected text
// (exact match), with thresholds relative to the version the release
// replaces. A device runs it on both the candidate and the version it serves
// before it serves the candidate, so that a finite but worse version is
// caught where it would do harm; the figures go into its install report, and
// the aggregator judges them again.
#ifndef EDGELLM_FEDERATED_RELEASE_EVALUATION_H_
#define EDGELLM_FEDERATED_RELEASE_EVALUATION_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace edgellm::release {

// The bound on a release's held-out examples (they travel in its manifest).
inline constexpr size_t kMaxEvaluationExamplesBytes = 256 << 10;

struct ExactMatchCase {
  std::string prompt;
  std::string expected;    // the greedy completion must begin with this text
  int32_t max_tokens = 0;  // tokens generated; 0: enough for `expected` (its bytes, at most 64)
};

struct EvaluationSpec {
  // Held-out examples, {"text"} or {"prompt","completion"} lines; "": no loss.
  std::string examples_jsonl;
  int32_t max_length = 256;  // tokens per example
  // The candidate's mean loss may be at most this times the replaced
  // version's; 0: the loss is reported but not judged.
  double max_loss_ratio = 0.0;
  std::vector<ExactMatchCase> exact_match;
  // The candidate's share of exact matches may fall at most this far below
  // the replaced version's (0: not at all).
  double max_exact_match_drop = 0.0;

  bool empty() const { return examples_jsonl.empty() && exact_match.empty(); }
  // Compact JSON with sorted keys (a part of the signed manifest).
  std::string ToJson() const;
  // InvalidArgument naming what is malformed or over its bound: the examples
  // over 256 KiB, more than 64 prompts, a prompt over 4 KiB, an expected text
  // over 1 KiB, a ratio that is not a finite positive number.
  static absl::StatusOr<EvaluationSpec> FromJson(std::string_view json);
};

// What a device measured: the candidate against the version it replaces.
struct EvaluationFigures {
  double loss = 0.0;           // the candidate's mean loss per labelled token
  double baseline_loss = 0.0;  // the replaced version's
  int64_t examples = 0;        // 0: no loss was measured
  int32_t exact_matches = 0;
  int32_t baseline_exact_matches = 0;
  int32_t cases = 0;           // exact-match prompts
  double seconds = 0.0;        // the evaluation's time on the device

  std::string ToJson() const;
  static absl::StatusOr<EvaluationFigures> FromJson(std::string_view json);
};

// OK, or FailedPrecondition saying which figure fell below which threshold
// (or that figures the spec asks for are missing or not finite).
absl::Status Judge(const EvaluationSpec& spec, const EvaluationFigures& figures);

// "eval loss 2.31 vs 2.05 replaced (x1.13), exact match 3/4 vs 4/4, 1.2 s".
std::string DescribeFigures(const EvaluationFigures& figures);

}  // namespace edgellm::release

#endif  // EDGELLM_FEDERATED_RELEASE_EVALUATION_H_

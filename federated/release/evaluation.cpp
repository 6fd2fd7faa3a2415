#include "federated/release/evaluation.h"

#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/str_cat.h"

namespace edgellm::release {
namespace {

using Json = nlohmann::json;

constexpr size_t kMaxCases = 64;
constexpr size_t kMaxPromptBytes = 4 << 10;
constexpr size_t kMaxExpectedBytes = 1 << 10;
constexpr int32_t kMaxCaseTokens = 256;

absl::Status Bad(std::string_view what) { return absl::InvalidArgumentError(StrCat("release evaluation: ", what)); }

std::string Fixed(double value, int digits) {
  char text[64];
  std::snprintf(text, sizeof text, "%.*f", digits, value);
  return text;
}

}  // namespace

std::string EvaluationSpec::ToJson() const {
  Json cases = Json::array();
  for (const ExactMatchCase& c : exact_match) {
    cases.push_back({{"expected", c.expected}, {"max_tokens", c.max_tokens}, {"prompt", c.prompt}});
  }
  return Json{{"examples_jsonl", examples_jsonl},
              {"exact_match", cases},
              {"max_exact_match_drop", max_exact_match_drop},
              {"max_length", max_length},
              {"max_loss_ratio", max_loss_ratio}}
      .dump();
}

absl::StatusOr<EvaluationSpec> EvaluationSpec::FromJson(std::string_view text) {
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return Bad("not a JSON object");
  EvaluationSpec spec;
  try {
    spec.examples_jsonl = json.value("examples_jsonl", std::string());
    spec.max_length = json.value("max_length", 256);
    spec.max_loss_ratio = json.value("max_loss_ratio", 0.0);
    spec.max_exact_match_drop = json.value("max_exact_match_drop", 0.0);
    const Json cases = json.value("exact_match", Json::array());
    if (!cases.is_array()) return Bad("\"exact_match\" is not a list");
    if (cases.size() > kMaxCases) return Bad(StrCat("more than ", kMaxCases, " exact-match prompts"));
    for (const Json& c : cases) {
      if (!c.is_object()) return Bad("an exact-match case is not an object");
      ExactMatchCase one{c.at("prompt").get<std::string>(), c.at("expected").get<std::string>(),
                         c.value("max_tokens", 0)};
      if (one.prompt.empty() || one.prompt.size() > kMaxPromptBytes) {
        return Bad(StrCat("an exact-match prompt is empty or over ", kMaxPromptBytes, " bytes"));
      }
      if (one.expected.empty() || one.expected.size() > kMaxExpectedBytes) {
        return Bad(StrCat("an expected text is empty or over ", kMaxExpectedBytes, " bytes"));
      }
      if (one.max_tokens < 0 || one.max_tokens > kMaxCaseTokens) {
        return Bad(StrCat("max_tokens of an exact-match case is outside 0..", kMaxCaseTokens));
      }
      spec.exact_match.push_back(std::move(one));
    }
  } catch (const Json::exception&) {
    return Bad("a field has the wrong type, or an exact-match case lacks \"prompt\" or \"expected\"");
  }
  if (spec.examples_jsonl.size() > kMaxEvaluationExamplesBytes) {
    return Bad(StrCat("the held-out examples are over ", kMaxEvaluationExamplesBytes >> 10, " KiB"));
  }
  if (spec.max_length < 8 || spec.max_length > 4096) return Bad("max_length is outside 8..4096");
  if (!std::isfinite(spec.max_loss_ratio) || spec.max_loss_ratio < 0) {
    return Bad("max_loss_ratio is not a finite number >= 0");
  }
  if (spec.max_loss_ratio > 0 && spec.examples_jsonl.empty()) return Bad("max_loss_ratio without held-out examples");
  if (!(spec.max_exact_match_drop >= 0 && spec.max_exact_match_drop <= 1)) {
    return Bad("max_exact_match_drop is outside 0..1");
  }
  return spec;
}

std::string EvaluationFigures::ToJson() const {
  return Json{{"baseline_exact_matches", baseline_exact_matches},
              {"baseline_loss", baseline_loss},
              {"cases", cases},
              {"exact_matches", exact_matches},
              {"examples", examples},
              {"loss", loss},
              {"seconds", seconds}}
      .dump();
}

absl::StatusOr<EvaluationFigures> EvaluationFigures::FromJson(std::string_view text) {
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object()) return Bad("figures: not a JSON object");
  EvaluationFigures f;
  try {
    // A non-finite loss is written as null.
    const auto number = [&](const char* key) {
      const auto it = json.find(key);
      return it == json.end() || it->is_null() ? std::nan("") : it->get<double>();
    };
    f.loss = number("loss");
    f.baseline_loss = number("baseline_loss");
    f.seconds = json.value("seconds", 0.0);
    f.examples = json.value("examples", int64_t{0});
    f.exact_matches = json.value("exact_matches", 0);
    f.baseline_exact_matches = json.value("baseline_exact_matches", 0);
    f.cases = json.value("cases", 0);
  } catch (const Json::exception&) {
    return Bad("figures: a field has the wrong type");
  }
  return f;
}

absl::Status Judge(const EvaluationSpec& spec, const EvaluationFigures& figures) {
  if (!spec.examples_jsonl.empty()) {
    if (figures.examples == 0) return absl::FailedPreconditionError("no eval loss was measured");
    if (!std::isfinite(figures.loss)) return absl::FailedPreconditionError("the eval loss is not finite");
    if (spec.max_loss_ratio > 0 && std::isfinite(figures.baseline_loss) &&
        figures.loss > spec.max_loss_ratio * figures.baseline_loss) {
      return absl::FailedPreconditionError(
          StrCat("eval loss ", Fixed(figures.loss, 4), " is ", Fixed(figures.loss / figures.baseline_loss, 3),
                 "x the replaced version's ", Fixed(figures.baseline_loss, 4), " (at most ",
                 Fixed(spec.max_loss_ratio, 3), "x allowed)"));
    }
  }
  if (!spec.exact_match.empty()) {
    const int32_t cases = static_cast<int32_t>(spec.exact_match.size());
    if (figures.cases != cases) {
      return absl::FailedPreconditionError(
          StrCat("exact match was measured on ", figures.cases, " prompts, not the release's ", cases));
    }
    const double share = static_cast<double>(figures.exact_matches) / cases;
    const double baseline_share = static_cast<double>(figures.baseline_exact_matches) / cases;
    if (share < baseline_share - spec.max_exact_match_drop - 1e-9) {
      return absl::FailedPreconditionError(StrCat("exact match ", figures.exact_matches, "/", cases,
                                                  " fell below the replaced version's ", figures.baseline_exact_matches,
                                                  "/", cases, " (a drop of at most ",
                                                  Fixed(spec.max_exact_match_drop, 2), " allowed)"));
    }
  }
  return absl::OkStatus();
}

std::string DescribeFigures(const EvaluationFigures& f) {
  std::string text;
  if (f.examples > 0) {
    text = StrCat("eval loss ", Fixed(f.loss, 4), " vs ", Fixed(f.baseline_loss, 4), " replaced");
    if (std::isfinite(f.loss) && std::isfinite(f.baseline_loss) && f.baseline_loss > 0) {
      text += StrCat(" (x", Fixed(f.loss / f.baseline_loss, 3), ")");
    }
    text += StrCat(" on ", f.examples, " examples");
  }
  if (f.cases > 0) {
    if (!text.empty()) text += ", ";
    text += StrCat("exact match ", f.exact_matches, "/", f.cases, " vs ", f.baseline_exact_matches, "/", f.cases);
  }
  if (!text.empty()) text += StrCat(", ", Fixed(f.seconds, 1), " s");
  return text;
}

}  // namespace edgellm::release

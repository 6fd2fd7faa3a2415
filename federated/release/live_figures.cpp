#include "federated/release/live_figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/str_cat.h"

namespace edgellm::release {
namespace {

using Json = nlohmann::json;

std::string Percent(double share) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f%%", 100.0 * share);
  return text;
}

std::string Milliseconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%.0f ms", 1000.0 * seconds);
  return text;
}

uint64_t Since(uint64_t from, uint64_t to) { return to >= from ? to - from : 0; }

// The q-quantile of a window's histogram: cumulative counts per bound, then the total.
double Quantile(double q, const std::vector<double>& bounds, const std::vector<uint64_t>& cumulative) {
  if (cumulative.empty() || cumulative.back() == 0) return 0.0;
  const double rank = q * static_cast<double>(cumulative.back());
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (static_cast<double>(cumulative[i]) < rank) continue;
    const double lower = i == 0 ? 0.0 : bounds[i - 1];
    const double below = i == 0 ? 0.0 : static_cast<double>(cumulative[i - 1]);
    const double in_bucket = static_cast<double>(cumulative[i]) - below;
    return in_bucket > 0 ? lower + (bounds[i] - lower) * (rank - below) / in_bucket : bounds[i];
  }
  return bounds.empty() ? 0.0 : bounds.back();
}

Json ToJsonObject(const LiveFigures& f) {
  return {{"errors", f.errors},         {"refusals", f.refusals},     {"requests", f.requests},
          {"seconds", f.seconds},       {"ttft_p99_s", f.ttft_p99_s}, {"ttft_samples", f.ttft_samples}};
}

absl::StatusOr<LiveFigures> FromJsonObject(const Json& json) {
  if (!json.is_object()) return absl::InvalidArgumentError("live figures: not a JSON object");
  LiveFigures f;
  try {
    f.requests = json.value("requests", int64_t{0});
    f.errors = json.value("errors", int64_t{0});
    f.refusals = json.value("refusals", int64_t{0});
    f.ttft_samples = json.value("ttft_samples", int64_t{0});
    f.ttft_p99_s = json.value("ttft_p99_s", 0.0);
    f.seconds = json.value("seconds", 0.0);
  } catch (const Json::exception&) {
    return absl::InvalidArgumentError("live figures: a field has the wrong type");
  }
  if (f.requests < 0 || f.errors < 0 || f.refusals < 0 || f.ttft_samples < 0) {
    return absl::InvalidArgumentError("live figures: a negative count");
  }
  if (!std::isfinite(f.ttft_p99_s) || f.ttft_p99_s < 0 || !std::isfinite(f.seconds) || f.seconds < 0) {
    return absl::InvalidArgumentError("live figures: a time that is negative or not finite");
  }
  return f;
}

}  // namespace

LiveFigures Between(const ServingTally& from, const ServingTally& to, double seconds) {
  LiveFigures f;
  f.requests = static_cast<int64_t>(Since(from.requests, to.requests));
  f.errors = static_cast<int64_t>(Since(from.errors, to.errors));
  f.refusals = static_cast<int64_t>(Since(from.refusals, to.refusals));
  f.seconds = seconds;
  std::vector<uint64_t> window(to.ttft_cumulative.size());
  for (size_t i = 0; i < window.size(); ++i) {
    window[i] = Since(i < from.ttft_cumulative.size() ? from.ttft_cumulative[i] : 0, to.ttft_cumulative[i]);
  }
  if (!window.empty() && window.size() == to.ttft_bounds.size() + 1) {
    f.ttft_samples = static_cast<int64_t>(window.back());
    f.ttft_p99_s = Quantile(0.99, to.ttft_bounds, window);
  }
  return f;
}

std::string LiveReport::ToJson() const {
  return Json{{"baseline", ToJsonObject(baseline)}, {"live", ToJsonObject(live)}}.dump();
}

absl::StatusOr<LiveReport> LiveReport::FromJson(std::string_view text) {
  const Json json = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!json.is_object() || !json.contains("live") || !json.contains("baseline")) {
    return absl::InvalidArgumentError("live figures: not an object with \"live\" and \"baseline\"");
  }
  LiveReport report;
  absl::StatusOr<LiveFigures> live = FromJsonObject(json["live"]);
  if (!live.ok()) return live.status();
  absl::StatusOr<LiveFigures> baseline = FromJsonObject(json["baseline"]);
  if (!baseline.ok()) return baseline.status();
  report.live = *live;
  report.baseline = *baseline;
  return report;
}

absl::Status JudgeLive(const LiveThresholds& t, const LiveReport& report) {
  const LiveFigures& live = report.live;
  const LiveFigures& before = report.baseline;
  if (!std::isfinite(live.ttft_p99_s) || !std::isfinite(before.ttft_p99_s)) {
    return absl::FailedPreconditionError("the live figures hold a time that is not finite");
  }
  if (live.requests < t.min_requests) return absl::OkStatus();
  const bool judged_before = before.requests >= t.min_requests;
  const double errors_before = judged_before ? before.error_rate() : 0.0;
  const double refusals_before = judged_before ? before.refusal_rate() : 0.0;
  if (live.error_rate() > errors_before + t.max_error_rate_increase) {
    return absl::FailedPreconditionError(StrCat("errors on ", Percent(live.error_rate()), " of ", live.requests,
                                                " requests since the swap vs ", Percent(errors_before),
                                                " before it (at most ", Percent(t.max_error_rate_increase),
                                                " more allowed)"));
  }
  if (live.refusal_rate() > refusals_before + t.max_refusal_rate_increase) {
    return absl::FailedPreconditionError(StrCat("refusals of ", Percent(live.refusal_rate()), " of ", live.requests,
                                                " requests since the swap vs ", Percent(refusals_before),
                                                " before it (at most ", Percent(t.max_refusal_rate_increase),
                                                " more allowed)"));
  }
  if (t.max_ttft_p99_ratio > 0 && live.ttft_samples >= t.min_requests && before.ttft_samples >= t.min_requests &&
      live.ttft_p99_s > t.max_ttft_p99_ratio * before.ttft_p99_s) {
    return absl::FailedPreconditionError(StrCat("time to first token p99 ", Milliseconds(live.ttft_p99_s),
                                                " since the swap vs ", Milliseconds(before.ttft_p99_s),
                                                " before it (at most x", t.max_ttft_p99_ratio, " allowed)"));
  }
  return absl::OkStatus();
}

std::string DescribeLive(const LiveReport& r) {
  std::string text = StrCat(r.live.requests, " requests since the swap: errors ", Percent(r.live.error_rate()), " vs ",
                            Percent(r.baseline.error_rate()), ", refusals ", Percent(r.live.refusal_rate()), " vs ",
                            Percent(r.baseline.refusal_rate()));
  if (r.live.ttft_samples > 0 && r.baseline.ttft_samples > 0) {
    text += StrCat(", TTFT p99 ", Milliseconds(r.live.ttft_p99_s), " vs ", Milliseconds(r.baseline.ttft_p99_s));
  }
  return StrCat(text, " (", r.baseline.requests, " requests before)");
}

}  // namespace edgellm::release

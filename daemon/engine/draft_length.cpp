#include "daemon/engine/draft_length.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include "daemon/engine/kv_cache.h"
#include "daemon/engine/llama_model.h"

namespace edgellm::engine {

namespace {
constexpr int32_t kMaxPause = 32;
// How much an older step's outcome still counts after each new one.
constexpr double kDecay = 0.9;
}  // namespace

int32_t DraftLength::CostBestLength() const {
  const double a = std::min(stood_ / checked_, 0.999);
  int32_t best = 0;
  double best_rate = 1.0;  // a plain step: one token for one unit of time
  double yield = 1.0, power = 1.0;
  for (int32_t k = 1; k <= max_; ++k) {
    power *= a;
    yield += power;  // 1 + a + ... + a^k
    const double rate = yield / (1.0 + row_cost_ * k);
    if (rate > best_rate) {
      best_rate = rate;
      best = k;
    }
  }
  return best;
}

int32_t DraftLength::Next() {
  if (pause_ > 0) {
    --pause_;
    return 0;
  }
  if (row_cost_ <= 0.0 || max_ <= 0) return length_;
  if (probe_) {
    probe_ = false;
    return 1;
  }
  const int32_t best = CostBestLength();
  if (best == 0) {
    pause_ = backoff_ - 1;  // this step is the first one without drafts
    backoff_ = std::min(kMaxPause, backoff_ * 2);
    probe_ = true;
    return 0;
  }
  return std::min(length_, best);
}

void DraftLength::Update(int32_t drafted, int32_t accepted) {
  if (drafted <= 0) return;
  // Drafts after the first that failed were never really checked.
  checked_ = checked_ * kDecay + accepted + (accepted < drafted ? 1 : 0);
  stood_ = stood_ * kDecay + accepted;
  if (accepted >= drafted) {
    length_ = std::min(max_, length_ + 2);
    backoff_ = 1;
  } else if (accepted > 0) {
    length_ = std::min(max_, accepted + 1);
    backoff_ = 1;
  } else {
    length_ = std::min(max_, 1);
    pause_ = backoff_;
    backoff_ = std::min(kMaxPause, backoff_ * 2);
  }
}

namespace {
constexpr int32_t kProbePrefix = 16, kProbeRows = 5, kProbeRepeats = 3;
// The untimed prefix, then for one row and for kProbeRows rows a warm-up and kProbeRepeats timed runs.
constexpr int32_t kProbeForwards = 1 + 2 * (1 + kProbeRepeats);
}  // namespace

RowCostProbe::~RowCostProbe() = default;

bool RowCostProbe::RunNext() {
  if (done_) return true;
  const auto give_up = [this] {
    row_cost_ = 0.0;
    done_ = true;
    cache_.reset();
    return true;
  };
  if (forwards_run_ == 0) {
    auto cache = model_.NewCache(kProbePrefix + kProbeRows);
    if (!cache.ok()) return give_up();
    cache_ = std::move(*cache);
    tokens_.resize(kProbePrefix + kProbeRows);
    for (size_t i = 0; i < tokens_.size(); ++i) {
      tokens_[i] = static_cast<TokenId>((i * 7 + 1) % model_.config().n_vocab);
    }
    ++forwards_run_;
    if (!model_.Forward(absl::MakeConstSpan(tokens_).subspan(0, kProbePrefix), cache_.get(), false, &logits_).ok()) {
      return give_up();
    }
    return false;
  }
  const int32_t run = forwards_run_ - 1;  // 0 .. 2 * (1 + kProbeRepeats) - 1
  const int32_t rows = run < 1 + kProbeRepeats ? 1 : kProbeRows;
  const bool warm_up = run % (1 + kProbeRepeats) == 0;
  const auto start = std::chrono::steady_clock::now();
  const absl::Status s =
      model_.Forward(absl::MakeConstSpan(tokens_).subspan(kProbePrefix, rows), cache_.get(), rows > 1, &logits_);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  cache_->Truncate(kProbePrefix);
  if (!s.ok()) return give_up();
  // The fastest run of each: the least disturbed by anything else on the machine.
  if (!warm_up) {
    double& fastest = rows == 1 ? fastest_one_ : fastest_several_;
    fastest = std::min(fastest, seconds);
  }
  if (++forwards_run_ < kProbeForwards) return false;
  row_cost_ = RowCostFrom(fastest_one_, fastest_several_, kProbeRows);
  done_ = true;
  cache_.reset();
  return true;
}

double MeasureRowCost(const LlamaModel& model) {
  RowCostProbe probe(model);
  while (!probe.RunNext()) {
  }
  return probe.row_cost();
}

double RowCostFrom(double one_seconds, double several_seconds, int32_t rows) {
  if (one_seconds <= 0.0 || several_seconds <= 0.0 || rows < 2) return 0.0;
  return std::clamp((several_seconds / one_seconds - 1.0) / (rows - 1), 0.0, 2.0);
}

}  // namespace edgellm::engine

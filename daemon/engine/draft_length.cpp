#include "daemon/engine/draft_length.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

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

double MeasureRowCost(const LlamaModel& model) {
  constexpr int32_t kPrefix = 16, kRows = 5, kRepeats = 3;
  auto cache = model.NewCache(kPrefix + kRows);
  if (!cache.ok()) return 0.0;
  std::vector<TokenId> tokens(kPrefix + kRows);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<TokenId>((i * 7 + 1) % model.config().n_vocab);
  std::vector<float> logits;
  if (!model.Forward(absl::MakeConstSpan(tokens).subspan(0, kPrefix), cache->get(), false, &logits).ok()) return 0.0;
  // The fastest of a few runs of each: the least disturbed by anything else on the machine.
  auto fastest = [&](int32_t rows) {
    double best = 1e30;
    for (int r = 0; r < kRepeats + 1; ++r) {  // the first run warms up
      const auto start = std::chrono::steady_clock::now();
      const absl::Status s =
          model.Forward(absl::MakeConstSpan(tokens).subspan(kPrefix, rows), cache->get(), rows > 1, &logits);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      (*cache)->Truncate(kPrefix);
      if (!s.ok()) return 0.0;
      if (r > 0) best = std::min(best, seconds);
    }
    return best;
  };
  return RowCostFrom(fastest(1), fastest(kRows), kRows);
}

double RowCostFrom(double one_seconds, double several_seconds, int32_t rows) {
  if (one_seconds <= 0.0 || several_seconds <= 0.0 || rows < 2) return 0.0;
  return std::clamp((several_seconds / one_seconds - 1.0) / (rows - 1), 0.0, 2.0);
}

}  // namespace edgellm::engine

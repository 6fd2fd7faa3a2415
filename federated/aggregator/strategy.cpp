#include "federated/aggregator/strategy.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

#include "common/str_cat.h"

namespace edgellm::federated {
namespace {

absl::Status NoUpdates() { return absl::FailedPreconditionError("the round has no updates to aggregate"); }

// fedavg / fedadam (weighted) and dp_fedavg (unweighted, noised).
class RunningMean : public Aggregation {
 public:
  RunningMean(const StrategyConfig& config, const TensorSet& layout, uint64_t noise_seed)
      : config_(config), sum_(ZerosLike(layout)), noise_seed_(noise_seed) {
    wide_sum_.reserve(sum_.size());
    for (const NamedTensor& t : sum_) wide_sum_.emplace_back(t.values.size(), 0.0);
  }

  void Add(const TensorSet& delta, double weight) override {
    const bool dp = config_.name == "dp_fedavg";
    TensorSet bounded = delta;
    if (config_.norm_bound > 0) BoundNorm(bounded, config_.norm_bound);
    const double w = dp ? 1.0 : weight;
    for (size_t t = 0; t < bounded.size(); ++t) {
      const std::vector<float>& v = bounded[t].values;
      std::vector<double>& s = wide_sum_[t];
      for (size_t i = 0; i < v.size(); ++i) s[i] += w * v[i];
    }
    total_weight_ += w;
    ++count_;
  }

  int32_t count() const override { return count_; }

  absl::StatusOr<TensorSet> Finish() override {
    if (count_ == 0 || !(total_weight_ > 0)) return NoUpdates();
    std::mt19937_64 rng(noise_seed_);
    std::normal_distribution<double> normal(0.0, config_.noise_multiplier * config_.norm_bound);
    const bool dp = config_.name == "dp_fedavg";
    for (size_t t = 0; t < sum_.size(); ++t) {
      for (size_t i = 0; i < sum_[t].values.size(); ++i) {
        const double noise = dp ? normal(rng) : 0.0;
        sum_[t].values[i] = static_cast<float>((wide_sum_[t][i] + noise) / total_weight_);
      }
    }
    return sum_;
  }

 private:
  const StrategyConfig config_;
  TensorSet sum_;
  // The sum is kept in double so that the order updates arrive in barely matters.
  std::vector<std::vector<double>> wide_sum_;
  double total_weight_ = 0.0;
  int32_t count_ = 0;
  uint64_t noise_seed_;
};

// The strategies that must see every update at once: each is held, norm
// bounded, until the round closes; weights do not count.
class HeldUpdates : public Aggregation {
 public:
  HeldUpdates(const StrategyConfig& config, const TensorSet& layout) : config_(config), layout_(ZerosLike(layout)) {}

  void Add(const TensorSet& delta, double) override {
    updates_.push_back(delta);
    if (config_.norm_bound > 0) BoundNorm(updates_.back(), config_.norm_bound);
  }

  int32_t count() const override { return static_cast<int32_t>(updates_.size()); }

 protected:
  const StrategyConfig config_;
  const TensorSet layout_;
  std::vector<TensorSet> updates_;
};

// median / trimmed_mean.
class CoordinateWise : public HeldUpdates {
 public:
  using HeldUpdates::HeldUpdates;

  absl::StatusOr<TensorSet> Finish() override {
    if (updates_.empty()) return NoUpdates();
    const size_t n = updates_.size();
    const size_t trim = config_.name == "trimmed_mean" ? static_cast<size_t>(std::floor(config_.trim_fraction * n)) : 0;
    TensorSet out = layout_;
    std::vector<float> column(n);
    for (size_t t = 0; t < out.size(); ++t) {
      for (size_t i = 0; i < out[t].values.size(); ++i) {
        for (size_t k = 0; k < n; ++k) column[k] = updates_[k][t].values[i];
        std::sort(column.begin(), column.end());
        if (config_.name == "median") {
          out[t].values[i] = n % 2 == 1 ? column[n / 2] : 0.5f * (column[n / 2 - 1] + column[n / 2]);
        } else {
          double sum = 0.0;
          for (size_t k = trim; k < n - trim; ++k) sum += column[k];
          out[t].values[i] = static_cast<float>(sum / static_cast<double>(n - 2 * trim));
        }
      }
    }
    return out;
  }
};

// krum: each update scored by the summed squared distances to its n − f − 2
// nearest others; the krum_selected best are averaged (Blanchard et al.,
// "Machine Learning with Adversaries: Byzantine Tolerant Gradient Descent").
class Krum : public HeldUpdates {
 public:
  using HeldUpdates::HeldUpdates;

  absl::StatusOr<TensorSet> Finish() override {
    const size_t n = updates_.size();
    const size_t f = static_cast<size_t>(config_.krum_byzantine);
    if (n == 0) return NoUpdates();
    if (n <= 2 * f + 2) {
      return absl::FailedPreconditionError(
          StrCat("krum tolerating ", f, " Byzantine updates needs more than ", 2 * f + 2, ", not ", n));
    }
    std::vector<std::vector<double>> distance(n, std::vector<double>(n, 0.0));
    for (size_t a = 0; a < n; ++a) {
      for (size_t b = a + 1; b < n; ++b) {
        double d = 0;
        for (size_t t = 0; t < layout_.size(); ++t) {
          const std::vector<float>& x = updates_[a][t].values;
          const std::vector<float>& y = updates_[b][t].values;
          for (size_t i = 0; i < x.size(); ++i) d += (double{x[i]} - y[i]) * (double{x[i]} - y[i]);
        }
        distance[a][b] = distance[b][a] = d;
      }
    }
    std::vector<std::pair<double, size_t>> scores;
    for (size_t a = 0; a < n; ++a) {
      std::vector<double> others;
      for (size_t b = 0; b < n; ++b) {
        if (b != a) others.push_back(distance[a][b]);
      }
      std::sort(others.begin(), others.end());
      scores.push_back({std::accumulate(others.begin(), others.begin() + static_cast<std::ptrdiff_t>(n - f - 2), 0.0), a});
    }
    std::sort(scores.begin(), scores.end());
    const size_t selected = std::min(n, static_cast<size_t>(config_.krum_selected));
    TensorSet out = layout_;
    for (size_t t = 0; t < out.size(); ++t) {
      for (size_t i = 0; i < out[t].values.size(); ++i) {
        double sum = 0;
        for (size_t k = 0; k < selected; ++k) sum += updates_[scores[k].second][t].values[i];
        out[t].values[i] = static_cast<float>(sum / static_cast<double>(selected));
      }
    }
    return out;
  }
};

}  // namespace

std::unique_ptr<Aggregation> NewAggregation(const StrategyConfig& config, const TensorSet& layout,
                                            uint64_t noise_seed) {
  if (config.name == "median" || config.name == "trimmed_mean") {
    return std::make_unique<CoordinateWise>(config, layout);
  }
  if (config.name == "krum") return std::make_unique<Krum>(config, layout);
  return std::make_unique<RunningMean>(config, layout, noise_seed);
}

double BoundNorm(TensorSet& delta, double bound) {
  const double norm = L2Norm(delta);
  if (bound > 0 && norm > bound) {
    const float factor = static_cast<float>(bound / norm);
    for (NamedTensor& t : delta) {
      for (float& v : t.values) v *= factor;
    }
  }
  return norm;
}

TensorSet ServerStep(const StrategyConfig& config, const TensorSet& aggregate, ServerOptimizerState& state) {
  TensorSet step = aggregate;
  if (config.name != "fedadam") {
    for (NamedTensor& t : step) {
      for (float& v : t.values) v *= static_cast<float>(config.server_learning_rate);
    }
    return step;
  }
  if (state.m.empty()) state.m = ZerosLike(aggregate);
  if (state.v.empty()) state.v = ZerosLike(aggregate);
  const double b1 = config.adam_beta1, b2 = config.adam_beta2;
  for (size_t t = 0; t < step.size(); ++t) {
    std::vector<float>& m = state.m[t].values;
    std::vector<float>& v = state.v[t].values;
    for (size_t i = 0; i < step[t].values.size(); ++i) {
      const double g = aggregate[t].values[i];
      m[i] = static_cast<float>(b1 * m[i] + (1 - b1) * g);
      v[i] = static_cast<float>(b2 * v[i] + (1 - b2) * g * g);
      step[t].values[i] = static_cast<float>(config.server_learning_rate * m[i] / (std::sqrt(v[i]) + config.adam_tau));
    }
  }
  return step;
}

double DpEpsilon(double noise_multiplier, int64_t rounds, double delta) {
  if (rounds <= 0) return 0.0;
  if (!(noise_multiplier > 0)) return std::numeric_limits<double>::infinity();
  // RDP of the Gaussian mechanism at order a is a / (2 z²); T releases add up.
  double best = std::numeric_limits<double>::infinity();
  for (double order = 1.01; order <= 1024.0; order *= 1.01) {
    const double rdp = static_cast<double>(rounds) * order / (2.0 * noise_multiplier * noise_multiplier);
    best = std::min(best, rdp + std::log(1.0 / delta) / (order - 1.0));
  }
  return best;
}

}  // namespace edgellm::federated

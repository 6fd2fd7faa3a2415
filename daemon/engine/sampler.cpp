#include "daemon/engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "common/str_cat.h"
#include "daemon/engine/cpu_clones.h"

namespace edgellm::engine {

EDGELLM_CPU_CLONES TokenId ArgMax(absl::Span<const float> logits) {
  // Sixteen lanes as one vector (GCC's vector extension: a register of the
  // clone's width, or several): each keeps its largest logit so far and the
  // group of sixteen it was in.
  using Floats = float __attribute__((vector_size(64)));
  using Groups = int32_t __attribute__((vector_size(64)));
  constexpr size_t kLanes = 16;
  Floats best_lanes;
  for (size_t l = 0; l < kLanes; ++l) best_lanes[l] = -std::numeric_limits<float>::infinity();
  Groups where_lanes = {};
  const size_t groups = logits.size() / kLanes;
  for (size_t g = 0; g < groups; ++g) {
    Floats group;
    std::memcpy(&group, logits.data() + g * kLanes, sizeof(group));
    const Groups larger = group > best_lanes;
    best_lanes = larger ? group : best_lanes;
    where_lanes = larger ? Groups{} + static_cast<int32_t>(g) : where_lanes;
  }
  float best[kLanes];
  int32_t where[kLanes];
  std::memcpy(best, &best_lanes, sizeof(best));
  std::memcpy(where, &where_lanes, sizeof(where));
  // A lane that saw nothing larger than -inf offers its first id, l, at -inf.
  size_t pick = static_cast<size_t>(where[0]) * kLanes;
  float largest = best[0];
  for (size_t l = 1; l < kLanes; ++l) {
    const size_t id = static_cast<size_t>(where[l]) * kLanes + l;
    if (best[l] > largest || (best[l] == largest && id < pick)) {
      largest = best[l];
      pick = id;
    }
  }
  for (size_t i = groups * kLanes; i < logits.size(); ++i) {
    if (logits[i] > largest) {
      largest = logits[i];
      pick = i;
    }
  }
  return static_cast<TokenId>(pick);
}

EDGELLM_CPU_CLONES bool AllFinite(absl::Span<const float> logits) {
  // A float is a NaN or an infinity exactly when its exponent bits are all set.
  using Words = uint32_t __attribute__((vector_size(64)));
  constexpr size_t kLanes = 16;
  constexpr uint32_t kExponent = 0x7f800000u;
  Words not_finite = {};
  const size_t groups = logits.size() / kLanes;
  for (size_t g = 0; g < groups; ++g) {
    Words bits;
    std::memcpy(&bits, logits.data() + g * kLanes, sizeof(bits));
    not_finite |= (bits & kExponent) == kExponent;
  }
  bool finite = true;
  for (size_t l = 0; l < kLanes; ++l) finite = finite && not_finite[l] == 0;
  for (size_t i = groups * kLanes; i < logits.size(); ++i) finite = finite && std::isfinite(logits[i]);
  return finite;
}

namespace {

// KeepLikeliest's blocks of logits: each is passed over whole when its
// largest logit cannot reach the top k.
constexpr size_t kSkimBlock = 64;

// The largest of each whole block of kSkimBlock logits (NaNs never are;
// -inf for a block without a number), sixteen lanes at a time as ArgMax.
EDGELLM_CPU_CLONES void BlockMaxima(const float* logits, size_t blocks, float* maxima) {
  using Floats = float __attribute__((vector_size(64)));
  constexpr size_t kLanes = 16;
  for (size_t b = 0; b < blocks; ++b) {
    Floats largest;
    for (size_t l = 0; l < kLanes; ++l) largest[l] = -std::numeric_limits<float>::infinity();
    for (size_t g = 0; g < kSkimBlock / kLanes; ++g) {
      Floats group;
      std::memcpy(&group, logits + b * kSkimBlock + g * kLanes, sizeof(group));
      largest = group > largest ? group : largest;
    }
    float block = largest[0];
    for (size_t l = 1; l < kLanes; ++l) block = largest[l] > block ? largest[l] : block;
    maxima[b] = block;
  }
}

}  // namespace

absl::Status SamplingParams::Validate() const {
  if (!std::isfinite(temperature) || temperature > 100.0f) {
    return absl::InvalidArgumentError(edgellm::StrCat("temperature ", temperature, " must be finite and at most 100"));
  }
  if (top_k < 0) return absl::InvalidArgumentError(edgellm::StrCat("top_k ", top_k, " must be >= 0"));
  if (!(top_p > 0.0f && top_p <= 1.0f)) {
    return absl::InvalidArgumentError(edgellm::StrCat("top_p ", top_p, " must be in (0, 1]"));
  }
  if (!(min_p >= 0.0f && min_p <= 1.0f)) {
    return absl::InvalidArgumentError(edgellm::StrCat("min_p ", min_p, " must be in [0, 1]"));
  }
  if (!(repeat_penalty > 0.0f) || !std::isfinite(repeat_penalty)) {
    return absl::InvalidArgumentError(edgellm::StrCat("repeat_penalty ", repeat_penalty, " must be positive"));
  }
  if (repeat_last_n < 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("repeat_last_n ", repeat_last_n, " must be >= 0"));
  }
  return absl::OkStatus();
}

Sampler::Sampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

TokenId Sampler::Sample(absl::Span<const float> logits, absl::Span<const TokenId> history, const DraftToken* draft,
                        std::vector<float>* distribution, absl::Span<const uint64_t> allowed) {
  // Greedy's pick, with all the mass on it when the distribution is asked for.
  const auto greedy = [&](TokenId id) {
    if (distribution != nullptr) {
      distribution->assign(logits.size(), 0.0f);
      (*distribution)[static_cast<size_t>(id)] = 1.0f;
    }
    return id;
  };
  const bool penalized = params_.repeat_penalty != 1.0f && params_.repeat_last_n != 0 && !history.empty();
  if (params_.temperature <= 0.0f && !penalized && allowed.empty() && !logits.empty()) {
    // Plain greedy needs no candidates: the first maximum, so ties go to the lowest id.
    return greedy(ArgMax(logits));
  }
  const size_t top_k = static_cast<size_t>(params_.top_k);
  if (params_.temperature > 0.0f && allowed.empty() && top_k > 0 && top_k < logits.size()) {
    KeepLikeliest(logits, history);
    return Finish(logits.size(), draft, distribution);
  }
  candidates_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) candidates_[i] = {static_cast<TokenId>(i), logits[i], 0.0f};
  ApplyRepetitionPenalty(history);
  if (!allowed.empty()) {
    // Kept in id order, so greedy ties still go to the lowest id.
    size_t kept = 0;
    for (const Candidate& c : candidates_) {
      const size_t id = static_cast<size_t>(c.id);
      if (id / 64 < allowed.size() && ((allowed[id / 64] >> (id % 64)) & 1)) candidates_[kept++] = c;
    }
    candidates_.resize(kept);
    if (kept == 0) return -1;
  }
  if (params_.temperature <= 0.0f) {
    // First maximum wins, so ties go to the lowest id.
    return greedy(std::max_element(candidates_.begin(), candidates_.end(),
                                   [](const Candidate& a, const Candidate& b) { return a.logit < b.logit; })
                      ->id);
  }
  ApplyTemperature();
  KeepTopK();
  return Finish(logits.size(), draft, distribution);
}

TokenId Sampler::Finish(size_t vocabulary, const DraftToken* draft, std::vector<float>* distribution) {
  Softmax();
  KeepTopP();
  KeepMinP();
  if (distribution != nullptr || draft != nullptr) {
    // The kept candidates' probabilities, summing to 1.
    double total = 0.0;
    for (const Candidate& c : candidates_) total += c.p;
    for (Candidate& c : candidates_) c.p = static_cast<float>(c.p / total);
  }
  if (distribution != nullptr) {
    distribution->assign(vocabulary, 0.0f);
    for (const Candidate& c : candidates_) (*distribution)[static_cast<size_t>(c.id)] = c.p;
  }
  return draft != nullptr ? PickWithDraft(*draft) : Pick();
}

void Sampler::CollectPenaltyWindow(absl::Span<const TokenId> history, size_t vocabulary) {
  window_.clear();
  if (params_.repeat_penalty == 1.0f || params_.repeat_last_n == 0) return;
  const size_t n = std::min(history.size(), static_cast<size_t>(params_.repeat_last_n));
  // The window at its largest at once, so it never reallocates as the history grows.
  window_.reserve(static_cast<size_t>(params_.repeat_last_n));
  for (auto id = history.end() - n; id != history.end(); ++id) {
    if (*id >= 0 && static_cast<size_t>(*id) < vocabulary) window_.push_back(*id);
  }
  std::sort(window_.begin(), window_.end());
  window_.erase(std::unique(window_.begin(), window_.end()), window_.end());
}

float Sampler::Penalized(float logit) const {
  return logit > 0.0f ? logit / params_.repeat_penalty : logit * params_.repeat_penalty;
}

void Sampler::ApplyRepetitionPenalty(absl::Span<const TokenId> history) {
  CollectPenaltyWindow(history, candidates_.size());
  // candidates_ is still indexed by id here.
  for (TokenId id : window_) {
    float& logit = candidates_[static_cast<size_t>(id)].logit;
    logit = Penalized(logit);
  }
}

// Block by block: a block's largest logit (after the penalty, for a block
// with a penalized token) over the temperature bounds every value in it, as
// dividing by a positive number keeps the order. The k-th largest bound, U,
// is met or beaten by k values (each block's largest), so no value below U
// is among the top k, and a block whose bound is below U holds none of
// them: only the other blocks (at most k, but for ties) are read value by
// value, in id order, into a heap of the k likeliest (a later id never
// displaces an equal value, as in Likelier's order). Each value is the
// logit, penalized as ApplyRepetitionPenalty does, divided by the
// temperature as ApplyTemperature does, so the k candidates are exactly
// those the three stages leave. A draw over 49k tokens took 94 µs with a
// candidate per token (BM_Sample): sixteen of them, 1.5 ms, against the 8 ms
// of a batched smol-135m step.
void Sampler::KeepLikeliest(absl::Span<const float> logits, absl::Span<const TokenId> history) {
  const size_t n = logits.size(), k = static_cast<size_t>(params_.top_k);
  const float temperature = params_.temperature;
  CollectPenaltyWindow(history, n);
  // window_ is sorted: `next` walks it alongside an increasing id.
  const auto value = [&](size_t id, std::vector<TokenId>::const_iterator& next) {
    float logit = logits[id];
    while (next != window_.end() && static_cast<size_t>(*next) < id) ++next;
    if (next != window_.end() && static_cast<size_t>(*next) == id) logit = Penalized(logit);
    return logit / temperature;
  };
  const size_t blocks = (n + kSkimBlock - 1) / kSkimBlock, whole = n / kSkimBlock;
  block_bounds_.resize(blocks);
  BlockMaxima(logits.data(), whole, block_bounds_.data());
  for (size_t b = whole; b < blocks; ++b) {
    float largest = -std::numeric_limits<float>::infinity();
    for (size_t i = b * kSkimBlock; i < n; ++i) largest = logits[i] > largest ? logits[i] : largest;
    block_bounds_[b] = largest;
  }
  for (size_t b = 0; b < blocks; ++b) block_bounds_[b] /= temperature;
  // A penalty below 1 raises a negative logit: a penalized token's block is bounded by its values as they are.
  for (auto next = window_.cbegin(); next != window_.cend();) {
    const size_t b = static_cast<size_t>(*next) / kSkimBlock;
    float largest = -std::numeric_limits<float>::infinity();
    for (size_t i = b * kSkimBlock; i < std::min(n, (b + 1) * kSkimBlock); ++i) {
      const float v = value(i, next);
      largest = v > largest ? v : largest;
    }
    block_bounds_[b] = largest;
    while (next != window_.cend() && static_cast<size_t>(*next) / kSkimBlock == b) ++next;
  }
  float least = -std::numeric_limits<float>::infinity();
  if (k <= blocks) {
    bound_order_.assign(block_bounds_.begin(), block_bounds_.end());
    const auto kth = bound_order_.begin() + static_cast<std::ptrdiff_t>(k - 1);
    std::nth_element(bound_order_.begin(), kth, bound_order_.end(), std::greater<float>());
    least = bound_order_[k - 1];
  }
  candidates_.clear();
  candidates_.reserve(k);
  auto next = window_.cbegin();
  for (size_t b = 0; b < blocks; ++b) {
    if (!(block_bounds_[b] >= least)) continue;
    for (size_t i = b * kSkimBlock; i < std::min(n, (b + 1) * kSkimBlock); ++i) {
      const Candidate c{static_cast<TokenId>(i), value(i, next), 0.0f};
      if (std::isnan(c.logit)) continue;
      if (candidates_.size() < k) {
        candidates_.push_back(c);
        std::push_heap(candidates_.begin(), candidates_.end(), Likelier);
      } else if (Likelier(c, candidates_.front())) {
        std::pop_heap(candidates_.begin(), candidates_.end(), Likelier);
        candidates_.back() = c;
        std::push_heap(candidates_.begin(), candidates_.end(), Likelier);
      }
    }
  }
  std::sort(candidates_.begin(), candidates_.end(), Likelier);
}

void Sampler::ApplyTemperature() {
  for (Candidate& c : candidates_) c.logit /= params_.temperature;
}

void Sampler::KeepTopK() {
  const size_t k = static_cast<size_t>(params_.top_k);
  if (k == 0 || k >= candidates_.size()) return;
  std::partial_sort(candidates_.begin(), candidates_.begin() + k, candidates_.end(), Likelier);
  candidates_.resize(k);
}

void Sampler::SortByLikelihood() {
  // A few candidates (top-k's) sort faster by comparison.
  constexpr size_t kFewCandidates = 1024;
  if (candidates_.size() <= kFewCandidates) {
    std::sort(candidates_.begin(), candidates_.end(), Likelier);
    return;
  }
  // Every candidate's logit as a key whose unsigned order is the logits'
  // order reversed (-0 made +0: they are equal logits), then four stable
  // passes of a byte each. The candidates come in id order, or in Likelier's
  // order from a top-k, so equal logits stay in id order, as Likelier has
  // them: the same order as the comparison sort, found in linear time (a
  // sampler without top-k sorted 152k candidates in milliseconds a token).
  const auto key = [](float logit) {
    uint32_t bits;
    std::memcpy(&bits, &logit, sizeof(bits));
    if (bits == 0x80000000u) bits = 0;
    return ~((bits & 0x80000000u) != 0 ? ~bits : bits | 0x80000000u);
  };
  std::vector<Candidate>& other = sort_buffer_;
  other.resize(candidates_.size());
  for (int shift = 0; shift < 32; shift += 8) {
    size_t starts[257] = {};
    for (const Candidate& c : candidates_) ++starts[((key(c.logit) >> shift) & 0xff) + 1];
    for (size_t b = 1; b < 257; ++b) starts[b] += starts[b - 1];
    for (const Candidate& c : candidates_) other[starts[(key(c.logit) >> shift) & 0xff]++] = c;
    candidates_.swap(other);
  }
}

void Sampler::Softmax() {
  SortByLikelihood();
  const float max_logit = candidates_.front().logit;
  double sum = 0.0;
  for (Candidate& c : candidates_) {
    c.p = std::exp(c.logit - max_logit);
    sum += c.p;
  }
  for (Candidate& c : candidates_) c.p = static_cast<float>(c.p / sum);
}

void Sampler::KeepTopP() {
  if (params_.top_p >= 1.0f) return;
  double cumulative = 0.0;
  size_t keep = candidates_.size();
  for (size_t i = 0; i < candidates_.size(); ++i) {
    cumulative += candidates_[i].p;
    if (cumulative >= params_.top_p) {
      keep = i + 1;
      break;
    }
  }
  candidates_.resize(keep);
}

void Sampler::KeepMinP() {
  if (params_.min_p <= 0.0f) return;
  const float threshold = params_.min_p * candidates_.front().p;
  size_t keep = 1;
  while (keep < candidates_.size() && candidates_[keep].p >= threshold) ++keep;
  candidates_.resize(keep);
}

// 53 random bits -> a double uniform in [0, 1).
double Sampler::Uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

TokenId Sampler::Pick() {
  double total = 0.0;
  for (const Candidate& c : candidates_) total += c.p;
  const double u = Uniform() * total;
  double cumulative = 0.0;
  for (const Candidate& c : candidates_) {
    cumulative += c.p;
    if (u < cumulative) return c.id;
  }
  return candidates_.back().id;
}

// The candidates' p sum to 1 here.
TokenId Sampler::PickWithDraft(const DraftToken& draft) {
  const auto draft_probability = [&](TokenId id) -> double {
    if (draft.probs.empty()) return id == draft.id ? 1.0 : 0.0;
    return static_cast<size_t>(id) < draft.probs.size() ? draft.probs[static_cast<size_t>(id)] : 0.0;
  };
  double p = 0.0;
  for (const Candidate& c : candidates_) {
    if (c.id == draft.id) p = c.p;
  }
  const double q = draft_probability(draft.id);
  if (Uniform() * q < p) return draft.id;  // u < p / q
  double residual_total = 0.0;
  for (const Candidate& c : candidates_) residual_total += std::max(0.0, c.p - draft_probability(c.id));
  if (residual_total <= 0.0) return Pick();  // p <= q everywhere only when p == q: rejection had no mass
  const double u = Uniform() * residual_total;
  double cumulative = 0.0;
  TokenId last_with_mass = candidates_.front().id;
  for (const Candidate& c : candidates_) {
    const double residual = std::max(0.0, c.p - draft_probability(c.id));
    if (residual <= 0.0) continue;
    cumulative += residual;
    last_with_mass = c.id;
    if (u < cumulative) return c.id;
  }
  return last_with_mass;
}

}  // namespace edgellm::engine

// federated/aggregator/strategy.h — how one round's updates become the change
// to the global adapter.
//
// An Aggregation takes the round's validated updates one at a time:
//   fedavg, fedadam  the example-weighted mean, as a running sum: memory is
//                    one adapter whatever the number of devices;
//   dp_fedavg        every update clipped to the norm bound S, the unweighted
//                    sum plus Gaussian noise of deviation z·S, over the count;
//   median           coordinate-wise median;
//   trimmed_mean     coordinate-wise mean without the floor(β·n) smallest and
//                    largest values;
//   krum             the mean of the krum_selected updates closest to their
//                    n − f − 2 nearest neighbours (1: Krum, more: multi-Krum).
//                    These three must see every update at once, so they hold
//                    them (n adapters) until the round closes.
// Norm bounding (norm_bound > 0) scales each update down to that L2 norm
// before any of them.
//
// The ServerOptimizer then turns the aggregate into the step applied to the
// global adapter: server_learning_rate × aggregate, or FedAdam's adaptive step.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_STRATEGY_H_
#define EDGELLM_FEDERATED_AGGREGATOR_STRATEGY_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "federated/aggregator/aggregator_config.h"
#include "federated/protocol/tensor_set.h"

namespace edgellm::federated {

class Aggregation {
 public:
  virtual ~Aggregation() = default;
  // Adds an update already validated against the round's layout, with its
  // weight (the device's example count; ignored where the strategy is unweighted).
  virtual void Add(const TensorSet& delta, double weight) = 0;
  virtual int32_t count() const = 0;
  // The aggregate. FailedPrecondition without any update.
  virtual absl::StatusOr<TensorSet> Finish() = 0;
};

// `layout` gives the tensors (values ignored); `noise_seed` makes dp_fedavg's
// noise reproducible, so a round re-closed after a crash gives the same
// version. It must be secret (drawn from a CSPRNG, never derived from public
// values): whoever knows it can subtract the noise. `config.norm_bound` must
// be resolved (not kAutoNormBound).
std::unique_ptr<Aggregation> NewAggregation(const StrategyConfig& config, const TensorSet& layout,
                                            uint64_t noise_seed);

// Scales `delta` to an L2 norm of at most `bound`; returns the norm it had.
double BoundNorm(TensorSet& delta, double bound);

// FedAdam's moments, carried from round to round.
struct ServerOptimizerState {
  TensorSet m;
  TensorSet v;
};

// The step to add to the global adapter for the round's aggregate. FedAdam
// updates `state` (created on first use).
TensorSet ServerStep(const StrategyConfig& config, const TensorSet& aggregate, ServerOptimizerState& state);

// (ε, δ) after `rounds` releases of the Gaussian mechanism with this noise
// multiplier (noise deviation over sensitivity), by Rényi DP composition and
// its standard conversion; no privacy amplification by sampling is claimed.
double DpEpsilon(double noise_multiplier, int64_t rounds, double delta);

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_STRATEGY_H_

// train/optimizer.h — AdamW with decoupled weight decay, the warm-up +
// cosine learning-rate schedule, and gradient clipping by global norm.
// Engine-internal to train/: includes ATen.
#ifndef EDGELLM_TRAIN_OPTIMIZER_H_
#define EDGELLM_TRAIN_OPTIMIZER_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <vector>

namespace edgellm::train {

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double epsilon = 1e-8;
  double weight_decay = 0.0;
};

// Not thread-safe. Its moments are plain tensors, saved and restored by the
// trainer's checkpoint, so a resumed run continues exactly.
class AdamW {
 public:
  AdamW(std::vector<at::Tensor> params, AdamWOptions options);

  // One update with learning rate `lr` from each parameter's grad (a
  // parameter without a grad is left as it is); then `steps()` grows by one.
  void Step(double lr);

  int64_t steps() const { return steps_; }
  void set_steps(int64_t steps) { steps_ = steps; }
  std::vector<at::Tensor>& first_moments() { return m_; }
  std::vector<at::Tensor>& second_moments() { return v_; }

 private:
  std::vector<at::Tensor> params_;
  AdamWOptions options_;
  std::vector<at::Tensor> m_, v_;
  int64_t steps_ = 0;
};

// The learning rate of 0-based `step` of `total`: linear warm-up from
// peak / warmup to `peak` over `warmup` steps, then a cosine down to
// peak × min_ratio at the last step.
double ScheduledLearningRate(int64_t step, int64_t total, int64_t warmup, double peak, double min_ratio);

// The global L2 norm of the grads; when above max_norm > 0, scales every grad
// so that the norm becomes max_norm. Returns the norm before scaling.
double ClipGradients(const std::vector<at::Tensor>& params, double max_norm);

}  // namespace edgellm::train

#endif  // EDGELLM_TRAIN_OPTIMIZER_H_

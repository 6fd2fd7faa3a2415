// federated/release/evaluation_proto.h — evaluation figures to and from
// edgellm.v1.EvaluationFigures, for the device's reports, the aggregator's
// status and the CLI. Header-only: the release library itself needs no protos.
#ifndef EDGELLM_FEDERATED_RELEASE_EVALUATION_PROTO_H_
#define EDGELLM_FEDERATED_RELEASE_EVALUATION_PROTO_H_

#include "edgellm/v1/ota.pb.h"
#include "federated/release/evaluation.h"

namespace edgellm::release {

inline void ToProto(const EvaluationFigures& f, v1::EvaluationFigures* out) {
  out->set_loss(f.loss);
  out->set_baseline_loss(f.baseline_loss);
  out->set_examples(static_cast<uint32_t>(f.examples));
  out->set_exact_matches(static_cast<uint32_t>(f.exact_matches));
  out->set_baseline_exact_matches(static_cast<uint32_t>(f.baseline_exact_matches));
  out->set_cases(static_cast<uint32_t>(f.cases));
  out->set_seconds(f.seconds);
}

inline EvaluationFigures FromProto(const v1::EvaluationFigures& e) {
  EvaluationFigures f;
  f.loss = e.loss();
  f.baseline_loss = e.baseline_loss();
  f.examples = e.examples();
  f.exact_matches = static_cast<int32_t>(e.exact_matches());
  f.baseline_exact_matches = static_cast<int32_t>(e.baseline_exact_matches());
  f.cases = static_cast<int32_t>(e.cases());
  f.seconds = e.seconds();
  return f;
}

}  // namespace edgellm::release

#endif  // EDGELLM_FEDERATED_RELEASE_EVALUATION_PROTO_H_

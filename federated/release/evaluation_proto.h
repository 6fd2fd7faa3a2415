// federated/release/evaluation_proto.h — evaluation and live figures to and
// from edgellm.v1.EvaluationFigures and edgellm.v1.LiveFigures, for the
// device's reports, the aggregator's status and the CLI. Header-only: the
// release library itself needs no protos.
#ifndef EDGELLM_FEDERATED_RELEASE_EVALUATION_PROTO_H_
#define EDGELLM_FEDERATED_RELEASE_EVALUATION_PROTO_H_

#include <algorithm>
#include <cstdint>

#include "edgellm/v1/ota.pb.h"
#include "federated/release/evaluation.h"
#include "federated/release/live_figures.h"

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

inline void ToProto(const LiveFigures& f, v1::LiveFigures* out) {
  out->set_requests(static_cast<uint64_t>(f.requests));
  out->set_errors(static_cast<uint64_t>(f.errors));
  out->set_refusals(static_cast<uint64_t>(f.refusals));
  out->set_ttft_samples(static_cast<uint64_t>(f.ttft_samples));
  out->set_ttft_p99_seconds(f.ttft_p99_s);
  out->set_seconds(f.seconds);
}

// Counts beyond int64 (only a lying device sends them) are clamped.
inline LiveFigures FromProto(const v1::LiveFigures& l) {
  const auto count = [](uint64_t v) { return static_cast<int64_t>(std::min<uint64_t>(v, INT64_MAX)); };
  LiveFigures f;
  f.requests = count(l.requests());
  f.errors = count(l.errors());
  f.refusals = count(l.refusals());
  f.ttft_samples = count(l.ttft_samples());
  f.ttft_p99_s = l.ttft_p99_seconds();
  f.seconds = l.seconds();
  return f;
}

}  // namespace edgellm::release

#endif  // EDGELLM_FEDERATED_RELEASE_EVALUATION_PROTO_H_

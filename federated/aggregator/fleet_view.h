// federated/aggregator/fleet_view.h — the fleet as an operator sees it:
// each model's devices (version served, last seen, online, last install
// report), its latest rounds and versions (eval loss per version), and its
// rollout. One answer for ReleaseAdmin.GetFleet (`edgellm fleet --json`)
// and the fleet page's /api/fleet, so the two never disagree.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_FLEET_VIEW_H_
#define EDGELLM_FEDERATED_AGGREGATOR_FLEET_VIEW_H_

#include <string>

#include "absl/status/statusor.h"
#include "edgellm/v1/ota.pb.h"
#include "federated/aggregator/coordinator.h"
#include "federated/aggregator/rollout.h"

namespace edgellm::federated {

// Rounds and versions a fleet status holds per model, the latest ones.
inline constexpr int64_t kFleetHistory = 50;

// The fleet of `model_id` ("": of every model); NotFound for an unknown model.
absl::StatusOr<v1::FleetStatus> ReadFleet(Coordinator& coordinator, Rollouts& rollouts, const std::string& model_id);

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_FLEET_VIEW_H_

#include "federated/aggregator/fleet_view.h"

#include <algorithm>
#include <chrono>
#include <nlohmann/json.hpp>

#include "common/status_macros.h"

namespace edgellm::federated {
namespace {

int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

absl::StatusOr<v1::ModelFleet> ReadModel(Coordinator& coordinator, Rollouts& rollouts, const std::string& model_id,
                                         int64_t now) {
  v1::ModelFleet fleet;
  fleet.set_model_id(model_id);
  EDGELLM_ASSIGN_OR_RETURN(*fleet.mutable_rollout(), rollouts.Status(model_id));
  const int64_t liveness_ms = static_cast<int64_t>(coordinator.config().liveness_timeout_seconds * 1000);
  // The rollout's devices are the model's fleet: enrolled, polling or reporting.
  for (const v1::DeviceRollout& d : fleet.rollout().devices()) {
    v1::FleetDevice* device = fleet.add_devices();
    device->set_device_id(d.device_id());
    device->set_serving_version(d.serving_version());
    device->set_last_report(d.last_report());
    const int64_t seen = std::max(coordinator.LastSeenMs(d.device_id()), rollouts.LastPolledMs(d.device_id()));
    device->set_last_seen_unix_ms(seen);
    device->set_online(seen > 0 && now - seen <= liveness_ms);
  }
  EDGELLM_ASSIGN_OR_RETURN(std::vector<RoundRecord> rounds, coordinator.store().LatestRounds(model_id, kFleetHistory));
  for (const RoundRecord& r : rounds) {
    v1::FleetRound* round = fleet.add_rounds();
    round->set_round_id(r.round_id);
    round->set_state(std::string(RoundStateName(r.state)));
    round->set_base_version(r.base_version);
    for (const std::string& id : r.selected) round->add_participants(id);
    round->set_opened_unix_ms(r.opened_ms);
    round->set_closed_unix_ms(r.closed_ms);
    round->set_outcome(r.outcome);
  }
  EDGELLM_ASSIGN_OR_RETURN(std::vector<VersionRecord> versions,
                           coordinator.store().LatestVersions(model_id, kFleetHistory));
  for (const VersionRecord& v : versions) {
    v1::FleetVersion* version = fleet.add_versions();
    version->set_version(v.version);
    version->set_round_id(v.round_id);
    version->set_created_unix_ms(v.created_ms);
    const nlohmann::json metrics = nlohmann::json::parse(v.metrics, nullptr, false);
    if (metrics.is_object()) {
      if (auto it = metrics.find("eval_loss"); it != metrics.end() && it->is_number()) {
        version->set_eval_loss(it->get<double>());
      }
      if (auto it = metrics.find("updates"); it != metrics.end() && it->is_number_unsigned()) {
        version->set_updates(it->get<uint64_t>());
      }
    }
  }
  return fleet;
}

}  // namespace

absl::StatusOr<v1::FleetStatus> ReadFleet(Coordinator& coordinator, Rollouts& rollouts, const std::string& model_id) {
  v1::FleetStatus status;
  const int64_t now = NowUnixMs();
  status.set_unix_ms(now);
  std::vector<std::string> ids = coordinator.ModelIds();
  if (!model_id.empty()) {
    if (std::find(ids.begin(), ids.end(), model_id) == ids.end()) {
      return absl::NotFoundError("no model " + model_id + " on this aggregator");
    }
    ids = {model_id};
  }
  for (const std::string& id : ids) {
    EDGELLM_ASSIGN_OR_RETURN(*status.add_models(), ReadModel(coordinator, rollouts, id, now));
  }
  return status;
}

}  // namespace edgellm::federated

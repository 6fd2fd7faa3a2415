// daemon/aggregator_identity.h — where the aggregator is and who this device
// is to it, from the daemon's config: the same for the federated client's and
// the OTA agent's configs.
#ifndef EDGELLM_DAEMON_AGGREGATOR_IDENTITY_H_
#define EDGELLM_DAEMON_AGGREGATOR_IDENTITY_H_

#include <string>

#include "daemon/ops/config.h"

namespace edgellm {

template <typename Config>
void SetAggregatorIdentity(const ops::DaemonConfig& args, const std::string& model_name, Config& config) {
  config.aggregator = args.federation_aggregator;
  config.ca_file = args.federation_ca;
  config.cert_file = args.federation_cert;
  config.key_file = args.federation_key;
  config.device_id = args.federation_device_id;
  config.model_id = args.federation_model_id.empty() ? model_name : args.federation_model_id;
}

}  // namespace edgellm

#endif  // EDGELLM_DAEMON_AGGREGATOR_IDENTITY_H_

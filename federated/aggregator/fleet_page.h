// federated/aggregator/fleet_page.h — the fleet page: a read-only web page
// on the aggregator's operator endpoint (HTTPS with its own certificate)
// drawing devices, rounds, eval loss per version and rollouts from
// /api/fleet, the JSON of ReleaseAdmin.GetFleet. Its files (index.html,
// fleet.js, fleet.css) are built into the binary: nothing to install or
// build at runtime.
//
// Who may read it: with a token file, a request whose Authorization header
// carries "Bearer <token>" (the page takes the token from its URL's
// fragment, which browsers never send); without one, a client certificate
// from the aggregator's CA whose common name is among the admins and not
// revoked. The static files hold no data and need neither.
#ifndef EDGELLM_FEDERATED_AGGREGATOR_FLEET_PAGE_H_
#define EDGELLM_FEDERATED_AGGREGATOR_FLEET_PAGE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/ops/http_server.h"
#include "federated/aggregator/coordinator.h"
#include "federated/aggregator/name_list_file.h"
#include "federated/aggregator/rollout.h"

namespace edgellm::federated {

struct FleetPageConfig {
  std::string listen;  // HOST:PORT; port 0 picks a free one
  std::string tls_cert, tls_key, tls_client_ca;
  std::string token;  // "": client certificates of admins instead
  std::vector<std::string> admins;
};

class FleetPage {
 public:
  // Everything given must outlive the page. InvalidArgument for a token
  // shorter than 16 bytes, and as HttpServer::Start.
  static absl::StatusOr<std::unique_ptr<FleetPage>> Start(FleetPageConfig config, Coordinator& coordinator,
                                                          Rollouts& rollouts, NameListFile& revoked);
  int port() const { return server_->port(); }

 private:
  FleetPage(FleetPageConfig config, Coordinator& coordinator, Rollouts& rollouts, NameListFile& revoked)
      : config_(std::move(config)), coordinator_(coordinator), rollouts_(rollouts), revoked_(revoked) {}
  void Handle(const ops::HttpRequest& request, ops::HttpResponder& responder);
  // Empty when the request may read the fleet; else why not.
  std::string Refusal(const ops::HttpRequest& request) const;

  const FleetPageConfig config_;
  Coordinator& coordinator_;
  Rollouts& rollouts_;
  NameListFile& revoked_;
  std::unique_ptr<ops::HttpServer> server_;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_AGGREGATOR_FLEET_PAGE_H_

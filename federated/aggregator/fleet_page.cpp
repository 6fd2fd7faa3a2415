#include "federated/aggregator/fleet_page.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/str_cat.h"
#include "federated/aggregator/fleet_page_files.h"
#include "federated/aggregator/fleet_view.h"
#include "federated/protocol/proto_json.h"

namespace edgellm::federated {
namespace {

constexpr size_t kMinTokenBytes = 16;

std::string ErrorJson(const std::string& message) { return nlohmann::json({{"error", message}}).dump(); }

// What every answer carries: the page runs only its own script and style,
// and nothing is cached (the data is live; the files come with the binary).
std::vector<std::pair<std::string, std::string>> SafetyHeaders() {
  return {{"Content-Security-Policy",
           "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
           "frame-ancestors 'none'"},
          {"X-Content-Type-Options", "nosniff"},
          {"Referrer-Policy", "no-referrer"},
          {"Cache-Control", "no-store"}};
}

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kInvalidArgument: return 400;
    default: return 500;
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<FleetPage>> FleetPage::Start(FleetPageConfig config, Coordinator& coordinator,
                                                            Rollouts& rollouts, NameListFile& revoked) {
  if (!config.token.empty() && config.token.size() < kMinTokenBytes) {
    return absl::InvalidArgumentError(StrCat("the fleet page's token must be at least ", kMinTokenBytes, " bytes"));
  }
  ops::HttpServerConfig server;
  server.listen = config.listen;
  server.tls_cert = config.tls_cert;
  server.tls_key = config.tls_key;
  // With a token any browser may connect; the token decides. Without one,
  // only certificates from the CA get through the handshake.
  if (config.token.empty()) server.tls_client_ca = config.tls_client_ca;
  server.max_body_bytes = 0;  // GET only
  server.threads = 1;
  auto page = std::unique_ptr<FleetPage>(new FleetPage(std::move(config), coordinator, rollouts, revoked));
  FleetPage* raw = page.get();
  absl::StatusOr<std::unique_ptr<ops::HttpServer>> started = ops::HttpServer::Start(
      server,
      [raw](ops::HttpRequest request, std::shared_ptr<ops::HttpResponder> responder) {
        raw->Handle(request, *responder);
      },
      [](int, const std::string& message) { return ErrorJson(message); });
  if (!started.ok()) return started.status();
  page->server_ = *std::move(started);
  return page;
}

std::string FleetPage::Refusal(const ops::HttpRequest& request) const {
  if (!config_.token.empty()) {
    auto it = request.headers.find("authorization");
    const std::string expected = "Bearer " + config_.token;
    if (it == request.headers.end()) return "this needs the fleet page's token (Authorization: Bearer ...)";
    if (it->second.size() != expected.size() ||
        CRYPTO_memcmp(it->second.data(), expected.data(), expected.size()) != 0) {
      return "the token is not the fleet page's";
    }
    return "";
  }
  if (request.peer_name.empty()) return "this needs an operator's client certificate";
  if (revoked_.Contains(request.peer_name)) return StrCat("certificate '", request.peer_name, "' is revoked");
  if (std::find(config_.admins.begin(), config_.admins.end(), request.peer_name) == config_.admins.end()) {
    return StrCat("'", request.peer_name, "' is not among the aggregator's admins");
  }
  return "";
}

void FleetPage::Handle(const ops::HttpRequest& request, ops::HttpResponder& responder) {
  auto headers = SafetyHeaders();
  if (request.method != "GET") {
    headers.emplace_back("Allow", "GET");
    return responder.Send(405, "application/json", ErrorJson("the fleet page is read-only: GET only"), headers);
  }
  const std::string path = request.path == "/" ? "/index.html" : request.path;
  for (const EmbeddedFile& file : kFleetPageFiles) {
    if (path != file.path) continue;
    // The files hold no data: a token guards the API alone. In certificate
    // mode a certificate outside the admins sees no page at all.
    if (config_.token.empty()) {
      if (std::string refusal = Refusal(request); !refusal.empty()) {
        return responder.Send(403, "application/json", ErrorJson(refusal), headers);
      }
    }
    return responder.Send(200, file.content_type, std::string(file.body), headers);
  }
  if (path != "/api/fleet") return responder.Send(404, "application/json", ErrorJson("no such page"), headers);
  if (std::string refusal = Refusal(request); !refusal.empty()) {
    const int status = config_.token.empty() ? 403 : 401;
    if (status == 401) headers.emplace_back("WWW-Authenticate", "Bearer");
    return responder.Send(status, "application/json", ErrorJson(refusal), headers);
  }
  absl::StatusOr<v1::FleetStatus> fleet = ReadFleet(coordinator_, rollouts_, "");
  if (!fleet.ok()) {
    return responder.Send(HttpStatusOf(fleet.status().code()), "application/json",
                          ErrorJson(std::string(fleet.status().message())), headers);
  }
  responder.Send(200, "application/json", ProtoJson(*fleet), headers);
}

}  // namespace edgellm::federated

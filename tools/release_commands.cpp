// `edgellm keygen`, `edgellm publish`, `edgellm rollout`: release signing keys,
// signed releases of a model version, and the staged rollout that follows.
// Manifests are signed here, on the operator's machine: the aggregator never
// holds the operator's private keys.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <google/protobuf/util/json_util.h>

#include <iostream>

#include "common/atomic_file.h"
#include "common/str_cat.h"
#include "daemon/ops/tls_files.h"
#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/release/manifest.h"
#include "federated/release/signing_key.h"
#include "tools/commands.h"

namespace edgellm::tools {
namespace {

struct AdminConnection {
  std::string aggregator = "localhost:7443";
  std::string ca;
  std::string cert;
  std::string key;
};

void AddConnectionOptions(CLI::App* cmd, AdminConnection& c) {
  cmd->add_option("--aggregator", c.aggregator, "HOST:PORT of edgellm-aggregator")->capture_default_str();
  cmd->add_option("--ca", c.ca, "PEM CA that signed the aggregator's certificate")->required();
  cmd->add_option("--cert", c.cert, "PEM operator certificate (its common name must be in the aggregator's admins)")
      ->required();
  cmd->add_option("--key", c.key, "PEM key of the operator certificate")->required();
}

absl::StatusOr<std::unique_ptr<v1::ReleaseAdmin::Stub>> Connect(const AdminConnection& c) {
  absl::StatusOr<ops::TlsFiles> tls = ops::LoadTlsFiles(c.cert, c.key, c.ca);
  if (!tls.ok()) return tls.status();
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = tls->client_ca;
  ssl.pem_private_key = tls->private_key;
  ssl.pem_cert_chain = tls->cert_chain;
  return v1::ReleaseAdmin::NewStub(grpc::CreateChannel(c.aggregator, grpc::SslCredentials(ssl)));
}

std::unique_ptr<grpc::ClientContext> Call() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  return context;
}

absl::Status FromGrpc(const grpc::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  return absl::Status(static_cast<absl::StatusCode>(s.error_code()), StrCat(what, ": ", s.error_message()));
}

void PrintStatus(const v1::RolloutStatus& status, bool json) {
  if (json) {
    std::string text;
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(status, &text, options);
    std::cout << text << "\n";
    return;
  }
  if (status.stage() == "none") {
    std::cout << status.model_id() << ": no release yet\n";
  } else {
    std::cout << status.model_id() << ": release " << status.release() << " (version " << status.version()
              << (status.rollback() ? ", a rollback" : "") << "): " << status.stage()
              << (status.detail().empty() ? "" : " — " + status.detail()) << "\n"
              << "  canary fraction " << status.params().canary_fraction() << ", success threshold "
              << status.params().success_threshold() << ", soak " << status.params().soak_seconds() << " s\n";
  }
  for (const v1::DeviceRollout& d : status.devices()) {
    std::cout << "  " << d.device_id() << (d.canary() ? " (canary)" : "") << ": serving "
              << (d.serving_version() == 0 ? std::string("the base model")
                                           : "version " + std::to_string(d.serving_version()))
              << (d.last_report().empty() ? "" : ", " + d.last_report())
              << (d.detail().empty() ? "" : " — " + d.detail()) << "\n";
  }
}

struct KeygenArgs {
  std::string out;
};

absl::Status RunKeygen(const KeygenArgs& args) {
  absl::StatusOr<release::SigningKey> key = release::SigningKey::Generate();
  if (!key.ok()) return key.status();
  const std::string private_path = args.out + ".key";
  const std::string public_path = args.out + ".pub";
  // The private key is never readable by others, not even for a moment.
  const mode_t old_mask = ::umask(077);
  absl::Status written = WriteFileAtomically(private_path, key->PrivatePem());
  ::umask(old_mask);
  if (!written.ok()) return written;
  if (absl::Status s = WriteFileAtomically(public_path, key->PublicPem()); !s.ok()) return s;
  std::cout << "key " << key->key_id() << ": private " << private_path << ", public " << public_path << "\n";
  return absl::OkStatus();
}

struct PublishArgs {
  AdminConnection connection;
  std::string model;
  uint64_t version = 0;
  bool rollback = false;
  uint32_t expires_in_days = 0;
  std::vector<std::string> signing_keys;
  double canary_fraction = 0;
  double success_threshold = 0;
  int64_t soak_seconds = -1;  // -1: the aggregator's default
  bool json = false;
};

absl::Status RunPublish(const PublishArgs& args) {
  std::vector<release::SigningKey> keys;
  for (const std::string& path : args.signing_keys) {
    absl::StatusOr<release::SigningKey> key = release::SigningKey::Load(path);
    if (!key.ok()) return key.status();
    keys.push_back(*std::move(key));
  }
  absl::StatusOr<std::unique_ptr<v1::ReleaseAdmin::Stub>> stub = Connect(args.connection);
  if (!stub.ok()) return stub.status();
  v1::PrepareReleaseRequest prepare;
  prepare.set_model_id(args.model);
  prepare.set_version(args.version);
  prepare.set_rollback(args.rollback);
  prepare.set_expires_in_days(args.expires_in_days);
  v1::PrepareReleaseResponse prepared;
  if (absl::Status s = FromGrpc((*stub)->PrepareRelease(Call().get(), prepare, &prepared), "preparing the release");
      !s.ok()) {
    return s;
  }
  // What is signed is shown first: the operator signs what they read.
  absl::StatusOr<release::ReleaseManifest> manifest = release::ReleaseManifest::FromJson(prepared.manifest_json());
  if (!manifest.ok()) return manifest.status();
  if (manifest->model_id != args.model || (args.version != 0 && manifest->version != args.version) ||
      manifest->rollback != args.rollback) {
    return absl::FailedPreconditionError("the aggregator prepared a manifest other than the one asked for; not signing");
  }
  std::cerr << "signing release " << manifest->release << " of " << manifest->model_id << ": version "
            << manifest->version << ", artifact " << manifest->artifact_sha256 << " (" << manifest->artifact_bytes
            << " bytes)" << (manifest->rollback ? ", a rollback" : "") << "\n";
  release::SignedRelease envelope{prepared.manifest_json(), {}};
  for (const release::SigningKey& key : keys) release::AddSignature(envelope, key);
  v1::PublishRequest publish;
  publish.set_signed_release(envelope.ToJson());
  publish.mutable_rollout()->set_canary_fraction(args.canary_fraction);
  publish.mutable_rollout()->set_success_threshold(args.success_threshold);
  if (args.soak_seconds >= 0) publish.mutable_rollout()->set_soak_seconds(static_cast<uint32_t>(args.soak_seconds));
  v1::RolloutStatus status;
  if (absl::Status s = FromGrpc((*stub)->Publish(Call().get(), publish, &status), "publishing"); !s.ok()) return s;
  PrintStatus(status, args.json);
  return absl::OkStatus();
}

struct RolloutArgs {
  AdminConnection connection;
  std::string model;
  bool json = false;
};

absl::Status RunRollout(const RolloutArgs& args, v1::ControlRolloutRequest::Action action) {
  absl::StatusOr<std::unique_ptr<v1::ReleaseAdmin::Stub>> stub = Connect(args.connection);
  if (!stub.ok()) return stub.status();
  v1::RolloutStatus status;
  grpc::Status s;
  if (action == v1::ControlRolloutRequest::ACTION_UNSPECIFIED) {
    v1::GetRolloutRequest request;
    request.set_model_id(args.model);
    s = (*stub)->GetRollout(Call().get(), request, &status);
  } else {
    v1::ControlRolloutRequest request;
    request.set_model_id(args.model);
    request.set_action(action);
    s = (*stub)->ControlRollout(Call().get(), request, &status);
  }
  if (absl::Status failed = FromGrpc(s, "rollout"); !failed.ok()) return failed;
  PrintStatus(status, args.json);
  return absl::OkStatus();
}

void AddPublishOptions(CLI::App* cmd, PublishArgs& args) {
  AddConnectionOptions(cmd, args.connection);
  cmd->add_option("-m,--model", args.model, "Model id")->required();
  cmd->add_option("--signing-key", args.signing_keys,
                  "PEM Ed25519 private key to sign with (repeat for k-of-n: each adds a signature)")
      ->required();
  cmd->add_option("--expires-in-days", args.expires_in_days, "Devices refuse the manifest after this (default 30)");
  cmd->add_option("--canary-fraction", args.canary_fraction, "Share of devices that get it first");
  cmd->add_option("--success-threshold", args.success_threshold, "Share of canaries that must succeed");
  cmd->add_option("--soak-seconds", args.soak_seconds,
                  "Wait after the canaries succeed, before the rest (default: the aggregator's soak_seconds)")
      ->check(CLI::Range(int64_t{0}, int64_t{7 * 86400}));
  cmd->add_flag("--json", args.json, "Print the rollout status as JSON");
}

}  // namespace

void AddReleaseCommands(CLI::App& app, absl::Status* result) {
  auto keygen = std::make_shared<KeygenArgs>();
  CLI::App* keygen_cmd = app.add_subcommand("keygen", "Make an Ed25519 release signing key pair (PREFIX.key, PREFIX.pub)");
  keygen_cmd->add_option("--out", keygen->out, "File name prefix")->required();
  keygen_cmd->callback([keygen, result] { *result = RunKeygen(*keygen); });

  auto publish = std::make_shared<PublishArgs>();
  CLI::App* publish_cmd = app.add_subcommand("publish", "Sign a model version and start its staged rollout");
  AddPublishOptions(publish_cmd, *publish);
  publish_cmd->add_option("--version", publish->version, "The version to release (default: the latest)");
  publish_cmd->callback([publish, result] { *result = RunPublish(*publish); });

  auto rollout = std::make_shared<RolloutArgs>();
  CLI::App* rollout_cmd = app.add_subcommand("rollout", "See and steer the rollout of a model's latest release");
  rollout_cmd->require_subcommand(1);
  const std::pair<const char*, v1::ControlRolloutRequest::Action> actions[] = {
      {"status", v1::ControlRolloutRequest::ACTION_UNSPECIFIED},
      {"pause", v1::ControlRolloutRequest::PAUSE},
      {"resume", v1::ControlRolloutRequest::RESUME},
      {"abort", v1::ControlRolloutRequest::ABORT}};
  for (const auto& [name, action] : actions) {
    CLI::App* sub = rollout_cmd->add_subcommand(name, StrCat("The rollout: ", name));
    AddConnectionOptions(sub, rollout->connection);
    sub->add_option("-m,--model", rollout->model, "Model id")->required();
    sub->add_flag("--json", rollout->json, "Print the status as JSON");
    sub->callback([rollout, result, action = action] { *result = RunRollout(*rollout, action); });
  }
  // A rollback is a signed release of an older version that says so.
  auto rollback = std::make_shared<PublishArgs>();
  rollback->rollback = true;
  rollback->canary_fraction = 1.0;
  CLI::App* rollback_cmd =
      rollout_cmd->add_subcommand("rollback", "Sign and roll out an older version as a rollback (to every device at once)");
  AddPublishOptions(rollback_cmd, *rollback);
  rollback_cmd->add_option("--to-version", rollback->version, "The version to return to")->required();
  rollback_cmd->callback([rollback, result] { *result = RunPublish(*rollback); });
}

}  // namespace edgellm::tools

// `edgellm keygen`, `edgellm publish`, `edgellm rollout`: release signing keys,
// signed releases of a model version, and the staged rollout that follows.
// Manifests are signed here, on the operator's machine: the aggregator never
// holds the operator's private keys.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>


#include <iostream>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "common/atomic_file.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/ops/tls_files.h"
#include "edgellm/v1/ota.grpc.pb.h"
#include "federated/protocol/proto_json.h"
#include "federated/protocol/sha256.h"
#include "federated/release/evaluation_proto.h"
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
    std::cout << federated::ProtoJson(status) << "\n";
    return;
  }
  if (status.stage() == "none") {
    std::cout << status.model_id() << ": no release yet\n";
  } else {
    std::cout << status.model_id() << ": release " << status.release() << " (version " << status.version()
              << (status.rollback() ? ", a rollback" : "") << "): " << status.stage()
              << (status.detail().empty() ? "" : " — " + status.detail()) << "\n"
              << "  canary fraction " << status.params().canary_fraction() << ", success threshold "
              << status.params().success_threshold() << ", soak " << status.params().soak_seconds() << " s"
              << (status.params().require_approval() ? ", then an operator's approval" : "") << "\n";
  }
  for (const v1::DeviceRollout& d : status.devices()) {
    std::cout << "  " << d.device_id() << (d.canary() ? " (canary)" : "") << ": serving "
              << (d.serving_version() == 0 ? std::string("the base model")
                                           : "version " + std::to_string(d.serving_version()))
              << (d.last_report().empty() ? "" : ", " + d.last_report())
              << (d.detail().empty() ? "" : " — " + d.detail()) << "\n";
    if (d.has_evaluation()) {
      std::cout << "    evaluation: " << release::DescribeFigures(release::FromProto(d.evaluation())) << "\n";
    }
    if (d.has_live()) {
      const release::LiveReport live{release::FromProto(d.live()), release::FromProto(d.live_baseline())};
      std::cout << "    serving: " << release::DescribeLive(live) << "\n";
    }
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
  std::string base_model;  // the GGUF the release is for, to check its sha256 (optional)
  std::string base_file;   // a GGUF to release whole as the new base model (a base-model release)
  uint64_t version = 0;
  bool rollback = false;
  uint32_t expires_in_days = 0;
  std::vector<std::string> signing_keys;
  double canary_fraction = 0;
  double success_threshold = 0;
  int64_t soak_seconds = -1;  // -1: the aggregator's default
  bool require_approval = false;
  // The evaluation canaries judge the release by; none given: the aggregator's default.
  std::string eval_data;         // held-out JSONL
  double max_loss_ratio = 0;
  std::string exact_match;       // JSONL of {"prompt", "expected"[, "max_tokens"]}
  double max_exact_match_drop = 0;
  bool no_evaluation = false;
  bool json = false;
};

// The evaluation spec the publish options ask for, as JSON; "" when they ask for none.
absl::StatusOr<std::string> EvaluationJson(const PublishArgs& args) {
  if (args.eval_data.empty() && args.exact_match.empty()) {
    if (args.max_loss_ratio > 0 || args.max_exact_match_drop > 0) {
      return absl::InvalidArgumentError("--max-loss-ratio and --max-exact-match-drop need --eval-data or --exact-match");
    }
    return std::string();
  }
  release::EvaluationSpec spec;
  if (!args.eval_data.empty()) {
    absl::StatusOr<std::string> examples = ReadFileToString(args.eval_data, "--eval-data");
    if (!examples.ok()) return examples.status();
    spec.examples_jsonl = *std::move(examples);
    spec.max_loss_ratio = args.max_loss_ratio;
  }
  if (!args.exact_match.empty()) {
    absl::StatusOr<std::string> text = ReadFileToString(args.exact_match, "--exact-match");
    if (!text.ok()) return text.status();
    size_t line_number = 0;
    for (std::string_view rest = *text; !rest.empty();) {
      const size_t end = std::min(rest.find('\n'), rest.size());
      const std::string_view line = rest.substr(0, end);
      rest.remove_prefix(std::min(end + 1, rest.size()));
      ++line_number;
      if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (!j.is_object() || !j.contains("prompt") || !j["prompt"].is_string() || !j.contains("expected") ||
          !j["expected"].is_string()) {
        return absl::InvalidArgumentError(
            StrCat(args.exact_match, ":", line_number, ": not an object with \"prompt\" and \"expected\" text"));
      }
      spec.exact_match.push_back({j["prompt"].get<std::string>(), j["expected"].get<std::string>(),
                                  j.value("max_tokens", 0)});
    }
    spec.max_exact_match_drop = args.max_exact_match_drop;
  }
  // The same bounds the aggregator and the devices apply, checked before anything is sent.
  const std::string json = spec.ToJson();
  if (absl::StatusOr<release::EvaluationSpec> checked = release::EvaluationSpec::FromJson(json); !checked.ok()) {
    return checked.status();
  }
  return json;
}

// The prepared manifest's artifact, fetched and checked against its size and
// sha256: what is signed is what devices will get.
absl::Status CheckPreparedArtifact(v1::ReleaseAdmin::Stub& stub, const release::ReleaseManifest& manifest) {
  v1::FetchPreparedArtifactRequest request;
  request.set_model_id(manifest.model_id);
  request.set_sha256(manifest.artifact_sha256);
  auto context = Call();
  std::unique_ptr<grpc::ClientReader<v1::ArtifactChunk>> reader = stub.FetchPreparedArtifact(context.get(), request);
  federated::Sha256 hash;
  uint64_t bytes = 0;
  v1::ArtifactChunk chunk;
  while (reader->Read(&chunk)) {
    bytes += chunk.data().size();
    if (bytes > manifest.artifact_bytes) {
      context->TryCancel();
      (void)reader->Finish();
      return absl::FailedPreconditionError(StrCat("the artifact runs past the ", manifest.artifact_bytes,
                                                  " bytes the manifest states; not signing"));
    }
    hash.Update(chunk.data());
  }
  EDGELLM_RETURN_IF_ERROR(FromGrpc(reader->Finish(), "fetching the artifact to check it"));
  const std::string sha = hash.Finish();
  if (bytes != manifest.artifact_bytes || sha != manifest.artifact_sha256) {
    return absl::FailedPreconditionError(StrCat("the artifact is ", bytes, " bytes with sha256 ", sha,
                                                "; the manifest states ", manifest.artifact_bytes, " bytes with ",
                                                manifest.artifact_sha256, "; not signing"));
  }
  return absl::OkStatus();
}

// Everything in a prepared manifest that the operator did not choose is
// checked before it is signed: a hostile or broken aggregator gets nothing
// signed that devices would install in a way nobody asked for.
absl::Status CheckManifest(const release::ReleaseManifest& m, const PublishArgs& args, uint64_t current_release,
                           int64_t now) {
  auto refuse = [](const std::string& what) {
    return absl::FailedPreconditionError(StrCat("the prepared manifest ", what, "; not signing"));
  };
  if (m.model_id != args.model || (args.version != 0 && m.version != args.version) || m.rollback != args.rollback) {
    return refuse(StrCat("is for ", m.model_id, " version ", m.version, m.rollback ? " (a rollback)" : "",
                         ", not what was asked for"));
  }
  // Devices refuse every release at or below one they accepted: a jump would lock them out of the next ones.
  if (m.release != current_release + 1) {
    return refuse(StrCat("is release ", m.release, "; the model's next release is ", current_release + 1));
  }
  const release::ArtifactKind kind_asked = args.base_file.empty() ? release::ArtifactKind::kAdapter : release::ArtifactKind::kBase;
  if (m.kind != kind_asked) return refuse(StrCat("is of kind ", release::ArtifactKindName(m.kind)));
  if (m.created_at < now - 600 || m.created_at > now + 600) {
    return refuse(StrCat("was created at ", m.created_at, ", not now (", now, ")"));
  }
  const int64_t lifetime = m.expires_at - m.created_at;
  const int64_t asked = args.expires_in_days > 0 ? int64_t{args.expires_in_days} * 86400 : -1;
  if (lifetime <= 0 || lifetime > 366 * 86400 || (asked > 0 && std::llabs(lifetime - asked) > 60)) {
    return refuse(StrCat("expires ", lifetime / 86400.0, " days after its creation",
                         asked > 0 ? StrCat(", not the ", args.expires_in_days, " asked for") : ""));
  }
  if (m.kind == release::ArtifactKind::kBase) return absl::OkStatus();
  const nlohmann::json config = nlohmann::json::parse(m.adapter_config, nullptr, false);
  if (!config.is_object() || config.value("peft_type", "") != "LORA" || !config["r"].is_number_integer() ||
      !config["target_modules"].is_array()) {
    return refuse("has no LoRA adapter_config (peft_type LORA, r, target_modules)");
  }
  if (!args.base_model.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(std::string base_sha, federated::Sha256OfFile(args.base_model));
    if (base_sha != m.base_model_sha256) {
      return refuse(StrCat("is for the base model with sha256 ", m.base_model_sha256, ", not ", args.base_model,
                           " (", base_sha, ")"));
    }
  }
  return absl::OkStatus();
}

// Uploads `file` for a base-model release; returns its sha256, computed here.
absl::StatusOr<std::string> UploadBaseModel(v1::ReleaseAdmin::Stub& stub, const std::string& model_id,
                                            const std::string& file) {
  EDGELLM_ASSIGN_OR_RETURN(std::string sha, federated::Sha256OfFile(file));
  std::error_code ec;
  const uint64_t bytes = std::filesystem::file_size(file, ec);
  if (ec) return absl::InvalidArgumentError(StrCat("--base ", file, ": ", ec.message()));
  std::ifstream in(file, std::ios::binary);
  grpc::ClientContext context;
  // A large model over a slow link: an hour, not the admin calls' 30 s.
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::hours(1));
  v1::UploadBaseModelResponse response;
  std::unique_ptr<grpc::ClientWriter<v1::BaseModelChunk>> writer = stub.UploadBaseModel(&context, &response);
  v1::BaseModelChunk chunk;
  chunk.mutable_header()->set_model_id(model_id);
  chunk.mutable_header()->set_total_bytes(bytes);
  chunk.mutable_header()->set_sha256(sha);
  std::string buffer(1 << 20, '\0');
  const auto start = std::chrono::steady_clock::now();
  bool writing = true;
  do {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    chunk.set_data(buffer.data(), static_cast<size_t>(in.gcount()));
    writing = writer->Write(chunk);
    chunk.clear_header();
  } while (writing && in.gcount() > 0 && in);
  writer->WritesDone();
  EDGELLM_RETURN_IF_ERROR(FromGrpc(writer->Finish(), "uploading the base model"));
  if (response.sha256() != sha || response.bytes() != bytes) {
    return absl::FailedPreconditionError("the aggregator stored other bytes than were sent");
  }
  std::cerr << "uploaded " << file << " (" << bytes << " bytes, sha256 " << sha << ") in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
  return sha;
}

absl::Status RunPublish(const PublishArgs& args) {
  std::vector<release::SigningKey> keys;
  for (const std::string& path : args.signing_keys) {
    absl::StatusOr<release::SigningKey> key = release::SigningKey::Load(path);
    if (!key.ok()) return key.status();
    keys.push_back(*std::move(key));
  }
  absl::StatusOr<std::unique_ptr<v1::ReleaseAdmin::Stub>> stub = Connect(args.connection);
  if (!stub.ok()) return stub.status();
  v1::GetRolloutRequest current_request;
  current_request.set_model_id(args.model);
  v1::RolloutStatus current;
  EDGELLM_RETURN_IF_ERROR(
      FromGrpc((*stub)->GetRollout(Call().get(), current_request, &current), "reading the current release"));
  std::string base_sha;
  if (!args.base_file.empty()) {
    absl::StatusOr<std::string> uploaded = UploadBaseModel(**stub, args.model, args.base_file);
    if (!uploaded.ok()) return uploaded.status();
    base_sha = *std::move(uploaded);
  }
  v1::PrepareReleaseRequest prepare;
  prepare.set_model_id(args.model);
  prepare.set_base_model_sha256(base_sha);
  prepare.set_version(args.version);
  prepare.set_rollback(args.rollback);
  prepare.set_expires_in_days(args.expires_in_days);
  absl::StatusOr<std::string> evaluation = EvaluationJson(args);
  if (!evaluation.ok()) return evaluation.status();
  prepare.set_evaluation_json(*evaluation);
  prepare.set_no_evaluation(args.no_evaluation);
  v1::PrepareReleaseResponse prepared;
  if (absl::Status s = FromGrpc((*stub)->PrepareRelease(Call().get(), prepare, &prepared), "preparing the release");
      !s.ok()) {
    return s;
  }
  // What is signed is shown first: the operator signs what they read.
  absl::StatusOr<release::ReleaseManifest> manifest = release::ReleaseManifest::FromJson(prepared.manifest_json());
  if (!manifest.ok()) return manifest.status();
  const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch()).count();
  EDGELLM_RETURN_IF_ERROR(CheckManifest(*manifest, args, current.release(), now));
  std::cerr << "signing release " << manifest->release << " of " << manifest->model_id << ": version "
            << manifest->version << " (parent " << manifest->parent_version << ")"
            << (manifest->rollback ? ", a rollback" : "") << "\n";
  if (manifest->kind == release::ArtifactKind::kBase) {
    // What is signed is the file read here: the sha256 was computed from it.
    if (manifest->artifact_sha256 != base_sha) {
      return absl::FailedPreconditionError("the prepared manifest names another file than the one uploaded; not signing");
    }
    std::cerr << "  base model " << args.base_file << ": " << manifest->artifact_bytes << " bytes, sha256 "
              << manifest->artifact_sha256 << "\n"
              << "  adapters released for the previous base model are refused by devices that install it\n";
  } else {
    EDGELLM_RETURN_IF_ERROR(CheckPreparedArtifact(**stub, *manifest));
    const nlohmann::json adapter = nlohmann::json::parse(manifest->adapter_config);
    std::cerr << "  artifact " << manifest->artifact_sha256 << " (" << manifest->artifact_bytes
              << " bytes, fetched and checked)\n"
              << "  adapter: LoRA rank " << adapter["r"] << ", alpha " << adapter.value("lora_alpha", nlohmann::json())
              << " on " << adapter["target_modules"].dump() << "\n"
              << "  for base model sha256 " << manifest->base_model_sha256
              << (args.base_model.empty() ? "" : " (checked against " + args.base_model + ")") << "\n";
  }
  std::cerr << "  expires in " << (manifest->expires_at - now) / 86400.0 << " days\n";
  if (const std::optional<release::EvaluationSpec>& e = manifest->evaluation) {
    std::cerr << "  judged by the canaries before serving: ";
    if (!e->examples_jsonl.empty()) {
      std::cerr << e->examples_jsonl.size() << " bytes of held-out examples"
                << (e->max_loss_ratio > 0 ? StrCat(", loss at most ", e->max_loss_ratio, "x the replaced version's")
                                          : std::string(", loss reported"));
    }
    if (!e->exact_match.empty()) {
      std::cerr << (e->examples_jsonl.empty() ? "" : "; ") << e->exact_match.size()
                << " exact-match prompts, a drop of at most " << e->max_exact_match_drop;
    }
    std::cerr << "\n";
  } else {
    std::cerr << "  no evaluation: the canaries smoke-test it only\n";
  }
  release::SignedRelease envelope{prepared.manifest_json(), {}};
  for (const release::SigningKey& key : keys) release::AddSignature(envelope, key);
  v1::PublishRequest publish;
  publish.set_signed_release(envelope.ToJson());
  publish.mutable_rollout()->set_canary_fraction(args.canary_fraction);
  publish.mutable_rollout()->set_success_threshold(args.success_threshold);
  if (args.soak_seconds >= 0) publish.mutable_rollout()->set_soak_seconds(static_cast<uint32_t>(args.soak_seconds));
  publish.mutable_rollout()->set_require_approval(args.require_approval);
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

struct FleetArgs {
  AdminConnection connection;
  std::string model;  // "": every model
  bool json = false;
};

// One line per device and the latest round of each model; --json: all of it, as the fleet page reads it.
absl::Status RunFleet(const FleetArgs& args) {
  absl::StatusOr<std::unique_ptr<v1::ReleaseAdmin::Stub>> stub = Connect(args.connection);
  if (!stub.ok()) return stub.status();
  v1::GetFleetRequest request;
  request.set_model_id(args.model);
  v1::FleetStatus fleet;
  if (absl::Status failed = FromGrpc((*stub)->GetFleet(Call().get(), request, &fleet), "fleet"); !failed.ok()) {
    return failed;
  }
  if (args.json) {
    std::cout << federated::ProtoJson(fleet) << "\n";
    return absl::OkStatus();
  }
  for (const v1::ModelFleet& model : fleet.models()) {
    const v1::RolloutStatus& rollout = model.rollout();
    std::cout << model.model_id() << ": " << model.devices_size() << " devices, latest version "
              << (model.versions().empty() ? 0 : model.versions().rbegin()->version()) << ", rollout "
              << (rollout.stage() == "none" ? std::string("none")
                                            : StrCat("of release ", rollout.release(), " ", rollout.stage()))
              << "\n";
    for (const v1::FleetDevice& d : model.devices()) {
      const int64_t ago_s = d.last_seen_unix_ms() > 0 ? (fleet.unix_ms() - d.last_seen_unix_ms()) / 1000 : -1;
      std::cout << "  " << d.device_id() << ": " << (d.online() ? "online" : "offline") << ", serving "
                << (d.serving_version() == 0 ? std::string("the base model") : StrCat("version ", d.serving_version()))
                << (ago_s >= 0 ? StrCat(", seen ", ago_s, " s ago") : std::string(", not seen since the start"))
                << (d.last_report().empty() ? "" : ", " + d.last_report()) << "\n";
    }
    if (!model.rounds().empty()) {
      const v1::FleetRound& r = *model.rounds().rbegin();
      std::cout << "  latest round " << r.round_id() << ": " << r.state() << ", " << r.participants_size()
                << " participants" << (r.outcome().empty() ? "" : " — " + r.outcome()) << "\n";
    }
  }
  return absl::OkStatus();
}

void AddPublishOptions(CLI::App* cmd, PublishArgs& args) {
  AddConnectionOptions(cmd, args.connection);
  cmd->add_option("-m,--model", args.model, "Model id")->required();
  cmd->add_option("--signing-key", args.signing_keys,
                  "PEM Ed25519 private key to sign with (repeat for k-of-n: each adds a signature)")
      ->required();
  cmd->add_option("--expires-in-days", args.expires_in_days, "Devices refuse the manifest after this (default 30)");
  cmd->add_option("--base-model", args.base_model,
                  "The base GGUF the release is for: its sha256 must be the one the manifest names");
  cmd->add_option("--canary-fraction", args.canary_fraction, "Share of devices that get it first");
  cmd->add_option("--success-threshold", args.success_threshold, "Share of canaries that must succeed");
  cmd->add_option("--soak-seconds", args.soak_seconds,
                  "Wait after the canaries succeed, before the rest (default: the aggregator's soak_seconds)")
      ->check(CLI::Range(int64_t{0}, int64_t{7 * 86400}));
  cmd->add_flag("--require-approval", args.require_approval,
                "After the soak, wait for `edgellm rollout approve` before the rest of the fleet");
  cmd->add_option("--eval-data", args.eval_data,
                  "Held-out JSONL the canaries measure the release's loss on, against the version they serve "
                  "(default: the model's eval_data on the aggregator)");
  cmd->add_option("--max-loss-ratio", args.max_loss_ratio,
                  "Canaries refuse the release when its loss is over this times the served version's")
      ->check(CLI::Range(0.0, 1e6));
  cmd->add_option("--exact-match", args.exact_match,
                  "JSONL of {\"prompt\", \"expected\"}: the greedy completion must begin with the expected text");
  cmd->add_option("--max-exact-match-drop", args.max_exact_match_drop,
                  "How far the share of exact matches may fall below the served version's (default 0)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_flag("--no-evaluation", args.no_evaluation, "Canaries only smoke-test the release");
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
  publish_cmd->add_option("--version", publish->version,
                          "The version to release (default: the latest; with --base: one past the latest released)");
  publish_cmd->add_option("--base", publish->base_file,
                          "Release this GGUF whole as the new base model (uploaded to the aggregator first)");
  publish_cmd->callback([publish, result] { *result = RunPublish(*publish); });

  auto fleet = std::make_shared<FleetArgs>();
  CLI::App* fleet_cmd = app.add_subcommand("fleet", "Devices, rounds, versions and rollouts, as the fleet page shows them");
  AddConnectionOptions(fleet_cmd, fleet->connection);
  fleet_cmd->add_option("-m,--model", fleet->model, "Model id (default: every model)");
  fleet_cmd->add_flag("--json", fleet->json, "Print it as JSON (what the fleet page's /api/fleet answers)");
  fleet_cmd->callback([fleet, result] { *result = RunFleet(*fleet); });

  auto rollout = std::make_shared<RolloutArgs>();
  CLI::App* rollout_cmd = app.add_subcommand("rollout", "See and steer the rollout of a model's latest release");
  rollout_cmd->require_subcommand(1);
  const std::pair<const char*, v1::ControlRolloutRequest::Action> actions[] = {
      {"status", v1::ControlRolloutRequest::ACTION_UNSPECIFIED},
      {"pause", v1::ControlRolloutRequest::PAUSE},
      {"resume", v1::ControlRolloutRequest::RESUME},
      {"approve", v1::ControlRolloutRequest::APPROVE},
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

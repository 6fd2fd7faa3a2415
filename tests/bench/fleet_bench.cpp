// edgellm-bench-fleet: many light simulated devices against one running
// edgellm-aggregator — each with its own certificate and TLS channel — for
// one round: all register, then each waits to be selected and uploads an
// int8 update. Prints the aggregator's memory (from /proc) at the start,
// after registration and after the round, and the upload phase's wall time:
//
//   bench devices=<n> values=<adapter values> metric=<name> value=<number> unit=<unit>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <functional>
#include <chrono>
#include <fstream>
#include <iostream>
#include <random>
#include <thread>

#include <CLI/CLI.hpp>

#include "daemon/engine/llama_model.h"
#include "daemon/engine/lora_adapter.h"
#include "edgellm/v1/federation.grpc.pb.h"
#include "federated/adapter/adapter_tensors.h"
#include "federated/protocol/sha256.h"
#include "federated/protocol/update_codec.h"
#include "tests/support/process_state.h"

namespace edgellm::bench {
namespace {

using Clock = std::chrono::steady_clock;
using edgellm::testing::ProcessMemoryMiB;

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::unique_ptr<grpc::ClientContext> Context() {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(120));
  context->set_wait_for_ready(true);
  return context;
}

int Run(int argc, char** argv) {
  CLI::App app("Simulated devices for one federated round against a running aggregator");
  std::string target, pki, model_path, model_id, targets = "q_proj,v_proj";
  int devices = 10, parallel = 16, pid = 0, rank = 8;
  app.add_option("--aggregator", target, "HOST:PORT")->required();
  app.add_option("--aggregator-pid", pid, "Its process id, to read its memory")->required();
  app.add_option("--pki", pki, "deploy/pki.sh directory with ca.pem and dev-NNNN.pem/.key")->required();
  app.add_option("--model", model_path, "The aggregator's base GGUF")->required();
  app.add_option("--model-id", model_id, "Its model id")->required();
  app.add_option("--devices", devices, "Simulated devices (dev-0000 ...)")->capture_default_str();
  app.add_option("--rank", rank, "LoRA rank")->capture_default_str();
  app.add_option("--targets", targets, "Adapted projections")->capture_default_str();
  app.add_option("--parallel", parallel, "Client threads")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  auto model = engine::LlamaModel::Load(model_path, {});
  auto sha = federated::Sha256OfFile(model_path);
  if (!model.ok() || !sha.ok()) return 1;
  engine::LoraConfig lora;
  lora.rank = rank;
  lora.targets = *engine::ParseLoraTargets(targets);
  auto adapter = engine::LoraAdapter::Create(lora, (*model)->config());
  const federated::TensorSet layout = federated::ZerosLike(federated::AdapterTensors(*adapter, false));
  const std::string ca = ReadAll(pki + "/ca.pem");

  std::atomic<int> registered{0}, submitted{0}, failed{0};
  auto device_name = [](int i) {
    char name[16];
    std::snprintf(name, sizeof(name), "dev-%04d", i);
    return std::string(name);
  };
  // Every device registers first (the round opens only once all are there), then each uploads.
  std::vector<std::unique_ptr<v1::Federation::Stub>> stubs(static_cast<size_t>(devices));
  auto register_devices = [&](int thread) {
    for (int i = thread; i < devices; i += parallel) {
      const std::string id = device_name(i);
      grpc::SslCredentialsOptions ssl;
      ssl.pem_root_certs = ca;
      ssl.pem_cert_chain = ReadAll(pki + "/" + id + ".pem");
      ssl.pem_private_key = ReadAll(pki + "/" + id + ".key");
      stubs[i] = v1::Federation::NewStub(grpc::CreateChannel(target, grpc::SslCredentials(ssl)));
      v1::RegisterRequest request;
      request.set_device_id(id);
      request.set_protocol_version(1);
      request.set_daemon_version("bench");
      request.set_model_id(model_id);
      request.set_base_model_sha256(*sha);
      request.mutable_adapter_schema()->set_rank(rank);
      request.mutable_capabilities()->set_local_examples(10);  // what each update claims below
      for (engine::LoraTarget t : lora.targets) {
        request.mutable_adapter_schema()->add_targets(std::string(engine::LoraTargetName(t)));
      }
      v1::RegisterResponse response;
      if (stubs[i]->Register(Context().get(), request, &response).ok()) {
        ++registered;
      } else {
        ++failed;
      }
    }
  };
  auto upload = [&](int thread) {
    std::mt19937_64 rng(static_cast<uint64_t>(thread));
    std::normal_distribution<float> normal(0.0f, 1e-3f);
    for (int i = thread; i < devices; i += parallel) {
      const std::string id = device_name(i);
      v1::Federation::Stub& stub = *stubs[i];
      v1::GetTaskResponse task;
      while (true) {
        v1::GetTaskRequest ask;
        ask.set_device_id(id);
        ask.set_model_id(model_id);
        if (!stub.GetTask(Context().get(), ask, &task).ok() || task.outcome() == v1::GetTaskResponse::TRAIN) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
      }
      if (task.outcome() != v1::GetTaskResponse::TRAIN) {
        ++failed;
        continue;
      }
      federated::TensorSet delta = layout;
      for (federated::NamedTensor& t : delta) {
        for (float& v : t.values) v = normal(rng);
      }
      const std::string bytes = federated::EncodeTensors(
          {model_id, task.task().round_id(), task.task().adapter_version(), delta}, federated::TensorEncoding::kInt8);
      v1::SubmitUpdateResponse response;
      auto context = Context();
      auto writer = stub.SubmitUpdate(context.get(), &response);
      v1::UpdateChunk header;
      header.mutable_header()->set_device_id(id);
      header.mutable_header()->set_model_id(model_id);
      header.mutable_header()->set_round_id(task.task().round_id());
      header.mutable_header()->set_idempotency_key("k" + std::to_string(i));
      header.mutable_header()->set_example_count(10);
      header.mutable_header()->set_total_bytes(bytes.size());
      header.mutable_header()->set_sha256(federated::Sha256Hex(bytes));
      writer->Write(header);
      for (size_t at = 0; at < bytes.size(); at += 1 << 20) {
        v1::UpdateChunk chunk;
        chunk.set_data(bytes.substr(at, 1 << 20));
        writer->Write(chunk);
      }
      writer->WritesDone();
      if (writer->Finish().ok() && response.outcome() == v1::SubmitUpdateResponse::ACCEPTED) {
        ++submitted;
      } else {
        ++failed;
      }
    }
  };
  auto run_all = [&](const std::function<void(int)>& work) {
    std::vector<std::thread> threads;
    for (int t = 0; t < parallel; ++t) threads.emplace_back(work, t);
    for (std::thread& t : threads) t.join();
  };
  const double rss_before = ProcessMemoryMiB(pid, "VmRSS");
  run_all(register_devices);
  const double rss_registered = ProcessMemoryMiB(pid, "VmRSS");
  const auto first_submit = Clock::now();
  run_all(upload);
  const double submit_seconds = std::chrono::duration<double>(Clock::now() - first_submit).count();
  // The round closes within a tick of the last update.
  std::this_thread::sleep_for(std::chrono::seconds(2));
  const std::string prefix = "bench devices=" + std::to_string(devices) +
                             " values=" + std::to_string(federated::ValueCount(layout)) + " metric=";
  auto line = [&](const std::string& metric, double value, const std::string& unit) {
    std::cout << prefix << metric << " value=" << value << " unit=" << unit << "\n";
  };
  line("accepted_updates", submitted, "updates");
  line("failed_devices", failed, "devices");
  line("registered_devices", registered, "devices");
  line("aggregator_rss_at_start", rss_before, "MiB");
  line("aggregator_rss_registered", rss_registered, "MiB");
  line("aggregator_rss_after_round", ProcessMemoryMiB(pid, "VmRSS"), "MiB");
  line("aggregator_peak_rss", ProcessMemoryMiB(pid, "VmHWM"), "MiB");
  line("round_upload_seconds", submit_seconds, "s");
  line("updates_per_second", submitted / submit_seconds, "updates/s");
  return failed == 0 ? 0 : 1;
}

}  // namespace
}  // namespace edgellm::bench

int main(int argc, char** argv) { return edgellm::bench::Run(argc, argv); }

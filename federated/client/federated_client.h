// federated/client/federated_client.h — the device's side of federated
// rounds, inside edgellmd.
//
// A loop registers with the aggregator, polls for a task, and for each round
// it is selected for: fetches the round's adapter (resumable, sha256
// checked), trains it on the local data with `edgellm train` as a supervised,
// preemptible child (the TrainingWorker), encodes the delta (F16 or int8 per
// block, then zstd) and uploads it (resumable, with retries and an
// idempotency key, so a retried upload counts once). A second thread sends
// heartbeats the whole time, so minutes of training never look like death.
//
// Everything a round writes is under work_dir/<model>-round-<id>/, so a
// daemon restarted mid-round picks the round up where it was: a complete
// download is not fetched again, training resumes from its checkpoint, an
// encoded update is sent as it is.
#ifndef EDGELLM_FEDERATED_CLIENT_FEDERATED_CLIENT_H_
#define EDGELLM_FEDERATED_CLIENT_FEDERATED_CLIENT_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "common/mutex.h"
#include "daemon/engine/llama_config.h"
#include "daemon/train/training_worker.h"

namespace edgellm::federated {

struct FederatedClientConfig {
  std::string aggregator;  // HOST:PORT
  // PEM files: the CA that signed the aggregator's certificate, and this
  // device's certificate (its common name is the device id) and key.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  std::string device_id;  // "": the certificate's common name
  std::string model_id;
  std::string work_dir;
  // The adapter schema this device declares (the aggregator's must match).
  int32_t rank = 8;
  std::string targets = "q_proj,v_proj";
  // Model, data, program, threads and memory budget; the round sets the rest.
  train::TrainCommand trainer;
  double busy_share = 0.0;
  std::chrono::milliseconds idle_grace{250};
};

struct FederatedClientStats {
  int64_t rounds_submitted = 0;
  int64_t bytes_sent = 0;    // update bytes, all rounds
  int64_t bytes_fetched = 0;
  uint64_t round_id = 0;     // the round worked on last
  int32_t state = 0;         // edgellm.v1.DeviceState
};

class FederatedClient {
 public:
  using Log = std::function<void(const std::string&)>;
  // Reads the certificates (InvalidArgument naming a bad file) and the local
  // data size; `model` gives the shapes to check the round's adapter against.
  static absl::StatusOr<std::unique_ptr<FederatedClient>> Create(FederatedClientConfig config,
                                                                 const engine::LlamaConfig& model, Log log);
  ~FederatedClient();  // Stop()

  void Start();
  void Stop();
  // Requests are being served; passed on to the trainer.
  void SetBusy(bool busy);
  void SetMemoryShort(bool short_of_memory);
  FederatedClientStats stats() const;
  const std::string& device_id() const;

 private:
  struct Impl;
  explicit FederatedClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_CLIENT_FEDERATED_CLIENT_H_

#include "federated/aggregator/base_deltas.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/read_file.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/gguf_reader.h"
#include "federated/protocol/sha256.h"
#include "federated/release/base_delta.h"

namespace edgellm::federated {
namespace {

namespace fs = std::filesystem;

// zstd's level for deltas: most of a merged model's difference is zeros,
// which every level finds; the higher ones cost minutes on a 1B model.
constexpr int kDeltaLevel = 9;

// The byte ranges of `to`'s tensors that stand where a tensor of the same
// name, type and size stood in `from`; none when either is not a GGUF file.
std::vector<release::MatchedRange> MatchTensors(const std::string& from, const std::string& to) {
  absl::StatusOr<std::unique_ptr<engine::GgufReader>> old_file = engine::GgufReader::Open(from);
  absl::StatusOr<std::unique_ptr<engine::GgufReader>> new_file = engine::GgufReader::Open(to);
  std::vector<release::MatchedRange> matched;
  if (!old_file.ok() || !new_file.ok()) return matched;
  for (const engine::GgufTensorInfo& t : (*new_file)->tensors()) {
    const engine::GgufTensorInfo* before = (*old_file)->FindTensor(t.name);
    if (before == nullptr || before->type != t.type || before->n_bytes != t.n_bytes) continue;
    matched.push_back({(*new_file)->data_offset() + t.offset, (*old_file)->data_offset() + before->offset, t.n_bytes});
  }
  return matched;
}

}  // namespace

BaseDeltas::~BaseDeltas() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (worker_.joinable()) worker_.join();
}

void BaseDeltas::StartMaking(const std::string& model_id, const std::string& to_sha256,
                             const std::string& configured_base, const std::string& configured_sha256) {
  absl::StatusOr<Job> job = Plan(model_id, to_sha256, configured_base, configured_sha256);
  if (!job.ok()) {
    log_(StrCat("no delta for base model ", to_sha256.substr(0, 12), ": ", job.status().message()));
    return;
  }
  // Kept until the delta is made (or found not worth making), for a restart to take up.
  std::error_code ec;
  fs::create_directories(dir_, ec);
  const nlohmann::json saved = {{"from_path", job->from_path}, {"from_sha256", job->from_sha256}};
  if (absl::Status s = WriteFileAtomically(JobFile(to_sha256), saved.dump()); !s.ok()) {
    log_(StrCat("base model ", to_sha256.substr(0, 12), ": its delta would not be made again after a restart: ",
                s.message()));
  }
  Enqueue(*std::move(job));
}

void BaseDeltas::ResumeStopped() {
  std::error_code ec;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_, ec)) {
    const fs::path& path = entry.path();
    const std::string to_sha256 = path.stem().string();
    if (path.extension() != ".job" || !IsSha256Hex(to_sha256)) continue;
    absl::StatusOr<std::string> text = ReadFileToString(path.string(), "delta job");
    const nlohmann::json j =
        text.ok() ? nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false) : nlohmann::json();
    if (!j.is_object() || !j.value("from_path", nlohmann::json()).is_string() ||
        !j.value("from_sha256", nlohmann::json()).is_string() || fs::exists(fs::path(dir_) / (to_sha256 + ".json"))) {
      fs::remove(path, ec);
      continue;
    }
    log_(StrCat("base model ", to_sha256.substr(0, 12), ": making the delta a stop interrupted"));
    Enqueue({to_sha256, j["from_path"].get<std::string>(), j["from_sha256"].get<std::string>()});
  }
}

void BaseDeltas::Enqueue(Job job) {
  MutexLock lock(&mu_);
  if (stopping_) return;
  jobs_.push_back(std::move(job));
  if (!worker_.joinable()) worker_ = std::thread([this] { Worker(); });
}

std::string BaseDeltas::JobFile(const std::string& to_sha256) const {
  return (fs::path(dir_) / (to_sha256 + ".job")).string();
}

bool BaseDeltas::Making(const std::string& to_sha256) {
  MutexLock lock(&mu_);
  return std::any_of(jobs_.begin(), jobs_.end(), [&](const Job& j) { return j.to_sha256 == to_sha256; });
}

void BaseDeltas::Worker() {
  while (true) {
    Job job;
    {
      MutexLock lock(&mu_);
      const auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !jobs_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      job = jobs_.front();
    }
    // Run logs what it made, or why it made none; stopped, the job stays for the next start.
    const absl::StatusOr<std::optional<BaseDelta>> made = Run(job);
    if (!absl::IsCancelled(made.status())) {
      if (!made.ok()) {
        log_(StrCat("no delta for base model ", job.to_sha256.substr(0, 12), ": ", made.status().message()));
      }
      std::error_code ec;
      fs::remove(JobFile(job.to_sha256), ec);
    }
    MutexLock lock(&mu_);
    jobs_.pop_front();
  }
}

absl::StatusOr<BaseDeltas::Job> BaseDeltas::Plan(const std::string& model_id, const std::string& to_sha256,
                                                 const std::string& configured_base,
                                                 const std::string& configured_sha256) {
  // Content-addressed: a stored file's name is its sha256, so neither file is hashed again here.
  Job job{to_sha256, configured_base, configured_sha256};
  const fs::path base_record = fs::path(dir_) / (model_id + ".base");
  if (fs::exists(base_record)) {
    EDGELLM_ASSIGN_OR_RETURN(std::string previous, ReadFileToString(base_record.string(), "base record"));
    if (IsSha256Hex(previous) && previous != to_sha256 && fs::exists(artifacts_.PathOf(previous))) {
      job.from_path = artifacts_.PathOf(previous);
      job.from_sha256 = previous;
    }
  }
  return job;
}

absl::StatusOr<std::optional<BaseDelta>> BaseDeltas::Run(const Job& job) {
  const std::string& to_sha256 = job.to_sha256;
  const std::string& from_sha = job.from_sha256;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) return absl::InternalError(StrCat("cannot create ", dir_, ": ", ec.message()));
  const fs::path record = fs::path(dir_) / (to_sha256 + ".json");
  if (fs::exists(record)) {
    if (std::optional<BaseDelta> known = For(to_sha256)) return known;
  }
  const std::string to_path = artifacts_.PathOf(to_sha256);
  if (from_sha == to_sha256) return std::optional<BaseDelta>();
  const auto start = std::chrono::steady_clock::now();
  const std::string out = (fs::path(dir_) / (to_sha256 + ".delta")).string();
  const auto stopping = [this] {
    MutexLock lock(&mu_);
    return stopping_;
  };
  if (absl::Status s = release::WriteBaseDelta(job.from_path, to_path, MatchTensors(job.from_path, to_path), out,
                                               kDeltaLevel, stopping);
      !s.ok()) {
    if (absl::IsCancelled(s)) return s;
    log_(StrCat("no delta for base model ", to_sha256.substr(0, 12), ": ", s.message()));
    return std::optional<BaseDelta>();
  }
  BaseDelta delta{from_sha, "", fs::file_size(out, ec)};
  const uint64_t whole = fs::file_size(to_path, ec);
  if (ec || delta.bytes * 10 > whole * 9) {
    log_(StrCat("no delta for base model ", to_sha256.substr(0, 12), ": ", delta.bytes, " bytes against ", whole,
                " whole saves too little"));
    fs::remove(out, ec);
    return std::optional<BaseDelta>();
  }
  EDGELLM_ASSIGN_OR_RETURN(delta.sha256, Sha256OfFile(out));
  EDGELLM_RETURN_IF_ERROR(artifacts_.Adopt(out, delta.sha256));
  const nlohmann::json j = {{"from", delta.from_sha256}, {"sha256", delta.sha256}, {"bytes", delta.bytes}};
  EDGELLM_RETURN_IF_ERROR(WriteFileAtomically(record.string(), j.dump()));
  log_(StrCat("base model ", to_sha256.substr(0, 12), ": a delta of ", delta.bytes, " bytes (", whole,
              " whole) against ", from_sha.substr(0, 12), ", made in ",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(), " s"));
  MutexLock lock(&mu_);
  known_[to_sha256] = delta;
  return std::optional<BaseDelta>(delta);
}

absl::Status BaseDeltas::Released(const std::string& model_id, const std::string& to_sha256) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  return WriteFileAtomically((fs::path(dir_) / (model_id + ".base")).string(), to_sha256);
}

std::optional<BaseDelta> BaseDeltas::For(const std::string& to_sha256) {
  MutexLock lock(&mu_);
  if (auto it = known_.find(to_sha256); it != known_.end()) return it->second;
  // Read once per artifact: what is not there now is recorded as none (Make adds what it makes).
  std::optional<BaseDelta>& known = known_[to_sha256];
  if (!IsSha256Hex(to_sha256)) return std::nullopt;
  absl::StatusOr<std::string> text = ReadFileToString((fs::path(dir_) / (to_sha256 + ".json")).string(), "delta");
  if (!text.ok()) return std::nullopt;
  const nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.value("from", nlohmann::json()).is_string() ||
      !j.value("sha256", nlohmann::json()).is_string() || !j.value("bytes", nlohmann::json()).is_number_unsigned()) {
    return std::nullopt;
  }
  BaseDelta delta{j["from"].get<std::string>(), j["sha256"].get<std::string>(), j["bytes"].get<uint64_t>()};
  if (!IsSha256Hex(delta.from_sha256) || !IsSha256Hex(delta.sha256)) return std::nullopt;
  known = delta;
  return delta;
}

bool BaseDeltas::IsDeltaOf(const std::string& to_sha256, const std::string& sha256) {
  const std::optional<BaseDelta> delta = For(to_sha256);
  return delta && delta->sha256 == sha256;
}

}  // namespace edgellm::federated

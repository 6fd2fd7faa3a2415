// tests/support/model_fixtures.h — synthetic GGUF models for tests, written
// once per test binary into a temporary directory removed at its exit.
#ifndef EDGELLM_TESTS_SUPPORT_MODEL_FIXTURES_H_
#define EDGELLM_TESTS_SUPPORT_MODEL_FIXTURES_H_

#include <gtest/gtest.h>

#include <filesystem>
#include <map>
#include <string>

#include "daemon/engine/llama_model.h"
#include "daemon/engine/synthetic_model.h"
#include "tests/support/test_support.h"

namespace edgellm::testing {

// Path of a synthetic model of `shape` and `type`; written on first use.
inline std::string SyntheticModel(const std::string& shape, engine::GgmlType type, uint64_t seed = 1) {
  static std::map<std::string, std::string> written;
  const std::string key = shape + "-" + std::string(engine::TraitsOf(type).name) + "-" + std::to_string(seed);
  if (auto it = written.find(key); it != written.end()) return it->second;
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("edgellm-models-" + std::to_string(::getpid()));
  if (written.empty()) TemporaryDirectories::Add(dir, TemporaryDirectories::kAlways);
  std::filesystem::create_directories(dir);
  const std::string path = (dir / (key + ".gguf")).string();
  std::optional<engine::ModelShape> s = engine::FindShape(shape);
  EXPECT_TRUE(s.has_value()) << shape;
  const absl::Status status = engine::WriteSyntheticModel({*s, type, seed, ""}, path);
  EXPECT_TRUE(status.ok()) << status;
  written[key] = path;
  return path;
}

// The model at `path` with 2 compute threads and `context` positions (0: the
// model's); nullptr, with a test failure, when it does not load.
inline std::unique_ptr<engine::LlamaModel> LoadModel(const std::string& path, int32_t context = 0) {
  engine::ModelOptions options;
  options.threads = 2;
  options.context_length = context;
  auto model = engine::LlamaModel::Load(path, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

// A cache of `capacity` positions (0: the model's context) in a pool of its own.
inline std::unique_ptr<engine::KvCache> NewCache(const engine::LlamaModel& model, int32_t capacity = 0) {
  auto cache = model.NewCache(capacity);
  EXPECT_TRUE(cache.ok()) << cache.status();
  return cache.ok() ? std::move(*cache) : nullptr;
}

}  // namespace edgellm::testing

#endif  // EDGELLM_TESTS_SUPPORT_MODEL_FIXTURES_H_

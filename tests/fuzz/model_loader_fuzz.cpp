// libFuzzer target: arbitrary bytes as a model file. Whatever the loader
// accepts — any architecture, its hyperparameters checked against its
// tensors — must run a forward: the loader, not the forward, is where a file
// that contradicts itself has to stop.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/llama_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm::engine;
  auto reader = GgufReader::FromBytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!reader.ok()) return 0;
  ModelOptions options;
  options.threads = 1;
  options.context_length = 8;
  auto model = LlamaModel::FromGguf(std::move(*reader), options);
  if (!model.ok()) return 0;
  const std::vector<TokenId> tokens = {0, static_cast<TokenId>((*model)->config().n_vocab - 1), 0};
  std::vector<float> logits;
  (void)(*model)->ForwardNoCache(tokens, &logits);
  return 0;
}

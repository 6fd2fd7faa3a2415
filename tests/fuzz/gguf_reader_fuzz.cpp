// libFuzzer target: arbitrary bytes as a GGUF file. Whatever the reader
// accepts must be safe to walk completely: every metadata value, every
// tensor's bytes, the model config and the tokenizer built from it.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/engine/gguf_reader.h"
#include "daemon/engine/llama_config.h"
#include "daemon/engine/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm::engine;
  auto reader = GgufReader::FromBytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!reader.ok()) return 0;
  for (const auto& [key, value] : (*reader)->metadata()) {
    (void)value.AsInt();
    (void)value.AsFloat();
    (void)value.AsString();
    (void)value.AsStringArray();
    (void)value.AsFloatArray();
    (void)value.AsIntArray();
  }
  uint64_t checksum = 0;
  for (const GgufTensorInfo& t : (*reader)->tensors()) {
    for (uint8_t b : (*reader)->TensorData(t)) checksum += b;
  }
  (void)LlamaConfig::FromGguf(**reader);
  auto tokenizer = Tokenizer::FromGguf(**reader);
  if (tokenizer.ok()) {
    const auto ids = (*tokenizer)->Encode("Hello <s> world \xe2\x96\x81 12", true, true);
    (void)(*tokenizer)->Decode(ids);
  }
  return checksum == 0xdeadbeef ? 1 : 0;
}

// libFuzzer target: arbitrary bytes as a safetensors file (a PEFT adapter's
// weights arrive from other machines). Whatever the reader accepts must be
// safe to read completely.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "daemon/engine/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm::engine;
  auto reader = SafetensorsReader::FromBytes(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!reader.ok()) return 0;
  double sum = 0.0;
  for (const SafetensorsTensor& t : (*reader)->tensors()) {
    std::vector<float> values(static_cast<size_t>(t.element_count()));
    ReadFloats(t, absl::MakeSpan(values));
    for (float v : values) sum += v;
  }
  for (const auto& [key, value] : (*reader)->metadata()) sum += static_cast<double>(key.size() + value.size());
  return sum == 0.123 ? 1 : 0;
}

// libFuzzer target: arbitrary bytes as a federated update (they arrive from
// devices over the network). Whatever the decoder accepts must be safe to
// read completely.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "federated/protocol/update_codec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace edgellm::federated;
  DecodeLimits limits;
  limits.max_decoded_bytes = 16 << 20;
  auto decoded = DecodeTensors(std::string_view(reinterpret_cast<const char*>(data), size), limits);
  if (!decoded.ok()) return 0;
  const double norm = L2Norm(decoded->tensors);
  return norm == 0.123 && FirstNonFinite(decoded->tensors).empty() ? 1 : 0;
}

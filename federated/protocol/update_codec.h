// federated/protocol/update_codec.h — the bytes of an update (a device's
// adapter delta) and of an adapter version sent to devices.
//
// Layout, little-endian, inside one zstd frame that states its size:
//   "EDLU" u32 format=1
//   u16 model-id length, model id, u64 round id, u64 base version
//   u32 tensor count, then per tensor:
//     u16 name length, name, u32 rows, u32 cols, u8 encoding, values:
//       F32: rows×cols f32     F16: rows×cols f16
//       INT8: per block of 32 values (the last may be shorter) an f32 scale
//             and the values as int8, value = q × scale
// The round and model ride inside the bytes, so an update replayed into
// another round is recognised from its content alone. Decoding never trusts
// a size: every length is checked against the limits and the bytes left.
#ifndef EDGELLM_FEDERATED_PROTOCOL_UPDATE_CODEC_H_
#define EDGELLM_FEDERATED_PROTOCOL_UPDATE_CODEC_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "federated/protocol/tensor_set.h"

namespace edgellm::federated {

enum class TensorEncoding : uint8_t { kF32 = 0, kF16 = 1, kInt8 = 2 };
std::string_view TensorEncodingName(TensorEncoding encoding);

struct EncodedTensors {
  std::string model_id;
  uint64_t round_id = 0;      // 0 for an adapter version
  uint64_t base_version = 0;  // the version the delta applies to, or this adapter's version
  TensorSet tensors;
};

struct DecodeLimits {
  uint64_t max_decoded_bytes = 512ull << 20;
  uint32_t max_tensors = 8192;
  uint32_t max_dimension = 1u << 20;
  uint32_t max_name_length = 256;
  // When set, the bytes must be an update of `model_id` holding exactly these
  // tensors (names and shapes, in order) in one encoding: the frame must
  // state the exact size that makes, checked before anything is inflated,
  // and each tensor's name and shape are checked before its values are
  // allocated.
  const TensorSet* layout = nullptr;
  std::string model_id;
};

// The size of an encoded update before compression.
uint64_t DecodedSize(std::string_view model_id, const TensorSet& layout, TensorEncoding encoding);

// InvalidArgument unless `bytes` is a zstd frame stating the exact decoded
// size of an update of `model_id` with these tensors in one of the encodings.
// Reads the frame header only.
absl::Status CheckDeclaredSize(std::string_view bytes, std::string_view model_id, const TensorSet& layout);

// Encodes and compresses (zstd `level`).
std::string EncodeTensors(const EncodedTensors& update, TensorEncoding encoding, int level = 3);
// InvalidArgument saying what is malformed (bad frame, truncated, a length
// beyond the limits or the bytes, an unknown encoding, trailing bytes);
// ResourceExhausted when the decoded size exceeds the limit.
absl::StatusOr<EncodedTensors> DecodeTensors(std::string_view bytes, const DecodeLimits& limits = {});

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_PROTOCOL_UPDATE_CODEC_H_

// federated/release/base_delta.h — a base-model release shipped as a delta
// against the model file a device already holds.
//
// The new file is cut into segments that cover it in order: ranges that
// stand where a range of the old file stood (a tensor of the same name, type
// and size, moved or not) are stored as their byte-wise difference
// (new − old mod 256: a quantized weight one step up is 0x01, one that did
// not move is 0x00), everything else (header, metadata, tensors that are
// new or changed shape) verbatim; the whole stream goes through one zstd
// frame. What it rebuilds is checked against the release's signed sha256 by
// the caller: the delta itself is not trusted.
//
// Stream (before zstd), integers little-endian:
//   "EDGELLM-DELTA-1\n", u64 old_size, u64 new_size, then segments:
//   u8 kind (0 verbatim, 1 difference), u64 length, [u64 old_offset], payload.
#ifndef EDGELLM_FEDERATED_RELEASE_BASE_DELTA_H_
#define EDGELLM_FEDERATED_RELEASE_BASE_DELTA_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace edgellm::release {

// Bytes [new_offset, new_offset + length) of the new file correspond to
// [old_offset, old_offset + length) of the old one.
struct MatchedRange {
  uint64_t new_offset = 0;
  uint64_t old_offset = 0;
  uint64_t length = 0;
};

// Writes the delta of `new_file` against `old_file` to `out` (atomically),
// at zstd `level`. `matched` must lie within both files and not overlap in
// the new one (InvalidArgument otherwise). Cancelled, with nothing written,
// when `stopping` (asked between chunks) says so.
absl::Status WriteBaseDelta(const std::string& old_file, const std::string& new_file,
                            std::vector<MatchedRange> matched, const std::string& out, int level,
                            const std::function<bool()>& stopping = {});

// Rebuilds the new file at `out` from `delta` and `old_file`, writing at
// most `new_size` bytes (the size the signed manifest states) and never
// reading outside the old file. InvalidArgument naming what is wrong for a
// malformed or mismatched delta; the caller checks the result's sha256.
absl::Status ApplyBaseDelta(const std::string& old_file, const std::string& delta, uint64_t new_size,
                            const std::string& out);

}  // namespace edgellm::release

#endif  // EDGELLM_FEDERATED_RELEASE_BASE_DELTA_H_

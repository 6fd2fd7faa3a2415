#include "federated/protocol/update_codec.h"

#include <zstd.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "common/fp16.h"
#include "common/status_macros.h"
#include "common/str_cat.h"

namespace edgellm::federated {
namespace {

constexpr char kMagic[4] = {'E', 'D', 'L', 'U'};
constexpr uint32_t kFormat = 1;
constexpr int64_t kBlock = 32;

class Writer {
 public:
  template <typename T>
  void Put(T value) {
    static_assert(std::endian::native == std::endian::little, "the format is little-endian");
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &value, sizeof(T));
  }
  void PutString(std::string_view s) {
    Put<uint16_t>(static_cast<uint16_t>(s.size()));
    bytes_.append(s);
  }
  std::string& bytes() { return bytes_; }

 private:
  std::string bytes_;
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  template <typename T>
  absl::StatusOr<T> Get(std::string_view what) {
    if (bytes_.size() - at_ < sizeof(T)) return Truncated(what);
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  absl::StatusOr<std::string_view> Take(uint64_t n, std::string_view what) {
    if (bytes_.size() - at_ < n) return Truncated(what);
    std::string_view piece = bytes_.substr(at_, n);
    at_ += n;
    return piece;
  }
  size_t left() const { return bytes_.size() - at_; }

 private:
  absl::Status Truncated(std::string_view what) const {
    return absl::InvalidArgumentError(StrCat("update: truncated at byte ", at_, " (", what, ")"));
  }
  std::string_view bytes_;
  size_t at_ = 0;
};

void EncodeValues(Writer& w, const std::vector<float>& values, TensorEncoding encoding) {
  switch (encoding) {
    case TensorEncoding::kF32:
      for (float v : values) w.Put<float>(v);
      return;
    case TensorEncoding::kF16:
      for (float v : values) w.Put<uint16_t>(Fp32ToFp16(v));
      return;
    case TensorEncoding::kInt8:
      for (size_t start = 0; start < values.size(); start += kBlock) {
        const size_t end = std::min(values.size(), start + static_cast<size_t>(kBlock));
        float max_abs = 0.0f;
        bool finite = true;
        for (size_t i = start; i < end; ++i) {
          finite = finite && std::isfinite(values[i]);
          max_abs = std::max(max_abs, std::fabs(values[i]));
        }
        // A non-finite value makes the block's scale NaN, so the receiver sees it.
        const float scale = finite ? max_abs / 127.0f : std::nanf("");
        w.Put<float>(scale);
        for (size_t i = start; i < end; ++i) {
          const float q = scale > 0.0f ? std::nearbyint(values[i] / scale) : 0.0f;
          w.Put<int8_t>(static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f)));
        }
      }
      return;
  }
}

absl::Status DecodeValues(Reader& r, TensorEncoding encoding, std::vector<float>& values, const std::string& name) {
  const std::string what = StrCat("values of ", name);
  const uint64_t n = values.size();
  switch (encoding) {
    case TensorEncoding::kF32: {
      auto raw = r.Take(n * 4, what);
      if (!raw.ok()) return raw.status();
      std::memcpy(values.data(), raw->data(), n * 4);
      return absl::OkStatus();
    }
    case TensorEncoding::kF16: {
      auto raw = r.Take(n * 2, what);
      if (!raw.ok()) return raw.status();
      for (uint64_t i = 0; i < n; ++i) values[i] = LoadFp16(reinterpret_cast<const uint8_t*>(raw->data()) + 2 * i);
      return absl::OkStatus();
    }
    case TensorEncoding::kInt8: {
      for (uint64_t start = 0; start < n; start += kBlock) {
        const uint64_t count = std::min<uint64_t>(kBlock, n - start);
        auto scale = r.Get<float>(what);
        if (!scale.ok()) return scale.status();
        auto q = r.Take(count, what);
        if (!q.ok()) return q.status();
        for (uint64_t i = 0; i < count; ++i) values[start + i] = static_cast<float>(static_cast<int8_t>((*q)[i])) * *scale;
      }
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError(StrCat("update: tensor ", name, " has an unknown encoding"));
}

absl::StatusOr<EncodedTensors> Parse(std::string_view raw, const DecodeLimits& limits) {
  Reader r(raw);
  auto magic = r.Take(4, "magic");
  if (!magic.ok()) return magic.status();
  if (std::memcmp(magic->data(), kMagic, 4) != 0) return absl::InvalidArgumentError("update: not an edgellm update");
  auto format = r.Get<uint32_t>("format");
  if (!format.ok()) return format.status();
  if (*format != kFormat) return absl::InvalidArgumentError(StrCat("update: format ", *format, " is not ", kFormat));
  EncodedTensors out;
  auto model_length = r.Get<uint16_t>("model id");
  if (!model_length.ok()) return model_length.status();
  auto model = r.Take(*model_length, "model id");
  if (!model.ok()) return model.status();
  out.model_id = std::string(*model);
  auto round = r.Get<uint64_t>("round");
  auto base = r.Get<uint64_t>("base version");
  auto count = r.Get<uint32_t>("tensor count");
  if (!round.ok() || !base.ok() || !count.ok()) return absl::InvalidArgumentError("update: truncated header");
  out.round_id = *round;
  out.base_version = *base;
  if (*count > limits.max_tensors) {
    return absl::InvalidArgumentError(StrCat("update: ", *count, " tensors, more than ", limits.max_tensors));
  }
  if (limits.layout != nullptr && *count != limits.layout->size()) {
    return absl::InvalidArgumentError(StrCat("update: ", *count, " tensors; expected ", limits.layout->size()));
  }
  out.tensors.reserve(*count);
  for (uint32_t t = 0; t < *count; ++t) {
    auto name_length = r.Get<uint16_t>("tensor name");
    if (!name_length.ok()) return name_length.status();
    if (*name_length == 0 || *name_length > limits.max_name_length) {
      return absl::InvalidArgumentError(StrCat("update: tensor ", t, " has a name of ", *name_length, " bytes"));
    }
    auto name = r.Take(*name_length, "tensor name");
    if (!name.ok()) return name.status();
    NamedTensor tensor;
    tensor.name = std::string(*name);
    auto rows = r.Get<uint32_t>("rows");
    auto cols = r.Get<uint32_t>("cols");
    auto encoding = r.Get<uint8_t>("encoding");
    if (!rows.ok() || !cols.ok() || !encoding.ok()) return absl::InvalidArgumentError("update: truncated tensor header");
    if (*rows == 0 || *cols == 0 || *rows > limits.max_dimension || *cols > limits.max_dimension) {
      return absl::InvalidArgumentError(StrCat("update: tensor ", tensor.name, " is ", *rows, "x", *cols));
    }
    if (*encoding > static_cast<uint8_t>(TensorEncoding::kInt8)) {
      return absl::InvalidArgumentError(StrCat("update: tensor ", tensor.name, " has unknown encoding ", *encoding));
    }
    if (limits.layout != nullptr) {
      const NamedTensor& expected = (*limits.layout)[t];
      if (tensor.name != expected.name || *rows != expected.rows || *cols != expected.cols) {
        return absl::InvalidArgumentError(StrCat("update: tensor ", t, " is ", tensor.name, " ", *rows, "x", *cols,
                                                 "; expected ", expected.name, " ", expected.rows, "x",
                                                 expected.cols));
      }
    }
    const uint64_t n = static_cast<uint64_t>(*rows) * *cols;
    // Every value takes at least one byte: a count beyond the bytes left is a lie.
    if (n > r.left()) return absl::InvalidArgumentError(StrCat("update: tensor ", tensor.name, " is truncated"));
    tensor.rows = *rows;
    tensor.cols = *cols;
    tensor.values.resize(n);
    if (absl::Status s = DecodeValues(r, static_cast<TensorEncoding>(*encoding), tensor.values, tensor.name); !s.ok()) {
      return s;
    }
    out.tensors.push_back(std::move(tensor));
  }
  if (r.left() != 0) return absl::InvalidArgumentError(StrCat("update: ", r.left(), " bytes after the last tensor"));
  return out;
}

}  // namespace

std::string_view TensorEncodingName(TensorEncoding encoding) {
  switch (encoding) {
    case TensorEncoding::kF32: return "f32";
    case TensorEncoding::kF16: return "f16";
    case TensorEncoding::kInt8: return "int8";
  }
  return "unknown";
}

uint64_t DecodedSize(std::string_view model_id, const TensorSet& layout, TensorEncoding encoding) {
  uint64_t size = 4 + 4 + 2 + model_id.size() + 8 + 8 + 4;
  for (const NamedTensor& t : layout) {
    const uint64_t n = static_cast<uint64_t>(t.rows) * t.cols;
    size += 2 + t.name.size() + 4 + 4 + 1;
    switch (encoding) {
      case TensorEncoding::kF32: size += 4 * n; break;
      case TensorEncoding::kF16: size += 2 * n; break;
      case TensorEncoding::kInt8: {
        const auto block = static_cast<uint64_t>(kBlock);
        size += n + 4 * ((n + block - 1) / block);
        break;
      }
    }
  }
  return size;
}

std::string EncodeTensors(const EncodedTensors& update, TensorEncoding encoding, int level) {
  Writer w;
  w.bytes().append(kMagic, 4);
  w.Put<uint32_t>(kFormat);
  w.PutString(update.model_id);
  w.Put<uint64_t>(update.round_id);
  w.Put<uint64_t>(update.base_version);
  w.Put<uint32_t>(static_cast<uint32_t>(update.tensors.size()));
  for (const NamedTensor& t : update.tensors) {
    w.PutString(t.name);
    w.Put<uint32_t>(static_cast<uint32_t>(t.rows));
    w.Put<uint32_t>(static_cast<uint32_t>(t.cols));
    w.Put<uint8_t>(static_cast<uint8_t>(encoding));
    EncodeValues(w, t.values, encoding);
  }
  const std::string& raw = w.bytes();
  std::string compressed(ZSTD_compressBound(raw.size()), '\0');
  const size_t size = ZSTD_compress(compressed.data(), compressed.size(), raw.data(), raw.size(), level);
  compressed.resize(size);
  return compressed;
}

absl::Status CheckDeclaredSize(std::string_view bytes, std::string_view model_id, const TensorSet& layout) {
  const unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  for (TensorEncoding e : {TensorEncoding::kF32, TensorEncoding::kF16, TensorEncoding::kInt8}) {
    if (size == DecodedSize(model_id, layout, e)) return absl::OkStatus();
  }
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN) {
    return absl::InvalidArgumentError("update: not a zstd frame that states its size");
  }
  return absl::InvalidArgumentError(StrCat("update: the zstd frame declares ", size,
                                           " decoded bytes; an update of the expected layout is exactly ",
                                           DecodedSize(model_id, layout, TensorEncoding::kInt8), " (int8), ",
                                           DecodedSize(model_id, layout, TensorEncoding::kF16), " (f16) or ",
                                           DecodedSize(model_id, layout, TensorEncoding::kF32), " (f32)"));
}

absl::StatusOr<EncodedTensors> DecodeTensors(std::string_view bytes, const DecodeLimits& limits) {
  // Exactly one frame, which states its size.
  const size_t frame = ZSTD_findFrameCompressedSize(bytes.data(), bytes.size());
  if (ZSTD_isError(frame)) return absl::InvalidArgumentError("update: not a zstd frame");
  if (frame != bytes.size()) return absl::InvalidArgumentError("update: bytes after the zstd frame");
  const unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
  if (size == ZSTD_CONTENTSIZE_ERROR) return absl::InvalidArgumentError("update: not a zstd frame");
  if (size == ZSTD_CONTENTSIZE_UNKNOWN) return absl::InvalidArgumentError("update: the zstd frame does not state its size");
  if (limits.layout != nullptr) {
    EDGELLM_RETURN_IF_ERROR(CheckDeclaredSize(bytes, limits.model_id, *limits.layout));
  }
  if (size > limits.max_decoded_bytes) {
    return absl::ResourceExhaustedError(
        StrCat("update: decodes to ", size, " bytes, more than the limit of ", limits.max_decoded_bytes));
  }
  std::string raw(size, '\0');
  const size_t got = ZSTD_decompress(raw.data(), raw.size(), bytes.data(), bytes.size());
  if (ZSTD_isError(got)) return absl::InvalidArgumentError(StrCat("update: zstd: ", ZSTD_getErrorName(got)));
  if (got != size) return absl::InvalidArgumentError("update: the zstd frame is shorter than it states");
  return Parse(raw, limits);
}

}  // namespace edgellm::federated

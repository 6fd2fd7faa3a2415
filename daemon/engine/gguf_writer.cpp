#include "daemon/engine/gguf_writer.h"

#include <cstring>

#include "common/str_cat.h"
#include "common/status_macros.h"

namespace edgellm::engine {
namespace {

uint64_t AlignUp(uint64_t n, uint64_t alignment) { return (n + alignment - 1) / alignment * alignment; }

// Serialises header fields into a byte buffer.
class HeaderBuilder {
 public:
  template <typename T>
  void Put(T v) {
    const size_t at = bytes_.size();
    bytes_.resize(at + sizeof(T));
    std::memcpy(bytes_.data() + at, &v, sizeof(T));
  }
  void PutString(std::string_view s) {
    Put<uint64_t>(s.size());
    bytes_.insert(bytes_.end(), s.begin(), s.end());
  }
  void PutRaw(const std::vector<uint8_t>& raw) { bytes_.insert(bytes_.end(), raw.begin(), raw.end()); }

  void PutValue(const GgufValue& v) {
    if (v.type() == GgufType::kString) {
      PutString(v.string_value());
    } else if (v.is_array()) {
      PutArray(v);
    } else {
      PutRaw(v.raw());
    }
  }
  void PutArray(const GgufValue& v) {
    Put<uint32_t>(static_cast<uint32_t>(v.elem_type()));
    Put<uint64_t>(v.array_size());
    if (v.elem_type() == GgufType::kString) {
      for (uint64_t i = 0; i < v.array_size(); ++i) PutString(v.StringAt(i));
    } else if (v.elem_type() == GgufType::kArray) {
      for (const GgufValue& item : v.items()) PutArray(item);
    } else {
      PutRaw(v.raw());
    }
  }
  void PadTo(uint64_t alignment) { bytes_.resize(AlignUp(bytes_.size(), alignment), 0); }
  const std::vector<uint8_t>& bytes() const { return bytes_; }

 private:
  std::vector<uint8_t> bytes_;
};

class StringSink final : public FileSink {
 public:
  absl::Status Append(absl::Span<const uint8_t> bytes) override {
    out_.append(reinterpret_cast<const char*>(bytes.data()), bytes.size());
    return absl::OkStatus();
  }
  uint64_t size() const override { return out_.size(); }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

}  // namespace

void GgufWriter::Set(std::string key, GgufValue value) {
  for (auto& [k, v] : metadata_) {
    if (k == key) {
      v = std::move(value);
      return;
    }
  }
  metadata_.emplace_back(std::move(key), std::move(value));
}

absl::Status GgufWriter::AddTensor(std::string name, GgmlType type, std::vector<uint64_t> dims,
                                   TensorFill fill) {
  for (const PendingTensor& t : tensors_) {
    if (t.info.name == name) return absl::InvalidArgumentError(edgellm::StrCat("duplicate tensor ", name));
  }
  if (dims.empty() || dims.size() > kGgufMaxDims) {
    return absl::InvalidArgumentError(edgellm::StrCat("tensor ", name, ": 1 to 4 dimensions allowed"));
  }
  const GgmlTypeTraits& traits = TraitsOf(type);
  if (dims[0] % traits.block_size != 0) {
    return absl::InvalidArgumentError(edgellm::StrCat("tensor ", name, ": row of ", dims[0],
                                                   " is not a multiple of the ", traits.name,
                                                   " block size ", traits.block_size));
  }
  GgufTensorInfo info;
  info.name = std::move(name);
  info.dims = std::move(dims);
  info.type = type;
  info.n_bytes = RowBytes(type, info.element_count());
  info.offset = data_size_;
  data_size_ = AlignUp(data_size_ + info.n_bytes, alignment_);
  tensors_.push_back({std::move(info), std::move(fill)});
  return absl::OkStatus();
}

absl::Status GgufWriter::AddTensor(std::string name, GgmlType type, std::vector<uint64_t> dims,
                                   absl::Span<const uint8_t> data) {
  return AddTensor(std::move(name), type, std::move(dims), [data](absl::Span<uint8_t> out) {
    if (out.size() != data.size()) {
      return absl::InvalidArgumentError(
          edgellm::StrCat("tensor data has ", data.size(), " bytes, its shape needs ", out.size()));
    }
    std::memcpy(out.data(), data.data(), data.size());
    return absl::OkStatus();
  });
}

absl::Status GgufWriter::WriteTo(FileSink& sink) const {
  HeaderBuilder header;
  header.Put<uint32_t>(kGgufMagic);
  header.Put<uint32_t>(3);
  header.Put<uint64_t>(tensors_.size());
  const bool add_alignment = alignment_ != kGgufDefaultAlignment &&
                             std::none_of(metadata_.begin(), metadata_.end(),
                                          [](const auto& kv) { return kv.first == "general.alignment"; });
  header.Put<uint64_t>(metadata_.size() + (add_alignment ? 1 : 0));
  for (const auto& [key, value] : metadata_) {
    header.PutString(key);
    header.Put<uint32_t>(static_cast<uint32_t>(value.type()));
    header.PutValue(value);
  }
  if (add_alignment) {
    header.PutString("general.alignment");
    header.Put<uint32_t>(static_cast<uint32_t>(GgufType::kUint32));
    header.Put<uint32_t>(alignment_);
  }
  for (const PendingTensor& t : tensors_) {
    header.PutString(t.info.name);
    header.Put<uint32_t>(static_cast<uint32_t>(t.info.dims.size()));
    for (uint64_t d : t.info.dims) header.Put<uint64_t>(d);
    header.Put<uint32_t>(static_cast<uint32_t>(t.info.type));
    header.Put<uint64_t>(t.info.offset);
  }
  header.PadTo(alignment_);
  EDGELLM_RETURN_IF_ERROR(sink.Append(header.bytes()));

  const uint64_t data_start = sink.size();
  std::vector<uint8_t> buffer;
  for (const PendingTensor& t : tensors_) {
    const std::vector<uint8_t> padding(data_start + t.info.offset - sink.size(), 0);
    EDGELLM_RETURN_IF_ERROR(sink.Append(padding));
    buffer.assign(t.info.n_bytes, 0);
    absl::Status filled = t.fill(absl::MakeSpan(buffer));
    if (!filled.ok()) {
      return absl::Status(filled.code(), edgellm::StrCat("tensor ", t.info.name, ": ", filled.message()));
    }
    EDGELLM_RETURN_IF_ERROR(sink.Append(buffer));
  }
  return absl::OkStatus();
}

absl::Status GgufWriter::Write(const std::string& path) const {
  return WriteFileAtomically(path, [this](FileSink& sink) { return WriteTo(sink); });
}

absl::StatusOr<std::string> GgufWriter::Serialize() const {
  StringSink sink;
  EDGELLM_RETURN_IF_ERROR(WriteTo(sink));
  return std::move(sink.out());
}

}  // namespace edgellm::engine

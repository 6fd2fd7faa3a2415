#include "daemon/engine/gguf_reader.h"

#include <cstring>
#include <unordered_set>

#include "common/str_cat.h"
#include "common/status_macros.h"

namespace edgellm::engine {
namespace {

constexpr uint64_t kMaxKeyLength = 1 << 16;
constexpr int kMaxArrayDepth = 8;
// No tensor in any real model approaches this; it keeps size arithmetic far
// from overflow.
constexpr uint64_t kMaxTensorElements = uint64_t{1} << 50;

// A bounds-checked forward reader over the file's bytes.
class Cursor {
 public:
  Cursor(absl::Span<const uint8_t> bytes, const std::string& name) : bytes_(bytes), name_(name) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return bytes_.size() - pos_; }

  absl::Status Error(std::string_view what) const {
    return absl::InvalidArgumentError(edgellm::StrCat("gguf ", name_, ": ", what, " (at offset ", pos_, ")"));
  }

  absl::Status Need(uint64_t n, std::string_view what) const {
    if (n > left()) {
      return Error(edgellm::StrCat("truncated: ", what, " needs ", n, " bytes, ", left(), " left"));
    }
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Read(T* out, std::string_view what) {
    EDGELLM_RETURN_IF_ERROR(Need(sizeof(T), what));
    std::memcpy(out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return absl::OkStatus();
  }

  absl::Status ReadBytes(uint64_t n, absl::Span<const uint8_t>* out, std::string_view what) {
    EDGELLM_RETURN_IF_ERROR(Need(n, what));
    *out = bytes_.subspan(pos_, n);
    pos_ += n;
    return absl::OkStatus();
  }

  absl::Status ReadString(std::string* out, std::string_view what, uint64_t max_length) {
    uint64_t length = 0;
    EDGELLM_RETURN_IF_ERROR(Read(&length, what));
    if (length > max_length) {
      return Error(edgellm::StrCat(what, " length ", length, " exceeds the limit ", max_length));
    }
    absl::Span<const uint8_t> raw;
    EDGELLM_RETURN_IF_ERROR(ReadBytes(length, &raw, what));
    out->assign(reinterpret_cast<const char*>(raw.data()), raw.size());
    return absl::OkStatus();
  }

 private:
  absl::Span<const uint8_t> bytes_;
  const std::string& name_;
  uint64_t pos_ = 0;
};

bool IsKnownValueType(uint32_t t) { return t <= static_cast<uint32_t>(GgufType::kFloat64); }

absl::StatusOr<GgufValue> ReadValue(Cursor& in, GgufType type, std::string_view key, int depth);

absl::StatusOr<GgufValue> ReadArray(Cursor& in, std::string_view key, int depth) {
  if (depth >= kMaxArrayDepth) return in.Error(edgellm::StrCat("key '", key, "': arrays nested too deeply"));
  uint32_t elem_raw = 0;
  uint64_t count = 0;
  EDGELLM_RETURN_IF_ERROR(in.Read(&elem_raw, "array element type"));
  if (!IsKnownValueType(elem_raw)) {
    return in.Error(edgellm::StrCat("key '", key, "': unknown array element type ", elem_raw));
  }
  const GgufType elem = static_cast<GgufType>(elem_raw);
  EDGELLM_RETURN_IF_ERROR(in.Read(&count, "array length"));
  // Every element takes at least this many bytes, so the count is bounded by
  // what is left in the file before anything is allocated.
  const uint64_t min_elem_bytes = GgufScalarSize(elem) != 0 ? GgufScalarSize(elem)
                                  : elem == GgufType::kString ? 8
                                                              : 12;
  if (count > in.left() / min_elem_bytes) {
    return in.Error(edgellm::StrCat("key '", key, "': array of ", count, " ", GgufTypeName(elem),
                                 " does not fit in the ", in.left(), " bytes left"));
  }
  if (GgufScalarSize(elem) != 0) {
    absl::Span<const uint8_t> raw;
    EDGELLM_RETURN_IF_ERROR(in.ReadBytes(count * min_elem_bytes, &raw, "array data"));
    return GgufValue::RawArray(elem, count, std::vector<uint8_t>(raw.begin(), raw.end()));
  }
  if (elem == GgufType::kString) {
    std::string concatenated, element;
    std::vector<uint64_t> ends;
    ends.reserve(count);
    for (uint64_t i = 0; i < count; ++i) {
      EDGELLM_RETURN_IF_ERROR(in.ReadString(&element, "array string", in.left()));
      concatenated += element;
      ends.push_back(concatenated.size());
    }
    return GgufValue::StringArray(std::move(concatenated), std::move(ends));
  }
  std::vector<GgufValue> items;
  items.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    EDGELLM_ASSIGN_OR_RETURN(GgufValue item, ReadArray(in, key, depth + 1));
    items.push_back(std::move(item));
  }
  return GgufValue::NestedArray(elem, std::move(items));
}

absl::StatusOr<GgufValue> ReadValue(Cursor& in, GgufType type, std::string_view key, int depth) {
  if (type == GgufType::kString) {
    std::string s;
    EDGELLM_RETURN_IF_ERROR(in.ReadString(&s, "string value", in.left()));
    return GgufValue::String(std::move(s));
  }
  if (type == GgufType::kArray) return ReadArray(in, key, depth);
  absl::Span<const uint8_t> raw;
  EDGELLM_RETURN_IF_ERROR(in.ReadBytes(GgufScalarSize(type), &raw, "scalar value"));
  return GgufValue::FromRaw(type, raw);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GgufReader>> GgufReader::Open(const std::string& path, FileAccess access) {
  EDGELLM_ASSIGN_OR_RETURN(std::unique_ptr<MappedFile> file, MappedFile::Open(path, access));
  std::unique_ptr<GgufReader> reader(new GgufReader());
  reader->name_ = path;
  reader->bytes_ = file->bytes();
  reader->file_ = std::move(file);
  EDGELLM_RETURN_IF_ERROR(reader->Parse());
  return reader;
}

absl::StatusOr<std::unique_ptr<GgufReader>> GgufReader::FromBytes(std::string bytes, std::string name) {
  std::unique_ptr<GgufReader> reader(new GgufReader());
  reader->name_ = std::move(name);
  reader->owned_bytes_ = std::move(bytes);
  reader->bytes_ = absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(reader->owned_bytes_.data()),
                                       reader->owned_bytes_.size());
  EDGELLM_RETURN_IF_ERROR(reader->Parse());
  return reader;
}

absl::Status GgufReader::Parse() {
  Cursor in(bytes_, name_);
  uint32_t magic = 0;
  EDGELLM_RETURN_IF_ERROR(in.Read(&magic, "magic"));
  if (magic != kGgufMagic) return in.Error("not a GGUF file: bad magic");
  EDGELLM_RETURN_IF_ERROR(in.Read(&version_, "version"));
  if (version_ != 2 && version_ != 3) {
    return in.Error(edgellm::StrCat("unsupported GGUF version ", version_, " (2 and 3 are supported)"));
  }
  uint64_t tensor_count = 0;
  uint64_t kv_count = 0;
  EDGELLM_RETURN_IF_ERROR(in.Read(&tensor_count, "tensor count"));
  EDGELLM_RETURN_IF_ERROR(in.Read(&kv_count, "metadata count"));
  // Each key-value pair takes at least 12 bytes, each tensor info at least 24.
  if (kv_count > in.left() / 12) {
    return in.Error(edgellm::StrCat("metadata count ", kv_count, " cannot fit in a file of ", bytes_.size(), " bytes"));
  }
  if (tensor_count > in.left() / 24) {
    return in.Error(edgellm::StrCat("tensor count ", tensor_count, " cannot fit in a file of ", bytes_.size(), " bytes"));
  }

  for (uint64_t i = 0; i < kv_count; ++i) {
    std::string key;
    EDGELLM_RETURN_IF_ERROR(in.ReadString(&key, "metadata key", kMaxKeyLength));
    uint32_t type_raw = 0;
    EDGELLM_RETURN_IF_ERROR(in.Read(&type_raw, "metadata value type"));
    if (!IsKnownValueType(type_raw)) {
      return in.Error(edgellm::StrCat("key '", key, "' has unknown value type ", type_raw));
    }
    EDGELLM_ASSIGN_OR_RETURN(GgufValue value, ReadValue(in, static_cast<GgufType>(type_raw), key, 0));
    if (!metadata_.emplace(key, std::move(value)).second) {
      return in.Error(edgellm::StrCat("duplicate metadata key '", key, "'"));
    }
  }

  if (const GgufValue* a = Find("general.alignment"); a != nullptr) {
    absl::StatusOr<int64_t> v = a->AsInt();
    if (!v.ok() || *v <= 0 || *v > (1 << 20) || (*v & (*v - 1)) != 0) {
      return in.Error("general.alignment must be a power of two up to 1 MiB");
    }
    alignment_ = static_cast<uint32_t>(*v);
  }

  tensors_.reserve(tensor_count);
  std::unordered_set<std::string> names;
  for (uint64_t i = 0; i < tensor_count; ++i) {
    GgufTensorInfo t;
    EDGELLM_RETURN_IF_ERROR(in.ReadString(&t.name, "tensor name", kMaxKeyLength));
    uint32_t n_dims = 0;
    EDGELLM_RETURN_IF_ERROR(in.Read(&n_dims, "tensor dimension count"));
    if (n_dims == 0 || n_dims > kGgufMaxDims) {
      return in.Error(edgellm::StrCat("tensor '", t.name, "' has ", n_dims, " dimensions (1 to 4 allowed)"));
    }
    t.dims.resize(n_dims);
    uint64_t elements = 1;
    for (uint64_t& d : t.dims) {
      EDGELLM_RETURN_IF_ERROR(in.Read(&d, "tensor dimension"));
      if (d == 0 || d > kMaxTensorElements || elements > kMaxTensorElements / d) {
        return in.Error(edgellm::StrCat("tensor '", t.name, "' has an invalid dimension ", d));
      }
      elements *= d;
    }
    uint32_t type_raw = 0;
    EDGELLM_RETURN_IF_ERROR(in.Read(&type_raw, "tensor type"));
    std::optional<GgmlTypeTraits> traits = TraitsOf(type_raw);
    if (!traits) return in.Error(edgellm::StrCat("tensor '", t.name, "' has unknown type ", type_raw));
    t.type = traits->type;
    if (t.dims[0] % traits->block_size != 0) {
      return in.Error(edgellm::StrCat("tensor '", t.name, "': row of ", t.dims[0], " is not a multiple of the ",
                                   traits->name, " block size ", traits->block_size));
    }
    t.n_bytes = elements / traits->block_size * traits->block_bytes;
    EDGELLM_RETURN_IF_ERROR(in.Read(&t.offset, "tensor offset"));
    if (t.offset % alignment_ != 0) {
      return in.Error(edgellm::StrCat("tensor '", t.name, "' offset ", t.offset, " is not aligned to ", alignment_));
    }
    if (!names.insert(t.name).second) return in.Error(edgellm::StrCat("duplicate tensor '", t.name, "'"));
    tensors_.push_back(std::move(t));
  }

  data_offset_ = (in.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (tensor_count > 0 && data_offset_ > bytes_.size()) {
    return in.Error(edgellm::StrCat("data section at ", data_offset_, " starts past the end of the file (",
                                 bytes_.size(), " bytes)"));
  }
  const uint64_t data_size = bytes_.size() - std::min<uint64_t>(data_offset_, bytes_.size());
  for (const GgufTensorInfo& t : tensors_) {
    if (t.offset > data_size || t.n_bytes > data_size - t.offset) {
      return absl::InvalidArgumentError(edgellm::StrCat(
          "gguf ", name_, ": tensor '", t.name, "' (", t.n_bytes, " bytes at data offset ", t.offset,
          ") extends past the end of the file (data section holds ", data_size, " bytes)"));
    }
  }
  return absl::OkStatus();
}

const GgufValue* GgufReader::Find(std::string_view key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

namespace {
absl::Status KeyError(const std::string& name, std::string_view key, const absl::Status& s) {
  return absl::InvalidArgumentError(edgellm::StrCat("gguf ", name, ": key '", key, "': ", s.message()));
}
}  // namespace

absl::StatusOr<int64_t> GgufReader::GetInt(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(edgellm::StrCat("gguf ", name_, ": missing key '", key, "'"));
  absl::StatusOr<int64_t> out = v->AsInt();
  if (!out.ok()) return KeyError(name_, key, out.status());
  return out;
}

absl::StatusOr<double> GgufReader::GetFloat(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(edgellm::StrCat("gguf ", name_, ": missing key '", key, "'"));
  absl::StatusOr<double> out = v->AsFloat();
  if (!out.ok()) return KeyError(name_, key, out.status());
  return out;
}

absl::StatusOr<std::string> GgufReader::GetString(std::string_view key) const {
  const GgufValue* v = Find(key);
  if (v == nullptr) return absl::NotFoundError(edgellm::StrCat("gguf ", name_, ": missing key '", key, "'"));
  absl::StatusOr<std::string> out = v->AsString();
  if (!out.ok()) return KeyError(name_, key, out.status());
  return out;
}

absl::StatusOr<int64_t> GgufReader::GetInt(std::string_view key, int64_t fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetInt(key);
}

absl::StatusOr<double> GgufReader::GetFloat(std::string_view key, double fallback) const {
  if (Find(key) == nullptr) return fallback;
  return GetFloat(key);
}

const GgufTensorInfo* GgufReader::FindTensor(std::string_view name) const {
  for (const GgufTensorInfo& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::Status GgufReader::RewriteInPlace(const std::function<void()>& rewrite) {
  if (file_ == nullptr) return absl::FailedPreconditionError(name_ + " was parsed from memory, not read from a file");
  return file_->RewriteInPlace(rewrite);
}

absl::Span<const uint8_t> GgufReader::TensorData(const GgufTensorInfo& info) const {
  return bytes_.subspan(data_offset_ + info.offset, info.n_bytes);
}

}  // namespace edgellm::engine

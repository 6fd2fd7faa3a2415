#include "daemon/engine/gguf.h"

#include <limits>

#include "common/str_cat.h"

namespace edgellm::engine {

uint32_t GgufScalarSize(GgufType type) {
  switch (type) {
    case GgufType::kUint8:
    case GgufType::kInt8:
    case GgufType::kBool:
      return 1;
    case GgufType::kUint16:
    case GgufType::kInt16:
      return 2;
    case GgufType::kUint32:
    case GgufType::kInt32:
    case GgufType::kFloat32:
      return 4;
    case GgufType::kUint64:
    case GgufType::kInt64:
    case GgufType::kFloat64:
      return 8;
    case GgufType::kString:
    case GgufType::kArray:
      return 0;
  }
  return 0;
}

std::string_view GgufTypeName(GgufType type) {
  switch (type) {
    case GgufType::kUint8: return "uint8";
    case GgufType::kInt8: return "int8";
    case GgufType::kUint16: return "uint16";
    case GgufType::kInt16: return "int16";
    case GgufType::kUint32: return "uint32";
    case GgufType::kInt32: return "int32";
    case GgufType::kFloat32: return "float32";
    case GgufType::kBool: return "bool";
    case GgufType::kString: return "string";
    case GgufType::kArray: return "array";
    case GgufType::kUint64: return "uint64";
    case GgufType::kInt64: return "int64";
    case GgufType::kFloat64: return "float64";
  }
  return "unknown";
}

GgufValue GgufValue::String(std::string v) {
  GgufValue out;
  out.type_ = GgufType::kString;
  out.string_ = std::move(v);
  return out;
}

GgufValue GgufValue::StringArray(const std::vector<std::string>& v) {
  std::string concatenated;
  std::vector<uint64_t> ends;
  ends.reserve(v.size());
  for (const std::string& s : v) {
    concatenated += s;
    ends.push_back(concatenated.size());
  }
  return StringArray(std::move(concatenated), std::move(ends));
}

GgufValue GgufValue::StringArray(std::string concatenated, std::vector<uint64_t> ends) {
  GgufValue out;
  out.type_ = GgufType::kArray;
  out.elem_type_ = GgufType::kString;
  out.count_ = ends.size();
  out.string_bytes_ = std::move(concatenated);
  out.string_ends_ = std::move(ends);
  return out;
}

std::string_view GgufValue::StringAt(uint64_t i) const {
  const uint64_t begin = i == 0 ? 0 : string_ends_[i - 1];
  return std::string_view(string_bytes_).substr(begin, string_ends_[i] - begin);
}

GgufValue GgufValue::FromRaw(GgufType type, absl::Span<const uint8_t> raw) {
  GgufValue out;
  out.type_ = type;
  out.raw_.assign(raw.begin(), raw.end());
  return out;
}

GgufValue GgufValue::RawArray(GgufType elem_type, uint64_t count, std::vector<uint8_t> raw) {
  GgufValue out;
  out.type_ = GgufType::kArray;
  out.elem_type_ = elem_type;
  out.count_ = count;
  out.raw_ = std::move(raw);
  return out;
}

GgufValue GgufValue::NestedArray(GgufType elem_type, std::vector<GgufValue> items) {
  GgufValue out;
  out.type_ = GgufType::kArray;
  out.elem_type_ = elem_type;
  out.count_ = items.size();
  out.items_ = std::move(items);
  return out;
}

namespace {
template <typename T>
T Load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}
}  // namespace

absl::StatusOr<double> GgufValue::NumberAt(GgufType type, uint64_t i) const {
  const uint32_t size = GgufScalarSize(type);
  if ((type == GgufType::kFloat32 || type == GgufType::kFloat64) && (i + 1) * size <= raw_.size()) {
    const uint8_t* p = raw_.data() + i * size;
    return type == GgufType::kFloat32 ? Load<float>(p) : Load<double>(p);
  }
  absl::StatusOr<int64_t> v = IntegerAt(type, i);
  if (!v.ok()) return v.status();
  return static_cast<double>(*v);
}

absl::StatusOr<int64_t> GgufValue::IntegerAt(GgufType type, uint64_t i) const {
  const uint32_t size = GgufScalarSize(type);
  if (size == 0 || (i + 1) * size > raw_.size()) {
    return absl::InvalidArgumentError(edgellm::StrCat("value of type ", GgufTypeName(type), " is not a number"));
  }
  const uint8_t* p = raw_.data() + i * size;
  switch (type) {
    case GgufType::kUint8: return Load<uint8_t>(p);
    case GgufType::kInt8: return Load<int8_t>(p);
    case GgufType::kBool: return Load<uint8_t>(p) != 0 ? 1 : 0;
    case GgufType::kUint16: return Load<uint16_t>(p);
    case GgufType::kInt16: return Load<int16_t>(p);
    case GgufType::kUint32: return Load<uint32_t>(p);
    case GgufType::kInt32: return Load<int32_t>(p);
    case GgufType::kInt64: return Load<int64_t>(p);
    case GgufType::kUint64: {
      const uint64_t v = Load<uint64_t>(p);
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return absl::OutOfRangeError(edgellm::StrCat("uint64 value ", v, " is too large"));
      }
      return static_cast<int64_t>(v);
    }
    default:
      return absl::InvalidArgumentError(edgellm::StrCat("expected an integer, found ", GgufTypeName(type)));
  }
}

absl::StatusOr<int64_t> GgufValue::AsInt() const {
  if (type_ == GgufType::kArray) return absl::InvalidArgumentError("expected an integer, found array");
  return IntegerAt(type_, 0);
}

absl::StatusOr<double> GgufValue::AsFloat() const {
  if (type_ == GgufType::kString || type_ == GgufType::kArray) {
    return absl::InvalidArgumentError(edgellm::StrCat("expected a number, found ", GgufTypeName(type_)));
  }
  return NumberAt(type_, 0);
}

absl::StatusOr<std::string> GgufValue::AsString() const {
  if (type_ != GgufType::kString) {
    return absl::InvalidArgumentError(edgellm::StrCat("expected a string, found ", GgufTypeName(type_)));
  }
  return string_;
}

absl::StatusOr<std::vector<std::string>> GgufValue::AsStringArray() const {
  if (type_ != GgufType::kArray || elem_type_ != GgufType::kString) {
    return absl::InvalidArgumentError(edgellm::StrCat("expected an array of strings, found ",
                                                   GgufTypeName(type_)));
  }
  std::vector<std::string> strings;
  strings.reserve(string_ends_.size());
  for (uint64_t i = 0; i < string_ends_.size(); ++i) strings.emplace_back(StringAt(i));
  return strings;
}

absl::StatusOr<std::vector<float>> GgufValue::AsFloatArray() const {
  if (type_ != GgufType::kArray || GgufScalarSize(elem_type_) == 0) {
    return absl::InvalidArgumentError("expected an array of numbers");
  }
  std::vector<float> out(count_);
  for (uint64_t i = 0; i < count_; ++i) {
    absl::StatusOr<double> v = NumberAt(elem_type_, i);
    if (!v.ok()) return v.status();
    out[i] = static_cast<float>(*v);
  }
  return out;
}

absl::StatusOr<std::vector<int64_t>> GgufValue::AsIntArray() const {
  if (type_ != GgufType::kArray) return absl::InvalidArgumentError("expected an array of integers");
  std::vector<int64_t> out(count_);
  for (uint64_t i = 0; i < count_; ++i) {
    absl::StatusOr<int64_t> v = IntegerAt(elem_type_, i);
    if (!v.ok()) return v.status();
    out[i] = *v;
  }
  return out;
}

uint64_t GgufTensorInfo::element_count() const {
  uint64_t n = 1;
  for (uint64_t d : dims) n *= d;
  return n;
}

}  // namespace edgellm::engine

#include "daemon/engine/safetensors.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstring>
#include <limits>

#include "common/atomic_file.h"
#include "common/fp16.h"
#include "common/status_macros.h"
#include "common/str_cat.h"
#include "daemon/engine/mapped_file.h"

namespace edgellm::engine {
namespace {

// What the reference implementation allows; a real header is a few KiB.
constexpr uint64_t kMaxHeaderBytes = 100'000'000;
// Far beyond any real tensor's rank; bounds the work a hostile shape causes.
constexpr size_t kMaxRank = 8;

std::optional<SafetensorsDtype> DtypeFromName(std::string_view name) {
  if (name == "F32") return SafetensorsDtype::kF32;
  if (name == "F16") return SafetensorsDtype::kF16;
  if (name == "BF16") return SafetensorsDtype::kBF16;
  return std::nullopt;
}

uint64_t DtypeSize(SafetensorsDtype dtype) { return dtype == SafetensorsDtype::kF32 ? 4 : 2; }

}  // namespace

int64_t SafetensorsTensor::element_count() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsReader::~SafetensorsReader() = default;

absl::StatusOr<std::unique_ptr<SafetensorsReader>> SafetensorsReader::Open(const std::string& path) {
  std::unique_ptr<SafetensorsReader> reader(new SafetensorsReader());
  EDGELLM_ASSIGN_OR_RETURN(reader->file_, MappedFile::Open(path));
  reader->name_ = path;
  reader->bytes_ = reader->file_->bytes();
  EDGELLM_RETURN_IF_ERROR(reader->Parse());
  return reader;
}

absl::StatusOr<std::unique_ptr<SafetensorsReader>> SafetensorsReader::FromBytes(std::string bytes,
                                                                                 std::string name) {
  std::unique_ptr<SafetensorsReader> reader(new SafetensorsReader());
  reader->name_ = std::move(name);
  reader->owned_bytes_ = std::move(bytes);
  reader->bytes_ = {reinterpret_cast<const uint8_t*>(reader->owned_bytes_.data()), reader->owned_bytes_.size()};
  EDGELLM_RETURN_IF_ERROR(reader->Parse());
  return reader;
}

const SafetensorsTensor* SafetensorsReader::Find(std::string_view name) const {
  for (const SafetensorsTensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

absl::Status SafetensorsReader::Parse() {
  auto bad = [&](auto&&... parts) {
    return absl::InvalidArgumentError(edgellm::StrCat(name_, ": ", parts...));
  };
  if (bytes_.size() < 8) return bad("file of ", bytes_.size(), " bytes is shorter than the 8-byte header length");
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes_.data(), 8);
  if (header_size > kMaxHeaderBytes) return bad("header length ", header_size, " exceeds ", kMaxHeaderBytes);
  if (header_size > bytes_.size() - 8) {
    return bad("header length ", header_size, " runs past the end of the file (", bytes_.size(), " bytes)");
  }
  const std::string_view header(reinterpret_cast<const char*>(bytes_.data()) + 8, header_size);
  if (header.empty() || header.front() != '{') return bad("header is not a JSON object");
  const nlohmann::json json = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded() || !json.is_object()) return bad("header is not valid JSON");

  const absl::Span<const uint8_t> data = bytes_.subspan(8 + header_size);
  for (const auto& [name, entry] : json.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) return bad("__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) return bad("__metadata__ value of '", key, "' is not a string");
        metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string where = edgellm::StrCat("tensor '", name, "'");
    if (!entry.is_object()) return bad(where, " is not an object");
    const auto dtype_it = entry.find("dtype");
    const auto shape_it = entry.find("shape");
    const auto offsets_it = entry.find("data_offsets");
    if (dtype_it == entry.end() || !dtype_it->is_string()) return bad(where, " has no dtype");
    const std::optional<SafetensorsDtype> dtype = DtypeFromName(dtype_it->get<std::string>());
    if (!dtype) return bad(where, " has dtype ", dtype_it->get<std::string>(), " (supported: F32, F16, BF16)");
    if (shape_it == entry.end() || !shape_it->is_array() || shape_it->size() > kMaxRank) {
      return bad(where, " has no shape of at most ", kMaxRank, " dimensions");
    }
    SafetensorsTensor tensor;
    tensor.name = name;
    tensor.dtype = *dtype;
    // Elements, bounded so that elements * dtype size cannot overflow.
    uint64_t elements = 1;
    for (const nlohmann::json& dim : *shape_it) {
      if (!dim.is_number_unsigned()) return bad(where, " has a shape entry that is not a non-negative integer");
      const uint64_t d = dim.get<uint64_t>();
      if (d != 0 && elements > data.size() / d) return bad(where, " has a shape larger than the file");
      elements *= d;
      tensor.shape.push_back(static_cast<int64_t>(d));
    }
    if (offsets_it == entry.end() || !offsets_it->is_array() || offsets_it->size() != 2 ||
        !(*offsets_it)[0].is_number_unsigned() || !(*offsets_it)[1].is_number_unsigned()) {
      return bad(where, " has no data_offsets [begin, end]");
    }
    const uint64_t begin = (*offsets_it)[0].get<uint64_t>(), end = (*offsets_it)[1].get<uint64_t>();
    if (begin > end || end > data.size()) {
      return bad(where, " has data_offsets [", begin, ", ", end, "] outside the ", data.size(), " data bytes");
    }
    if (end - begin != elements * DtypeSize(*dtype)) {
      return bad(where, " has ", end - begin, " bytes for ", elements, " elements of ", dtype_it->get<std::string>());
    }
    tensor.data = data.subspan(begin, end - begin);
    tensors_.push_back(std::move(tensor));
  }
  std::sort(tensors_.begin(), tensors_.end(),
            [&](const SafetensorsTensor& a, const SafetensorsTensor& b) { return a.data.data() < b.data.data(); });
  // The ranges must tile the data: each tensor begins where the one before ends.
  const uint8_t* expected = data.data();
  for (const SafetensorsTensor& t : tensors_) {
    if (t.data.data() != expected) {
      return bad("tensor '", t.name, "' begins at byte ", t.data.data() - data.data(), ", expected ",
                 expected - data.data(), " (ranges must neither overlap nor leave gaps)");
    }
    expected += t.data.size();
  }
  if (expected != data.data() + data.size()) {
    return bad(data.data() + data.size() - expected, " bytes after the last tensor belong to none");
  }
  return absl::OkStatus();
}

void ReadFloats(const SafetensorsTensor& tensor, absl::Span<float> out) {
  const size_t n = static_cast<size_t>(tensor.element_count());
  const uint8_t* p = tensor.data.data();
  switch (tensor.dtype) {
    case SafetensorsDtype::kF32:
      std::memcpy(out.data(), p, n * sizeof(float));
      break;
    case SafetensorsDtype::kF16:
      for (size_t i = 0; i < n; ++i) out[i] = LoadFp16(p + 2 * i);
      break;
    case SafetensorsDtype::kBF16:
      for (size_t i = 0; i < n; ++i) {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = Bf16ToFp32(h);
      }
      break;
  }
}

void SafetensorsWriter::SetMetadata(std::string key, std::string value) {
  metadata_[std::move(key)] = std::move(value);
}

absl::Status SafetensorsWriter::Add(std::string name, std::vector<int64_t> shape, absl::Span<const float> data) {
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  if (elements != static_cast<int64_t>(data.size())) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("safetensors: tensor ", name, " has ", data.size(), " values for ", elements, " elements"));
  }
  if (name == "__metadata__" || !tensors_.emplace(name, Pending{std::move(shape), data}).second) {
    return absl::InvalidArgumentError(edgellm::StrCat("safetensors: tensor name ", name, " is repeated or reserved"));
  }
  return absl::OkStatus();
}

std::string SafetensorsWriter::Header() const {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata_.empty()) header["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors_) {
    const uint64_t bytes = t.data.size() * sizeof(float);
    header[name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string text = header.dump();
  // Pad with spaces so the data starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

std::string SafetensorsWriter::Serialize() const {
  const std::string header = Header();
  std::string out(8, '\0');
  const uint64_t size = header.size();
  std::memcpy(out.data(), &size, 8);
  out += header;
  for (const auto& [name, t] : tensors_) {
    out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size() * sizeof(float));
  }
  return out;
}

absl::Status SafetensorsWriter::Write(const std::string& path) const {
  return WriteFileAtomically(path, [&](FileSink& sink) -> absl::Status {
    const std::string header = Header();
    const uint64_t size = header.size();
    EDGELLM_RETURN_IF_ERROR(sink.Append({reinterpret_cast<const uint8_t*>(&size), 8}));
    EDGELLM_RETURN_IF_ERROR(sink.Append({reinterpret_cast<const uint8_t*>(header.data()), header.size()}));
    for (const auto& [name, t] : tensors_) {
      EDGELLM_RETURN_IF_ERROR(
          sink.Append({reinterpret_cast<const uint8_t*>(t.data.data()), t.data.size() * sizeof(float)}));
    }
    return absl::OkStatus();
  });
}

}  // namespace edgellm::engine

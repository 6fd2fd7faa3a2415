#include "daemon/ops/yaml_fields.h"

#include "common/str_cat.h"

namespace edgellm::ops {

template <typename T>
void YamlFields::Scalar(const std::string& key, T* field, const char* type_name) {
  readers_[key] = [this, field, type_name](const YAML::Node& node, const std::string& k) -> absl::Status {
    if (!node.IsScalar()) return Error(node, k, StrCat("expected ", type_name));
    try {
      *field = node.as<T>();
    } catch (const YAML::Exception&) {
      return Error(node, k, StrCat("expected ", type_name, ", found '", node.Scalar(), "'"));
    }
    return absl::OkStatus();
  };
}

void YamlFields::Text(const std::string& key, std::string* field) { Scalar(key, field, "text"); }
void YamlFields::Int(const std::string& key, int32_t* field) { Scalar(key, field, "an integer"); }
void YamlFields::Int64(const std::string& key, int64_t* field) { Scalar(key, field, "an integer"); }
void YamlFields::UInt64(const std::string& key, uint64_t* field) { Scalar(key, field, "a non-negative integer"); }
void YamlFields::Number(const std::string& key, double* field) { Scalar(key, field, "a number"); }
void YamlFields::Bool(const std::string& key, bool* field) { Scalar(key, field, "true or false"); }
void YamlFields::Custom(const std::string& key, Reader reader) { readers_[key] = std::move(reader); }

void YamlFields::TextList(const std::string& key, std::vector<std::string>* field) {
  Custom(key, [this, field](const YAML::Node& node, const std::string& k) -> absl::Status {
    if (!node.IsSequence()) return Error(node, k, "expected a list");
    field->clear();
    for (const YAML::Node& entry : node) {
      if (!entry.IsScalar()) return Error(entry, k, "expected a list of text values");
      field->push_back(entry.Scalar());
    }
    return absl::OkStatus();
  });
}

absl::Status YamlFields::Apply(const YAML::Node& mapping) const {
  if (!mapping.IsMap()) return absl::InvalidArgumentError(StrCat(origin_, ":", mapping.Mark().line + 1, ": expected a mapping of keys"));
  for (const auto& entry : mapping) {
    const std::string key = entry.first.as<std::string>();
    auto reader = readers_.find(key);
    if (reader == readers_.end()) return Error(entry.first, key, "unknown key");
    if (absl::Status s = reader->second(entry.second, key); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status YamlFields::Error(const YAML::Node& node, const std::string& key, const std::string& what) const {
  return absl::InvalidArgumentError(StrCat(origin_, ":", node.Mark().line + 1, ": ", key, ": ", what));
}

absl::StatusOr<YAML::Node> ParseYaml(const std::string& text, const std::string& origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(StrCat(origin, ":", e.mark.line + 1, ": ", e.msg));
  }
}

}  // namespace edgellm::ops

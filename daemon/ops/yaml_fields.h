// ops/yaml_fields.h — a YAML mapping read into a struct key by key: each
// field is declared once with its type, a wrong type or an unknown key is
// refused with the file, line and key.
#ifndef EDGELLM_OPS_YAML_FIELDS_H_
#define EDGELLM_OPS_YAML_FIELDS_H_

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace edgellm::ops {

class YamlFields {
 public:
  using Reader = std::function<absl::Status(const YAML::Node& value, const std::string& key)>;

  // `origin` names the file in errors.
  explicit YamlFields(std::string origin) : origin_(std::move(origin)) {}

  void Text(const std::string& key, std::string* field);
  void Int(const std::string& key, int32_t* field);
  void Int64(const std::string& key, int64_t* field);
  void UInt64(const std::string& key, uint64_t* field);
  void Number(const std::string& key, double* field);
  void Bool(const std::string& key, bool* field);
  void TextList(const std::string& key, std::vector<std::string>* field);  // a sequence of scalars
  void Custom(const std::string& key, Reader reader);

  // Reads every key of `mapping` with its declared reader. InvalidArgument
  // "origin:line: key: what" for an unknown key or a value of the wrong type.
  absl::Status Apply(const YAML::Node& mapping) const;
  // The error for `key` at `node`, in the same form.
  absl::Status Error(const YAML::Node& node, const std::string& key, const std::string& what) const;

 private:
  template <typename T>
  void Scalar(const std::string& key, T* field, const char* type_name);

  std::string origin_;
  std::map<std::string, Reader> readers_;
};

// Parses `text`; InvalidArgument "origin:line: message" when it is not YAML.
absl::StatusOr<YAML::Node> ParseYaml(const std::string& text, const std::string& origin);

}  // namespace edgellm::ops

#endif  // EDGELLM_OPS_YAML_FIELDS_H_

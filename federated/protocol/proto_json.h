// federated/protocol/proto_json.h — one JSON form for every status an
// operator reads (the CLI's --json, the fleet page's API): field names as in
// the .proto, zeros and empty strings printed, 64-bit integers as strings.
#ifndef EDGELLM_FEDERATED_PROTOCOL_PROTO_JSON_H_
#define EDGELLM_FEDERATED_PROTOCOL_PROTO_JSON_H_

#include <google/protobuf/message.h>
#include <google/protobuf/util/json_util.h>

#include <string>

namespace edgellm::federated {

inline std::string ProtoJson(const google::protobuf::Message& message) {
  std::string text;
  google::protobuf::util::JsonPrintOptions options;
  options.always_print_primitive_fields = true;
  options.preserve_proto_field_names = true;
  // Printing a message that was built in this process cannot fail.
  (void)google::protobuf::util::MessageToJsonString(message, &text, options);
  return text;
}

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_PROTOCOL_PROTO_JSON_H_

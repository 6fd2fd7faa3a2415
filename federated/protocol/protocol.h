// federated/protocol/protocol.h — constants both sides of a round agree on.
#ifndef EDGELLM_FEDERATED_PROTOCOL_PROTOCOL_H_
#define EDGELLM_FEDERATED_PROTOCOL_PROTOCOL_H_

#include <cstdint>

namespace edgellm::federated {

// The federation.proto this build speaks (edgellm.v1.PROTOCOL_VERSION_1).
inline constexpr uint32_t kProtocolVersion = 1;
// edgellm's release, as devices report it at registration.
inline constexpr const char* kDaemonVersion = EDGELLM_VERSION;
// Bytes per chunk of an adapter download or an update upload; gRPC messages
// are bounded a little above it.
inline constexpr uint64_t kChunkBytes = 1 << 20;
inline constexpr int kMaxMessageBytes = 2 << 20;

}  // namespace edgellm::federated

#endif  // EDGELLM_FEDERATED_PROTOCOL_PROTOCOL_H_

// ops/tls_files.h — the PEM files a TLS listener needs, read and checked
// before they reach gRPC, so a wrong file is named in a clear error instead of
// a failed handshake later.
#ifndef EDGELLM_OPS_TLS_FILES_H_
#define EDGELLM_OPS_TLS_FILES_H_

#include <string>

#include "absl/status/statusor.h"

namespace edgellm::ops {

struct TlsFiles {
  std::string cert_chain;  // PEM
  std::string private_key;  // PEM
  std::string client_ca;    // PEM; empty: clients are not asked for a certificate
  std::string common_name;  // of the certificate's subject: a device's id
};

// Reads the certificate chain, its private key and, if `client_ca_path` is
// not empty, the CA bundle that client certificates must chain to. NotFound
// for a missing file; InvalidArgument naming the file for one that holds no
// PEM certificate or key, or for a key that does not match the certificate.
absl::StatusOr<TlsFiles> LoadTlsFiles(const std::string& cert_path, const std::string& key_path,
                                      const std::string& client_ca_path);

}  // namespace edgellm::ops

#endif  // EDGELLM_OPS_TLS_FILES_H_

#include "daemon/ops/tls_files.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <memory>

#include "common/read_file.h"
#include "common/str_cat.h"
#include "common/status_macros.h"

namespace edgellm::ops {
namespace {

struct BioFree {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

std::unique_ptr<BIO, BioFree> MemoryBio(const std::string& pem) {
  return std::unique_ptr<BIO, BioFree>(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

absl::StatusOr<std::unique_ptr<X509, X509Free>> FirstCertificate(const std::string& what, const std::string& path,
                                                                  const std::string& pem) {
  auto bio = MemoryBio(pem);
  std::unique_ptr<X509, X509Free> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert) return absl::InvalidArgumentError(edgellm::StrCat(what, " ", path, ": no PEM certificate in it"));
  return cert;
}

}  // namespace

absl::StatusOr<TlsFiles> LoadTlsFiles(const std::string& cert_path, const std::string& key_path,
                                      const std::string& client_ca_path) {
  TlsFiles files;
  EDGELLM_ASSIGN_OR_RETURN(files.cert_chain, ReadFileToString(cert_path, "tls_cert"));
  EDGELLM_ASSIGN_OR_RETURN(files.private_key, ReadFileToString(key_path, "tls_key"));
  EDGELLM_ASSIGN_OR_RETURN(auto cert, FirstCertificate("tls_cert", cert_path, files.cert_chain));
  auto key_bio = MemoryBio(files.private_key);
  std::unique_ptr<EVP_PKEY, KeyFree> key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("tls_key ", key_path, ": no PEM private key in it (or it is encrypted)"));
  }
  if (X509_check_private_key(cert.get(), key.get()) != 1) {
    return absl::InvalidArgumentError(
        edgellm::StrCat("tls_key ", key_path, " does not match the certificate in tls_cert ", cert_path));
  }
  char common_name[256] = {0};
  if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert.get()), NID_commonName, common_name,
                                sizeof(common_name)) > 0) {
    files.common_name = common_name;
  }
  if (!client_ca_path.empty()) {
    EDGELLM_ASSIGN_OR_RETURN(files.client_ca, ReadFileToString(client_ca_path, "tls_client_ca"));
    EDGELLM_RETURN_IF_ERROR(FirstCertificate("tls_client_ca", client_ca_path, files.client_ca).status());
  }
  return files;
}

}  // namespace edgellm::ops

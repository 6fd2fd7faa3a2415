#include "daemon/engine/compute_threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <thread>

namespace edgellm::engine {

int ConfigureComputeThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  using SetThreads = void (*)(int);
  // Looked up at run time: LibTorch reaches OpenBLAS through the libblas.so.3 alternative.
  auto set_blas_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set_blas_threads != nullptr) {
    set_blas_threads(threads);
    at::set_num_threads(1);
  } else {
    at::set_num_threads(threads);
  }
  return threads;
}

}  // namespace edgellm::engine

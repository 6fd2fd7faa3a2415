#include "daemon/engine/compute_threads.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>

#include <algorithm>
#include <thread>

#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {

int ConfigureComputeThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool::SetThreads(threads);
  using SetThreads = void (*)(int);
  // Looked up at run time: LibTorch reaches OpenBLAS through the libblas.so.3 alternative.
  auto set_blas_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set_blas_threads != nullptr) {
    // Big products are split over the engine's pool, each part a single-threaded BLAS call.
    set_blas_threads(1);
    at::set_num_threads(1);
  } else {
    at::set_num_threads(threads);
  }
  return threads;
}

}  // namespace edgellm::engine

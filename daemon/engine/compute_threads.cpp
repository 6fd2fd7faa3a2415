#include "daemon/engine/compute_threads.h"

#include <dlfcn.h>

#include <algorithm>
#include <thread>

#include "daemon/engine/thread_pool.h"

namespace edgellm::engine {

int ConfigureComputeThreads(int threads) {
  if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  ThreadPool::SetThreads(threads);
  using SetThreads = void (*)(int);
  // Looked up at run time: libblas.so.3 is whichever BLAS the system's alternative points to.
  auto set_blas_threads = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  // Big products are split over the engine's pool, each part a single-threaded BLAS call.
  if (set_blas_threads != nullptr) set_blas_threads(1);
  return threads;
}

}  // namespace edgellm::engine

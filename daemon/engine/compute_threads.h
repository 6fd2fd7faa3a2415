// engine/compute_threads.h — one place that sizes the CPU thread pools.
#ifndef EDGELLM_ENGINE_COMPUTE_THREADS_H_
#define EDGELLM_ENGINE_COMPUTE_THREADS_H_

namespace edgellm::engine {

// Makes CPU compute use `threads` cores (0 = one per core), process-wide.
//
// OpenBLAS's own pthread pool (and LibTorch's OpenMP pool, when the LibTorch
// forward is in use) would each take every core and spin against the
// engine's (prefill ran 4x slower with two pools at 2 threads on 2 cores). So
// one pool does it all: the shared ThreadPool gets `threads` and runs every
// product (the engine's kernels, or BLAS on a tile per thread); OpenBLAS stays
// at one thread, the caller's (torch_forward.cpp does the same for LibTorch).
// Returns the thread count applied.
int ConfigureComputeThreads(int threads);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_COMPUTE_THREADS_H_

// engine/compute_threads.h — one place that sizes the CPU thread pools.
#ifndef EDGELLM_ENGINE_COMPUTE_THREADS_H_
#define EDGELLM_ENGINE_COMPUTE_THREADS_H_

namespace edgellm::engine {

// Makes CPU compute use `threads` cores (0 = one per core), process-wide.
//
// LibTorch's OpenMP pool and OpenBLAS's own pthread pool would each take every
// core and spin against each other (prefill ran 4x slower with both at 2
// threads on 2 cores). So one pool does it all: the shared ThreadPool gets
// `threads` and runs every weight product (the engine's kernels, or BLAS on a
// tile per thread); OpenBLAS and LibTorch's own pools stay at one thread, the
// caller's. With a BLAS that has no thread control, LibTorch gets the threads.
// Returns the thread count applied.
int ConfigureComputeThreads(int threads);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_COMPUTE_THREADS_H_

// engine/compute_threads.h — one place that sizes the CPU thread pools.
#ifndef EDGELLM_ENGINE_COMPUTE_THREADS_H_
#define EDGELLM_ENGINE_COMPUTE_THREADS_H_

namespace edgellm::engine {

// Makes CPU compute use `threads` cores (0 = one per core), process-wide.
//
// LibTorch's OpenMP pool and OpenBLAS's own pthread pool would each take every
// core and spin against each other (prefill ran 4x slower with both at 2
// threads on 2 cores). Matrix products, nearly all the work, run on OpenBLAS
// with `threads`; LibTorch's element-wise ops stay on the calling thread. With
// a BLAS that has no thread control, LibTorch gets the threads instead.
// Returns the thread count applied.
int ConfigureComputeThreads(int threads);

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_COMPUTE_THREADS_H_

// engine/thread_pool.h — the engine's persistent compute threads.
//
// One pool runs every kernel of a forward. The calling thread takes part, so
// a pool of N threads starts N - 1 workers. A decode step runs a few hundred
// kernels microseconds apart, and waking a sleeping thread costs tens of
// microseconds, so between jobs a worker first spins for a while, then sleeps
// until the next job.
#ifndef EDGELLM_ENGINE_THREAD_POOL_H_
#define EDGELLM_ENGINE_THREAD_POOL_H_

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace edgellm::engine {

// What ThreadPool::Run calls: a reference to any callable taking (begin, end).
// Unlike std::function it never allocates, so a decode step of a few hundred
// jobs allocates nothing. The callable must outlive the call (a lambda passed
// to Run does).
class ChunkFn {
 public:
  template <typename F>
    requires(!std::is_same_v<std::remove_cvref_t<F>, ChunkFn>)
  ChunkFn(const F& fn)  // NOLINT(google-explicit-constructor): lambdas convert implicitly
      : object_(&fn), call_([](const void* object, int64_t begin, int64_t end) {
          (*static_cast<const F*>(object))(begin, end);
        }) {}
  void operator()(int64_t begin, int64_t end) const { call_(object_, begin, end); }

 private:
  const void* object_;
  void (*call_)(const void* object, int64_t begin, int64_t end);
};

class ThreadPool {
 public:
  // `threads` >= 1, the caller included.
  explicit ThreadPool(int threads);
  ~ThreadPool();  // stops and joins the workers
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, tasks) in chunks of `grain` tasks spread
  // over all threads, and returns when every chunk is done. Each thread owns
  // a contiguous share of the chunks and does them in order, so a thread
  // streams through memory the way the hardware prefetcher follows (two
  // threads taking alternate chunks of a matrix read it a third slower);
  // a thread done with its share then takes chunks from the others'. An exception
  // thrown by `fn` on any thread is rethrown here once all threads have
  // stopped (the first one, if several throw). One caller at a time; `fn`
  // must not call Run.
  void Run(int64_t tasks, int64_t grain, ChunkFn fn) { RunTapered(tasks, grain, grain, fn); }

  // Run, with the chunks of each share tapering from `grain` tasks down to
  // `smallest` as the share runs out (half of what is left, within those
  // bounds), for callers that take chunks of any length: the threads then
  // finish a job within a small chunk of each other instead of one waiting
  // out the other's last full one.
  void RunTapered(int64_t tasks, int64_t grain, int64_t smallest, ChunkFn fn);

  // The pool every kernel uses, sized by SetThreads (one per core until then).
  static ThreadPool& Shared();
  // Resizes the shared pool; call while no kernel runs.
  static void SetThreads(int threads);

 private:
  void WorkerLoop(int self);
  void DoChunks(int self);

  // What a worker reads to start a job and writes to finish it, in one cache
  // line (a job's hand-off and return is this line crossing between cores).
  struct alignas(64) JobLine {
    std::atomic<uint64_t> generation{0};  // a job is published by bumping it
    std::atomic<int> busy{0};  // workers still on the current job
    std::atomic<bool> failed{false};  // a chunk threw: no more chunks for anyone
    std::atomic<bool> stop{false};
    const ChunkFn* job = nullptr;
    int64_t grain = 1;
    int64_t smallest = 1;  // the least a tapering chunk takes
  };
  // The chunks of one thread's share not yet taken, [next, end).
  struct alignas(64) Share {
    std::atomic<int64_t> next{0};
    int64_t end = 0;
  };

  std::vector<std::thread> workers_;
  JobLine line_;
  std::unique_ptr<Share[]> shares_;  // one per thread; the caller's is 0
  std::mutex error_mu_;
  std::exception_ptr error_;  // the first exception of the current job
};

}  // namespace edgellm::engine

#endif  // EDGELLM_ENGINE_THREAD_POOL_H_

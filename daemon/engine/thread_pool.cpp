#include "daemon/engine/thread_pool.h"

#include <algorithm>
#include <memory>
#include <mutex>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace edgellm::engine {
namespace {

// Spins a worker does before it sleeps: measured 0.36 ms on a Zen 5 (a
// pause is about 60 cycles there); Intel documents about 140 cycles a pause
// since Skylake, which would make it nearer a millisecond. Three times as
// many, a millisecond on the Zen 5, left sixteen smol-135m streams through
// edgellmd where they were (1,658 tok/s against 1,665, four alternating
// runs each).
constexpr int kSpins = 20000;

inline void CpuRelax() {
#if defined(__x86_64__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

std::mutex shared_mu;
// The shared pool, read without the lock: every product of a forward asks for it.
std::atomic<ThreadPool*> shared_pool{nullptr};
std::unique_ptr<ThreadPool>& SharedSlot() {
  static std::unique_ptr<ThreadPool> pool;
  return pool;
}

}  // namespace

ThreadPool::ThreadPool(int threads) : shares_(std::make_unique<Share[]>(static_cast<size_t>(std::max(threads, 1)))) {
  for (int i = 1; i < threads; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  line_.stop.store(true);
  line_.generation.fetch_add(1);
  line_.generation.notify_all();
  for (std::thread& t : workers_) t.join();
}

void ThreadPool::DoChunks(int self) {
  const int threads = size();
  const int64_t grain = line_.grain, smallest = line_.smallest;
  for (int k = 0; k < threads; ++k) {
    Share& share = shares_[static_cast<size_t>((self + k) % threads)];
    int64_t begin = share.next.load(std::memory_order_relaxed);
    while (!line_.failed.load(std::memory_order_relaxed) && begin < share.end) {
      // Half of what is left, within [smallest, grain] (grain for plain Run).
      const int64_t end = std::min(share.end, begin + std::clamp((share.end - begin + 1) / 2, smallest, grain));
      // Another thread took chunks meanwhile: begin is now where the share stands.
      if (!share.next.compare_exchange_weak(begin, end, std::memory_order_relaxed)) continue;
      try {
        (*line_.job)(begin, end);
        begin = share.next.load(std::memory_order_relaxed);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mu_);
        if (!error_) error_ = std::current_exception();
        line_.failed.store(true, std::memory_order_relaxed);  // no more chunks for anyone
      }
    }
  }
}

void ThreadPool::WorkerLoop(int self) {
  uint64_t seen = 0;
  while (true) {
    uint64_t now = line_.generation.load(std::memory_order_acquire);
    for (int spin = 0; now == seen && spin < kSpins; ++spin) {
      CpuRelax();
      now = line_.generation.load(std::memory_order_acquire);
    }
    if (now == seen) {
      line_.generation.wait(seen);
      continue;
    }
    seen = now;
    if (line_.stop.load()) return;
    DoChunks(self);
    line_.busy.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::RunTapered(int64_t tasks, int64_t grain, int64_t smallest, ChunkFn fn) {
  if (tasks <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  smallest = std::clamp<int64_t>(smallest, 1, grain);
  if (workers_.empty() || tasks <= grain) {
    for (int64_t begin = 0; begin < tasks; begin += grain) fn(begin, std::min(tasks, begin + grain));
    return;
  }
  // Whole chunks per share, so that every chunk but the last is `grain` long.
  const int threads = size();
  const int64_t chunks = (tasks + grain - 1) / grain;
  const int64_t per_share = (chunks + threads - 1) / threads * grain;
  for (int i = 0; i < threads; ++i) {
    Share& share = shares_[static_cast<size_t>(i)];
    share.next.store(std::min(tasks, i * per_share), std::memory_order_relaxed);
    share.end = std::min(tasks, (i + 1) * per_share);
  }
  line_.job = &fn;
  line_.grain = grain;
  line_.smallest = smallest;
  line_.failed.store(false, std::memory_order_relaxed);
  line_.busy.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  line_.generation.fetch_add(1, std::memory_order_release);
  line_.generation.notify_all();
  DoChunks(0);
  // A worker that lost its core (a busy machine) finishes sooner if we yield.
  for (int spin = 0; line_.busy.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin < kSpins) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
  if (!line_.failed.load(std::memory_order_relaxed)) return;
  std::exception_ptr error;
  {
    std::lock_guard<std::mutex> lock(error_mu_);
    std::swap(error, error_);
  }
  std::rethrow_exception(error);
}

ThreadPool& ThreadPool::Shared() {
  if (ThreadPool* pool = shared_pool.load(std::memory_order_acquire)) return *pool;
  std::lock_guard<std::mutex> lock(shared_mu);
  std::unique_ptr<ThreadPool>& pool = SharedSlot();
  if (!pool) {
    pool = std::make_unique<ThreadPool>(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    shared_pool.store(pool.get(), std::memory_order_release);
  }
  return *pool;
}

void ThreadPool::SetThreads(int threads) {
  std::lock_guard<std::mutex> lock(shared_mu);
  std::unique_ptr<ThreadPool>& pool = SharedSlot();
  threads = std::max(threads, 1);
  if (pool && pool->size() == threads) return;
  shared_pool.store(nullptr, std::memory_order_release);
  pool = std::make_unique<ThreadPool>(threads);
  shared_pool.store(pool.get(), std::memory_order_release);
}

}  // namespace edgellm::engine

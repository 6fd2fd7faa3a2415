#include "daemon/engine/thread_pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <set>
#include <stdexcept>
#include <vector>

namespace edgellm::engine {
namespace {

TEST(ThreadPool, EveryTaskRunsExactlyOnce) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.size(), threads);
    for (int64_t tasks : {0, 1, 7, 1000}) {
      for (int64_t grain : {1, 3, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(tasks));
        pool.Run(tasks, grain, [&](int64_t begin, int64_t end) {
          EXPECT_LE(end - begin, grain);
          for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
        });
        for (int64_t i = 0; i < tasks; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
      }
    }
  }
}

TEST(ThreadPool, TaperedChunksRunEveryTaskOnceAndShrinkToTheSmallestAtEachSharesEnd) {
  for (int threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (int64_t tasks : {0, 1, 7, 1000}) {
      for (int64_t smallest : {1, 2}) {
        constexpr int64_t kGrain = 64;
        std::vector<std::atomic<int>> hits(static_cast<size_t>(tasks));
        std::mutex mu;
        std::vector<int64_t> lengths;
        pool.RunTapered(tasks, kGrain, smallest, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
          std::lock_guard<std::mutex> lock(mu);
          lengths.push_back(end - begin);
        });
        for (int64_t i = 0; i < tasks; ++i) ASSERT_EQ(hits[static_cast<size_t>(i)].load(), 1) << i;
        for (int64_t length : lengths) EXPECT_LE(length, kGrain);
        if (threads > 1 && tasks == 1000) {
          // Each share (1000 / threads tasks) ends in chunks of `smallest`
          // or less, where plain Run would give whole chunks of 64 but one.
          const int64_t shortest = *std::min_element(lengths.begin(), lengths.end());
          EXPECT_LE(shortest, smallest) << threads << " threads";
          EXPECT_GT(lengths.size(), static_cast<size_t>((tasks + kGrain - 1) / kGrain)) << threads << " threads";
        }
      }
    }
  }
}

TEST(ThreadPool, WorkSpreadsOverItsThreads) {
  ThreadPool pool(2);
  std::mutex mu;
  std::set<std::thread::id> seen;
  // Enough small jobs, each slow enough, that the worker takes some.
  for (int job = 0; job < 50 && seen.size() < 2; ++job) {
    pool.Run(64, 1, [&](int64_t, int64_t) {
      volatile double sink = 0;
      for (int i = 0; i < 20000; ++i) sink = sink + i;
      std::lock_guard<std::mutex> lock(mu);
      seen.insert(std::this_thread::get_id());
    });
  }
  EXPECT_EQ(seen.size(), 2u);
}

TEST(ThreadPool, AThreadDoneWithItsShareTakesTheOthersChunks) {
  // The first chunk waits for every other chunk: the thread holding it cannot
  // get to the rest of its share, so another thread has to take them.
  ThreadPool pool(2);
  constexpr int64_t kTasks = 8;
  std::mutex mu;
  std::condition_variable cv;
  int64_t others_done = 0;
  bool all_others_seen = false;
  pool.Run(kTasks, 1, [&](int64_t begin, int64_t) {
    std::unique_lock<std::mutex> lock(mu);
    if (begin != 0) {
      ++others_done;
      cv.notify_all();
      return;
    }
    // Bounded so that a pool without stealing fails here instead of hanging.
    all_others_seen = cv.wait_for(lock, std::chrono::seconds(60), [&] { return others_done == kTasks - 1; });
  });
  EXPECT_TRUE(all_others_seen);
  EXPECT_EQ(others_done, kTasks - 1);
}

TEST(ThreadPool, AnExceptionOnAnyThreadReachesTheCaller) {
  ThreadPool pool(2);
  for (int attempt = 0; attempt < 20; ++attempt) {
    EXPECT_THROW(pool.Run(64, 1,
                          [&](int64_t begin, int64_t) {
                            if (begin == 40) throw std::runtime_error("chunk 40 failed");
                          }),
                 std::runtime_error);
  }
  // The pool still works afterwards.
  std::atomic<int> done{0};
  pool.Run(64, 1, [&](int64_t, int64_t) { done.fetch_add(1); });
  EXPECT_EQ(done.load(), 64);
}

TEST(ThreadPool, TheSharedPoolTakesItsSizeFromConfiguration) {
  ThreadPool::SetThreads(3);
  EXPECT_EQ(ThreadPool::Shared().size(), 3);
  ThreadPool::SetThreads(1);
  EXPECT_EQ(ThreadPool::Shared().size(), 1);
}

}  // namespace
}  // namespace edgellm::engine

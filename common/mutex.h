// common/mutex.h — the mutex of edgellm's own code: absl::Mutex (its Await
// on conditions, clang's thread-safety annotations) made visible to
// ThreadSanitizer. Debian's abseil is not built with TSan, so its lock and
// unlock are invisible to it and every field a mutex guards would look
// raced. In a TSan build each lock tells TSan it acquires the mutex and each
// unlock (and each wait, which unlocks) that it releases it; in any other
// build these are absl::Mutex's calls and nothing more.
#ifndef EDGELLM_COMMON_MUTEX_H_
#define EDGELLM_COMMON_MUTEX_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#if defined(__SANITIZE_THREAD__)
#define EDGELLM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define EDGELLM_TSAN 1
#endif
#endif

#if defined(EDGELLM_TSAN)
#include <sanitizer/tsan_interface.h>
#endif

namespace edgellm {

// TSan's view of a synchronization object at `address`: what one thread
// did before Release happens before what another does after Acquire.
inline void TsanAcquire([[maybe_unused]] void* address) {
#if defined(EDGELLM_TSAN)
  __tsan_acquire(address);
#endif
}
inline void TsanRelease([[maybe_unused]] void* address) {
#if defined(EDGELLM_TSAN)
  __tsan_release(address);
#endif
}

class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() {
    mu_.Lock();
    TsanAcquire(this);
  }
  void Unlock() ABSL_UNLOCK_FUNCTION() {
    TsanRelease(this);
    mu_.Unlock();
  }
  // Unlocks until `condition` holds, then holds the lock again.
  void Await(const absl::Condition& condition) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    TsanRelease(this);
#if defined(EDGELLM_TSAN)
    const HeldCondition held{this, &condition};
    mu_.Await(held.AsCondition());
#else
    mu_.Await(condition);
#endif
    TsanAcquire(this);
  }
  // As Await, for at most `timeout`; whether `condition` holds.
  bool AwaitWithTimeout(const absl::Condition& condition, absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    return AwaitWithDeadline(condition, absl::Now() + timeout);
  }
  // As Await, until `deadline`; whether `condition` holds.
  bool AwaitWithDeadline(const absl::Condition& condition, absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(this) {
    TsanRelease(this);
#if defined(EDGELLM_TSAN)
    const HeldCondition held{this, &condition};
    const bool holds = mu_.AwaitWithDeadline(held.AsCondition(), deadline);
#else
    const bool holds = mu_.AwaitWithDeadline(condition, deadline);
#endif
    TsanAcquire(this);
    return holds;
  }

 private:
#if defined(EDGELLM_TSAN)
  // absl evaluates a waiter's condition inside its own lock and unlock (in
  // the waiting thread or in the one unlocking), where TSan cannot see the
  // lock held: the evaluation acquires and releases the mutex for TSan.
  struct HeldCondition {
    Mutex* mu;
    const absl::Condition* condition;
    static bool Eval(const HeldCondition* held) {
      TsanAcquire(held->mu);
      const bool holds = held->condition->Eval();
      TsanRelease(held->mu);
      return holds;
    }
    absl::Condition AsCondition() const { return absl::Condition(&HeldCondition::Eval, this); }
  };
#endif

  absl::Mutex mu_;
};

// Holds `mu` for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A one-time event: Notify once; any thread may wait for it.
class Notification {
 public:
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
  }
  // Whether it was notified within `timeout`.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    MutexLock lock(&mu_);
    return mu_.AwaitWithTimeout(absl::Condition(&notified_), timeout);
  }
  void WaitForNotification() {
    MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&notified_));
  }

 private:
  Mutex mu_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace edgellm

#endif  // EDGELLM_COMMON_MUTEX_H_

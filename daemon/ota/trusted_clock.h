// ota/trusted_clock.h — the time a device checks releases against, when its
// wall clock may jump (a dead RTC battery, a lying NTP server, an operator).
//
// The floor is the latest time known to have passed: the creation time of a
// verified release (signed by trusted keys), carried forward by the
// monotonic clock while the daemon runs and persisted in the OTA state. The
// wall clock is believed only when it is later than that: a clock set back
// cannot make an expired release valid again. The floor never takes a value
// from the wall clock, so a clock wrongly set forward (and later corrected)
// does not leave every release looking expired; nor does it take a creation
// time more than a day ahead of both the wall clock and itself (a signer
// whose clock was wrong), which would make every later release look expired
// for good.
#ifndef EDGELLM_OTA_TRUSTED_CLOCK_H_
#define EDGELLM_OTA_TRUSTED_CLOCK_H_

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace edgellm::ota {

class TrustedClock {
 public:
  explicit TrustedClock(int64_t floor_unix) : floor_(floor_unix), since_(std::chrono::steady_clock::now()) {}

  // The latest time known to have passed, in seconds since the epoch.
  int64_t Floor() const {
    const auto elapsed = std::chrono::steady_clock::now() - since_;
    return floor_ + std::chrono::duration_cast<std::chrono::seconds>(elapsed).count();
  }
  // The wall clock, unless the floor is later.
  int64_t NowUnix() const { return std::max(Wall(), Floor()); }
  // `unix` is known to have passed (e.g. a verified release was created
  // then); ignored more than a day ahead of NowUnix.
  void Witness(int64_t unix) {
    constexpr int64_t kMostAhead = 86'400;
    if (unix <= Floor() || unix > NowUnix() + kMostAhead) return;
    floor_ = unix;
    since_ = std::chrono::steady_clock::now();
  }

  static int64_t Wall() {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  }

 private:
  int64_t floor_;
  std::chrono::steady_clock::time_point since_;
};

}  // namespace edgellm::ota

#endif  // EDGELLM_OTA_TRUSTED_CLOCK_H_

// ota/trusted_clock.h — the time a device checks releases against, when its
// wall clock may jump (a dead RTC battery, a lying NTP server, an operator).
//
// The floor is the latest time known to have passed: the creation time of a
// verified release (signed by trusted keys), carried forward by the
// monotonic clock while the daemon runs and persisted in the OTA state. The
// wall clock is believed only when it is later than that: a clock set back
// cannot make an expired release valid again. The floor never takes a value
// from the wall clock, so a clock wrongly set forward (and later corrected)
// does not leave every release looking expired.
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
  int64_t NowUnix() const {
    const int64_t wall =
        std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
    return std::max(wall, Floor());
  }
  // `unix` is known to have passed (e.g. a verified release was created then).
  void Witness(int64_t unix) {
    if (unix <= Floor()) return;
    floor_ = unix;
    since_ = std::chrono::steady_clock::now();
  }

 private:
  int64_t floor_;
  std::chrono::steady_clock::time_point since_;
};

}  // namespace edgellm::ota

#endif  // EDGELLM_OTA_TRUSTED_CLOCK_H_

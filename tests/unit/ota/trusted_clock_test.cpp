// The time a device checks release expiry against.
#include "daemon/ota/trusted_clock.h"

#include <gtest/gtest.h>

namespace edgellm::ota {
namespace {

int64_t Wall() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

TEST(TrustedClock, AFloorLaterThanTheWallClockWins) {
  const int64_t ahead = Wall() + 3600;
  TrustedClock clock(ahead);
  EXPECT_GE(clock.NowUnix(), ahead);
  EXPECT_LT(clock.NowUnix(), ahead + 60);
}

TEST(TrustedClock, AWitnessedTimeRaisesTheFloorButNeverLowersIt) {
  TrustedClock clock(Wall() - 3600);
  clock.Witness(Wall() + 600);  // a signer a little ahead
  EXPECT_GE(clock.Floor(), Wall() + 590);
  const int64_t raised = clock.Floor();
  clock.Witness(Wall() - 7200);
  EXPECT_GE(clock.Floor(), raised);
}

// A signer whose clock said 2099 would otherwise make every later release
// look expired on this device for good.
TEST(TrustedClock, ACreationTimeFarAheadOfEverythingIsNotBelieved) {
  TrustedClock clock(0);
  clock.Witness(Wall() + 2 * 86'400);
  EXPECT_LE(clock.Floor(), Wall());
  EXPECT_LE(clock.NowUnix(), Wall() + 1);
}

}  // namespace
}  // namespace edgellm::ota

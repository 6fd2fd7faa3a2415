// ops/systemd_notify.h — tells systemd how the daemon is doing (sd_notify):
// READY once serving, STOPPING on the way out, and watchdog pings while the
// daemon is healthy. Every call is a no-op when not run by systemd.
#ifndef EDGELLM_OPS_SYSTEMD_NOTIFY_H_
#define EDGELLM_OPS_SYSTEMD_NOTIFY_H_

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "common/mutex.h"

namespace edgellm::ops {

void NotifyReady(const std::string& status);
void NotifyStopping(const std::string& status);

// Pings the systemd watchdog at half its interval (WatchdogSec=) for as long
// as `healthy()` says so; a daemon that stops answering is then restarted by
// systemd. Does nothing when the unit has no watchdog. Stops on destruction.
class WatchdogPinger {
 public:
  explicit WatchdogPinger(std::function<bool()> healthy);
  ~WatchdogPinger();
  WatchdogPinger(const WatchdogPinger&) = delete;
  WatchdogPinger& operator=(const WatchdogPinger&) = delete;

 private:
  Notification stop_;
  std::thread thread_;
};

}  // namespace edgellm::ops

#endif  // EDGELLM_OPS_SYSTEMD_NOTIFY_H_

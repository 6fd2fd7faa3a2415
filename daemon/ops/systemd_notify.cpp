#include "daemon/ops/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include "absl/time/time.h"

namespace edgellm::ops {

void NotifyReady(const std::string& status) { sd_notify(0, ("READY=1\nSTATUS=" + status).c_str()); }

void NotifyStopping(const std::string& status) { sd_notify(0, ("STOPPING=1\nSTATUS=" + status).c_str()); }

WatchdogPinger::WatchdogPinger(std::function<bool()> healthy) {
  uint64_t interval_us = 0;
  if (sd_watchdog_enabled(0, &interval_us) <= 0 || interval_us == 0) return;
  thread_ = std::thread([this, healthy = std::move(healthy), interval_us] {
    const absl::Duration period = absl::Microseconds(interval_us / 2);
    do {
      if (healthy()) sd_notify(0, "WATCHDOG=1");
    } while (!stop_.WaitForNotificationWithTimeout(period));
  });
}

WatchdogPinger::~WatchdogPinger() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

}  // namespace edgellm::ops

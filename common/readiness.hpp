// Telling the service manager how a program is doing (systemd's notify
// protocol, `Type=notify` units): ready once it listens, reloading on SIGHUP,
// stopping when it drains. Without a manager ($NOTIFY_SOCKET unset) or a build
// without libsystemd, every call does nothing.
#pragma once

#include <string_view>

namespace pingan {

// READY=1 with a one-line STATUS= (e.g. "listening ingest=tcp://...").
void notify_ready(std::string_view status);
// RELOADING=1: the program is re-reading its configuration (SIGHUP).
void notify_reloading();
// STOPPING=1: the program is draining and will exit.
void notify_stopping();

} // namespace pingan

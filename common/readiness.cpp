#include "common/readiness.hpp"

#include <string>

#if PINGAN_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

namespace pingan {

namespace {

void send([[maybe_unused]] const std::string& state) {
#if PINGAN_HAVE_SYSTEMD
    // unset_environment = 0: a program may notify more than once.
    sd_notify(0, state.c_str());
#endif
}

} // namespace

void notify_ready(std::string_view status) {
    std::string s = "READY=1\nSTATUS=";
    for (char c : status)
        s += c == '\n' ? ' ' : c;
    send(s);
}

void notify_reloading() {
    send("RELOADING=1");
}

void notify_stopping() {
    send("STOPPING=1");
}

} // namespace pingan

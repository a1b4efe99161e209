// libnats' text for a failure, for the programs that use libnats
// (broker/replication, the pingan CLI's JetStream reader).
#pragma once

#include <nats/nats.h>

#include <string>

namespace pingan {

// libnats' own text for a failure: its last error, else the status name.
inline std::string nats_text(natsStatus s) {
    natsStatus last = NATS_OK;
    const char* text = nats_GetLastError(&last);
    return text && *text ? text : natsStatus_GetText(s);
}

} // namespace pingan

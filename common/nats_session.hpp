// A connection to NATS JetStream with its context and one subscription, for
// the programs that read the replicated log (common/stream_reader.hpp) and
// the pingan CLI's province commands. Includes <nats.h>.
#pragma once

#include "common/stream_reader.hpp"

#include <nats/nats.h>

#include <string>

namespace pingan {

struct nats_session {
    natsConnection* nc = nullptr;
    jsCtx* js = nullptr;
    natsSubscription* sub = nullptr;

    nats_session() = default;
    nats_session(const nats_session&) = delete;
    nats_session& operator=(const nats_session&) = delete;
    // The connection is closed without deleting the consumer first (a scoped
    // NATS user may not delete consumers): the servers remove an ephemeral
    // consumer whose reader has gone.
    ~nats_session() {
        if (nc) natsConnection_Close(nc);
        if (sub) natsSubscription_Destroy(sub);
        if (js) jsCtx_Destroy(js);
        if (nc) natsConnection_Destroy(nc);
    }

    // What the server refused this connection (a permissions violation), or empty.
    std::string refusal() const {
        const char* text = nullptr;
        if (nc && natsConnection_GetLastError(nc, &text) == NATS_NOT_PERMITTED && text) return text;
        return {};
    }
};

// Connects `ses` to the servers of `src` as client `name` and makes its
// JetStream context with `jo`.
// Throws: pingan::error(unauthorized) when the servers refuse the user,
// io_error when they cannot be reached, bad_value for options libnats refuses.
void nats_connect(nats_session& ses, const jetstream_source& src, const char* name, jsOptions& jo);

} // namespace pingan

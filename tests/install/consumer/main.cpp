// publish_one ENDPOINT: publishes one cold-storage reading to the broker at
// ENDPOINT with the installed client library and prints its offset.
#include "common/client.hpp"
#include "common/codec.hpp"
#include "common/event_id.hpp"
#include "common/time.hpp"

#include <chrono>
#include <iostream>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: publish_one ENDPOINT\n";
        return 2;
    }
    auto now = std::chrono::time_point_cast<pingan::micros>(std::chrono::system_clock::now());
    pingan::json j = {
        {"type", "food.temp_reading"},
        {"school", "420502K001"},
        {"status", "Actual"},
        {"source", "publish_one/test"},
        {"occurred_at", pingan::format_utc(now)},
        {"body",
         {{"canteen_id", "C1"}, {"sensor_id", "P2"}, {"zone", "cold_storage"}, {"celsius", 3.5}}}};
    pingan::event e;
    if (auto p = pingan::from_json(j, e)) {
        std::cerr << "publish_one: " << p.text() << "\n";
        return 1;
    }
    e.id = pingan::new_event_id(now);
    zmq::context_t ctx(1);
    pingan::ingest_client client(ctx, argv[1]);
    std::vector<pingan::event> one{e};
    auto r = client.publish(one);
    if (r.results.size() != 1 || r.results[0].what != pingan::wire::outcome::stored) {
        std::cout << "not stored:";
        if (r.refused) std::cout << " " << r.message;
        for (const auto& x : r.results)
            std::cout << " " << x.message;
        std::cout << "\n";
        return 1;
    }
    std::cout << "stored " << r.results[0].offset << "\n";
    return 0;
}

// Writes the binary seeds of the fuzz corpora from the JSON ones: each event of
// corpus/event_json as cereal bytes (event_binary/), as a binary publish frame
// and as result frames (wire/). Run once when the JSON seeds change:
//   build-fuzz/make_seeds tests/fuzz/corpus
#include "common/codec.hpp"
#include "common/wire.hpp"
#include "fuzz_support.hpp"

#include <filesystem>
#include <fstream>
#include <iostream>

int main(int argc, char** argv) {
    using namespace pingan;
    if (argc != 2) {
        std::cerr << "usage: make_seeds CORPUS_DIR\n";
        return 2;
    }
    namespace fs = std::filesystem;
    fs::path dir = argv[1];
    int n = 0;
    for (const auto& f : fs::directory_iterator(dir / "event_json")) {
        json j;
        event e;
        if (parse_json(fuzz::read_file(f.path().string()), j) || from_json(j, e)) {
            std::cerr << f.path() << ": not an event\n";
            return 1;
        }
        auto name = f.path().stem().string();
        auto bytes = encode(e);
        std::ofstream(dir / "event_binary" / (name + ".bin"), std::ios::binary) << bytes;
        std::ofstream(dir / "wire" / ("pub_" + name), std::ios::binary) << '\x01' << bytes;
        wire::result r;
        r.id = e.id;
        r.offset = 17;
        r.what = n % 2 ? wire::outcome::duplicate : wire::outcome::stored;
        std::ofstream(dir / "wire" / ("res_" + name), std::ios::binary)
            << '\x00' << wire::encode_result(r);
        ++n;
    }
    wire::result bad;
    bad.what = wire::outcome::rejected;
    bad.code = errc::unknown_school;
    bad.message = "school: \"x\" is not in the registry";
    std::ofstream(dir / "wire" / "res_rejected", std::ios::binary)
        << '\x00' << wire::encode_result(bad);
    std::cout << n << " events\n";
    return 0;
}

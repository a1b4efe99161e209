// pingan keygen: a new CURVE key pair for a client or the broker.
#include "common/curve.hpp"
#include "tools/pingan/commands.hpp"

#include <sys/stat.h>

#include <fstream>
#include <iostream>

namespace pingan::cli {

void add_keygen_command(CLI::App& app) {
    auto out = std::make_shared<std::string>();
    auto* cmd = app.add_subcommand(
        "keygen", "Write a new CURVE key pair file (mode 0600) and print its public key, for "
                  "the broker's --server-key or a client's --key and the access table");
    cmd->add_option("file", *out, "the key pair file to create")->required();
    cmd->callback([out] {
        std::ifstream exists(*out);
        if (exists) fatal(*out + " exists; refusing to overwrite a key");
        auto k = curve_generate();
        {
            std::ofstream f(*out, std::ios::binary);
            if (!f) fatal("cannot write " + *out);
            f << format_keypair(k);
        }
        ::chmod(out->c_str(), 0600); // the secret stays with its owner
        std::cout << k.public_key << "\n";
    });
}

PINGAN_COMMAND(80, add_keygen_command);

} // namespace pingan::cli

// pingan schema: the JSON fields of every event type, as docs/events.md lists them.
#include "common/schema.hpp"
#include "tools/pingan/commands.hpp"

#include <iostream>

namespace pingan::cli {

void add_schema_command(CLI::App& app) {
    auto* cmd =
        app.add_subcommand("schema", "Print the JSON fields of every event type (Markdown)");
    cmd->callback([] { std::cout << body_schema_markdown(); });
}

PINGAN_COMMAND(60, add_schema_command);

} // namespace pingan::cli

// The Catch2 runner shared by every test executable.
//
// Programs the tests start run without CURVE keys: PINGAN_INSECURE_DEV says
// so explicitly (the broker refuses plain sockets otherwise). Tests of the
// secured setup give keys, which take precedence.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdlib>

int main(int argc, char** argv) {
    ::setenv("PINGAN_INSECURE_DEV", "1", 1);
    return Catch::Session().run(argc, argv);
}

# Finds every dependency, failing with the Debian package that provides it.
find_package(PkgConfig REQUIRED)

macro(pingan_require_pkg prefix module debian)
  pkg_check_modules(${prefix} IMPORTED_TARGET ${module})
  if(NOT ${prefix}_FOUND)
    message(FATAL_ERROR "${module} not found: install the Debian package ${debian} "
                        "(scripts/setup.sh installs everything)")
  endif()
endmacro()

macro(pingan_require_cmake name debian)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR "${name} not found: install the Debian package ${debian} "
                        "(scripts/setup.sh installs everything)")
  endif()
endmacro()

pingan_require_pkg(ZMQ libzmq libzmq3-dev)
pingan_require_pkg(LMDB lmdb liblmdb-dev)
pingan_require_pkg(SODIUM libsodium libsodium-dev)
pingan_require_pkg(NATS libnats libnats-dev)
pingan_require_cmake(cppzmq cppzmq-dev)
pingan_require_cmake(cereal libcereal-dev)
pingan_require_cmake(nlohmann_json nlohmann-json3-dev)
pingan_require_cmake(yaml-cpp libyaml-cpp-dev)
pingan_require_cmake(CLI11 libcli11-dev)
pingan_require_cmake(spdlog libspdlog-dev)
pingan_require_cmake(Boost libboost-dev 1.74)
find_package(Threads REQUIRED)
# Optional: readiness notification under systemd (Type=notify units).
pkg_check_modules(SYSTEMD IMPORTED_TARGET libsystemd)
if(NOT SYSTEMD_FOUND)
  message(WARNING "libsystemd not found (apt-get install libsystemd-dev): the programs cannot "
                  "report readiness, and the installed Type=notify units would never start. "
                  "Install it, or change the units to Type=exec.")
endif()
# Optional: the broker's allocator (docs/performance.md). Not with the
# sanitizers, which bring their own.
add_library(pingan_allocator INTERFACE)
if(PINGAN_MIMALLOC AND NOT PINGAN_SANITIZE)
  find_package(mimalloc QUIET)
  if(mimalloc_FOUND)
    target_link_libraries(pingan_allocator INTERFACE mimalloc)
    target_compile_definitions(pingan_allocator INTERFACE PINGAN_MIMALLOC)
    set(PINGAN_HAVE_MIMALLOC ON)
  else()
    message(WARNING "mimalloc not found (apt-get install libmimalloc-dev): the broker keeps "
                    "glibc's allocator, about 5 % fewer events a second under load")
  endif()
endif()
if(PINGAN_BUILD_TESTS)
  pingan_require_cmake(Catch2 catch2 2)
endif()

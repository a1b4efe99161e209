# Every build option in one place.
option(PINGAN_BUILD_TESTS "Build the Catch2 tests" ON)
option(PINGAN_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
option(PINGAN_WERROR "Treat warnings as errors" OFF)
option(PINGAN_LLD "Link with lld when the compiler can: each program links in a seventh of the time" ON)
option(PINGAN_MIMALLOC "Link the broker and the bench with mimalloc when found (not with PINGAN_SANITIZE): about 5 % more events a second" ON)
option(PINGAN_COMPRESS_DEBUG "Compress debugging sections (-gz): builds take a quarter of the disk" ON)

set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
set(CMAKE_EXPORT_COMPILE_COMMANDS ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

# Flags are set on an interface target that every Pingan target links, never globally.
add_library(pingan_flags INTERFACE)
target_compile_options(pingan_flags INTERFACE -Wall -Wextra -Wpedantic)
if(PINGAN_WERROR)
  target_compile_options(pingan_flags INTERFACE -Werror)
endif()
# GNU ld takes about 12 s per program of this tree (debugging sections of
# Boost.Beast and Asio); lld takes about 2 s, and a build links some sixty.
if(PINGAN_LLD)
  include(CheckLinkerFlag)
  check_linker_flag(CXX -fuse-ld=lld PINGAN_HAVE_LLD)
  if(PINGAN_HAVE_LLD)
    target_link_options(pingan_flags INTERFACE -fuse-ld=lld)
  endif()
endif()
# Boost.Beast's templates make the debugging sections most of every program's
# size (a 140 MB console, 30 MB compressed); two builds of the tree would take
# 16 GB of disk uncompressed.
if(PINGAN_COMPRESS_DEBUG)
  include(CheckCXXCompilerFlag)
  include(CheckLinkerFlag)
  check_cxx_compiler_flag(-gz PINGAN_HAVE_GZ)
  check_linker_flag(CXX -gz PINGAN_HAVE_LINK_GZ)
  if(PINGAN_HAVE_GZ AND PINGAN_HAVE_LINK_GZ)
    target_compile_options(pingan_flags INTERFACE -gz)
    target_link_options(pingan_flags INTERFACE -gz)
  endif()
endif()
if(PINGAN_SANITIZE)
  target_compile_options(pingan_flags INTERFACE -fsanitize=address,undefined -fno-omit-frame-pointer
                                                -fno-sanitize-recover=undefined)
  target_link_options(pingan_flags INTERFACE -fsanitize=address,undefined)
endif()

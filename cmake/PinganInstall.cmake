# Installation: `cmake --install build --prefix /opt/pingan` gives a tree that
# runs from any working directory (docs/operations.md):
#
#   bin/                       the programs
#   etc/pingan/                configuration (written once; an existing file is kept
#                              and the new default written beside it as FILE.dist)
#   share/pingan/data/         the school registry
#   share/pingan/config/rules/ the default rule pack (programs find it beside them)
#   share/doc/pingan/          the documentation
#   lib/systemd/system/        units for the broker, the services, console and notify
#   lib/sysusers.d/pingan.conf the `pingan` system user
#
# Programs find the shipped files relative to their own location
# (common/shipped.hpp), so the prefix can change at install time.
include(GNUInstallDirs)

set(PINGAN_PROGRAMS pingan pingan-broker pingan-hazard pingan-drill pingan-canteen
                    pingan-wellbeing pingan-console pingan-notify pingan-sim)
foreach(program IN LISTS PINGAN_PROGRAMS)
  if(TARGET ${program})
    install(TARGETS ${program} RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
  endif()
endforeach()

install(FILES ${PROJECT_SOURCE_DIR}/data/schools.csv ${PROJECT_SOURCE_DIR}/data/districts.csv
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pingan/data)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/config/rules/
        DESTINATION ${CMAKE_INSTALL_DATADIR}/pingan/config/rules)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/docs/ DESTINATION ${CMAKE_INSTALL_DOCDIR}
        FILES_MATCHING PATTERN "*.md")
install(FILES ${PROJECT_SOURCE_DIR}/README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})

# Configuration and units name absolute paths under the prefix, which is only
# known at install time (cmake --install --prefix): they are written then.
install(CODE "
  set(PINGAN_SOURCE_DIR \"${PROJECT_SOURCE_DIR}\")
  set(PINGAN_BINDIR \"${CMAKE_INSTALL_BINDIR}\")
  set(PINGAN_DATADIR \"${CMAKE_INSTALL_DATADIR}\")
  set(PINGAN_DOCDIR \"${CMAKE_INSTALL_DOCDIR}\")
  include(\"${PROJECT_SOURCE_DIR}/cmake/PinganInstallConfig.cmake\")
")

# The client library for other CMake projects: find_package(Pingan) and link
# pingan::client (docs/operations.md, "Publishing from another program").
include(CMakePackageConfigHelpers)
set(PINGAN_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/Pingan)
install(TARGETS pingan_client pingan_common EXPORT PinganTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
file(GLOB PINGAN_COMMON_HEADERS ${PROJECT_SOURCE_DIR}/common/*.hpp)
install(FILES ${PINGAN_COMMON_HEADERS} ${PROJECT_BINARY_DIR}/common/generated/common/version.hpp
        DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/pingan/common)
install(EXPORT PinganTargets NAMESPACE pingan:: DESTINATION ${PINGAN_CMAKEDIR})
if(TARGET PkgConfig::SYSTEMD)
  set(PINGAN_WITH_SYSTEMD ON)
else()
  set(PINGAN_WITH_SYSTEMD OFF)
endif()
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/PinganConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/PinganConfig.cmake
                              INSTALL_DESTINATION ${PINGAN_CMAKEDIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/PinganConfigVersion.cmake
                                 COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/PinganConfig.cmake
              ${PROJECT_BINARY_DIR}/PinganConfigVersion.cmake DESTINATION ${PINGAN_CMAKEDIR})

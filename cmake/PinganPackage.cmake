# A Debian package of the installed tree, for a bureau's servers:
#
#   cd build && cpack -G DEB        # pingan_0.1.0_amd64.deb
#
# The prefix is /usr, so the configuration goes to /etc/pingan (kept across
# upgrades as conffiles), the state to /var/lib/pingan and the units to
# /usr/lib/systemd/system. The package's dependencies are read from the
# programs' shared libraries (dpkg-shlibdeps). Installing it creates the
# `pingan` system user; no unit is enabled or started (docs/operations.md).
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME pingan)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR "Pingan")
set(CPACK_PACKAGE_CONTACT "Pingan operators <root@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "Campus safety and incident management: event broker, school services, console")
set(CPACK_PACKAGE_DESCRIPTION
    "Schools report hazards, drills, canteen and wellbeing alerts; a broker keeps every event in a tamper-evident LMDB log and escalates by the regulations' deadlines.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "systemd")
set(CPACK_DEBIAN_COMPRESSION_TYPE gzip)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA ${PROJECT_SOURCE_DIR}/cmake/debian/conffiles
                                       ${PROJECT_SOURCE_DIR}/cmake/debian/postinst)
include(CPack)

# Installation and packaging (on by default in a top-level build:
# RAFTKIT_INSTALL).
#
# What is installed: the public headers (include/raftkit/, all of it and
# nothing else), the static libraries raftkit and raftkit_core (the second is
# part of the first: a consumer links raftkit::raftkit), the CMake package
# (raftkitConfig.cmake, raftkitConfigVersion.cmake, raftkitTargets.cmake and
# the Cap'n Proto helper it needs) and a pkg-config file (raftkit.pc).
# Internal headers (src/) and test tools (tests/testing) are not installed.
#
# CPack: `cpack -G DEB` in the build directory makes raftkit-dev_<version>_<arch>.deb
# with the same contents under /usr and the Debian packages of the
# dependencies as Depends.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RAFTKIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/raftkit)

install(DIRECTORY include/raftkit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS raftkit raftkit_core EXPORT raftkitTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT raftkitTargets NAMESPACE raftkit:: DESTINATION ${RAFTKIT_CMAKE_DIR})
configure_package_config_file(cmake/raftkitConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/raftkitConfig.cmake
  INSTALL_DESTINATION ${RAFTKIT_CMAKE_DIR})
# 0.x: a minor version may break the API, so only the same minor matches.
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/raftkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/raftkitConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/raftkitConfigVersion.cmake
              cmake/RaftkitCapnProto.cmake
        DESTINATION ${RAFTKIT_CMAKE_DIR})

# pkg-config: the libraries in link order, then what they need. Boost is
# header-only here and has no .pc file; its headers are in the default path
# on Debian. The prefix is found relative to the .pc file itself, so the
# file stays right under `cmake --install --prefix <anywhere>` and in the .deb.
string(REGEX REPLACE "[^/]+" ".." RAFTKIT_PC_TO_PREFIX "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
configure_file(cmake/raftkit.pc.in ${CMAKE_CURRENT_BINARY_DIR}/raftkit.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/raftkit.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

set(CPACK_PACKAGE_NAME raftkit-dev)
set(CPACK_PACKAGE_VENDOR "raftkit")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Embeddable Raft consensus library for C++20 (headers, static libraries, CMake and pkg-config files)")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_RESOURCE_FILE_LICENSE ${PROJECT_SOURCE_DIR}/LICENSE)
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "raftkit maintainers <raftkit@localhost>")
set(CPACK_DEBIAN_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_DEPENDS "libfmt-dev, libboost1.81-dev, libcapnp-dev, libssl-dev")
set(CPACK_GENERATOR DEB)
include(CPack)

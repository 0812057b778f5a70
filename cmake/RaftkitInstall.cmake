include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/raftkit DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS raftkit raftkit_core EXPORT raftkitTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(EXPORT raftkitTargets NAMESPACE raftkit:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/raftkit)
configure_package_config_file(cmake/raftkitConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/raftkitConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/raftkit)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/raftkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/raftkitConfig.cmake ${CMAKE_CURRENT_BINARY_DIR}/raftkitConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/raftkit)

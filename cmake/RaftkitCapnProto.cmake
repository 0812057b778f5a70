# raftkit_find_capnproto(): find_package(CapnProto) in a project that may not
# enable the C language.
#
# Cap'n Proto's package config (Debian 12, 0.9) checks for libatomic with
# check_library_exists(), which compiles a C file: in a project declared
# `project(app CXX)` it fails with "libatomic not found". The check skips
# itself when its result variable, FOUND_LIBATOMIC, is already defined, so
# when C is not enabled we make the same check with the C++ compiler first:
# does a program link with -latomic? Both raftkit's own build and its
# installed package config (raftkitConfig.cmake) use this, so users never
# have to enable C for raftkit's sake.
include_guard(GLOBAL)

macro(raftkit_find_capnproto)
  get_property(_raftkit_languages GLOBAL PROPERTY ENABLED_LANGUAGES)
  if(NOT "C" IN_LIST _raftkit_languages AND NOT DEFINED FOUND_LIBATOMIC)
    include(CheckCXXSourceCompiles)
    set(_raftkit_saved_libraries "${CMAKE_REQUIRED_LIBRARIES}")
    set(_raftkit_saved_quiet "${CMAKE_REQUIRED_QUIET}")
    set(CMAKE_REQUIRED_LIBRARIES atomic)
    set(CMAKE_REQUIRED_QUIET ON)
    check_cxx_source_compiles("int main() { return 0; }" FOUND_LIBATOMIC)
    set(CMAKE_REQUIRED_LIBRARIES "${_raftkit_saved_libraries}")
    set(CMAKE_REQUIRED_QUIET "${_raftkit_saved_quiet}")
  endif()
  find_package(CapnProto ${ARGN})
endmacro()

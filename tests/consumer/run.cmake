# The consumer_project test (cmake -P): installs the main build into a fresh
# prefix, configures and builds tests/consumer against that prefix only,
# runs its program, and compiles the same program through pkg-config.
#
# Variables (from the add_test in the top-level CMakeLists.txt):
#   RAFTKIT_BUILD_DIR   the main build directory (its raftkit targets are built)
#   RAFTKIT_SOURCE_DIR  the source tree
#   WORK_DIR            scratch directory (wiped first)
#   CXX                 the C++ compiler of the main build
#   CXX_FLAGS           flags the installed libraries need at link time (sanitizers)
#   LAUNCHER            compiler launcher (ccache) or empty
cmake_minimum_required(VERSION 3.22)

function(step what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "consumer_project: ${what} failed (${rc}):\n${out}\n${err}")
  endif()
  message(STATUS "consumer_project: ${what}: ok")
  set(step_output "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")
step("cmake --install" ${CMAKE_COMMAND} --install "${RAFTKIT_BUILD_DIR}" --prefix "${prefix}")

# Nothing internal may be installed.
file(GLOB_RECURSE installed_headers RELATIVE "${prefix}/include" "${prefix}/include/*")
foreach(h IN LISTS installed_headers)
  if(NOT h MATCHES "^raftkit/[a-z_]+\\.hpp$")
    message(FATAL_ERROR "consumer_project: not a public header, but installed: include/${h}")
  endif()
endforeach()

set(launcher_arg)
if(LAUNCHER)
  set(launcher_arg -DCMAKE_CXX_COMPILER_LAUNCHER=${LAUNCHER})
endif()
step("configure tests/consumer (CXX only)" ${CMAKE_COMMAND} -S "${RAFTKIT_SOURCE_DIR}/tests/consumer" -B "${WORK_DIR}/build"
     -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_CXX_COMPILER=${CXX} "-DCMAKE_CXX_FLAGS=${CXX_FLAGS}" ${launcher_arg}
     -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_FIND_USE_SYSTEM_PACKAGE_REGISTRY=OFF)
step("build tests/consumer" ${CMAKE_COMMAND} --build "${WORK_DIR}/build")
step("run the consumer (one-node cluster, one proposal)" "${WORK_DIR}/build/app")
message(STATUS "${step_output}")

# The same program through pkg-config.
find_program(PKG_CONFIG pkg-config REQUIRED)
file(GLOB pc_file "${prefix}/lib*/pkgconfig/raftkit.pc" "${prefix}/lib/*/pkgconfig/raftkit.pc")
if(NOT pc_file)
  message(FATAL_ERROR "consumer_project: raftkit.pc was not installed")
endif()
get_filename_component(pc_dir "${pc_file}" DIRECTORY)
set(ENV{PKG_CONFIG_PATH} "${pc_dir}")
step("pkg-config raftkit" ${PKG_CONFIG} --cflags --libs raftkit)
string(STRIP "${step_output}" pc_flags)
separate_arguments(pc_flags UNIX_COMMAND "${pc_flags}")
separate_arguments(extra_flags UNIX_COMMAND "${CXX_FLAGS}")
step("build with pkg-config flags" ${LAUNCHER} ${CXX} ${extra_flags} "${RAFTKIT_SOURCE_DIR}/tests/consumer/main.cpp"
     -o "${WORK_DIR}/app-pc" ${pc_flags})
step("run the pkg-config build" "${WORK_DIR}/app-pc")

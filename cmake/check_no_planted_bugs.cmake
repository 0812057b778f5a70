# cmake -DNM=<nm> -DLIBS=<lib>[,<lib>...] -P cmake/check_no_planted_bugs.cmake
#
# Fails when a library built without planted bugs (RAFTKIT_PLANTED_BUGS=OFF)
# still names one: any symbol (demangled) with "bug", "inject" or "planted"
# in it, in any case ("debug" aside). Run by scripts/test.sh on the Release
# build, and by the ctest planted_bugs_nm (which, in a build with planted
# bugs, expects it to find them).
cmake_minimum_required(VERSION 3.22)

if(NOT NM OR NOT LIBS)
  message(FATAL_ERROR "usage: cmake -DNM=<nm> -DLIBS=<lib,...> -P check_no_planted_bugs.cmake")
endif()
string(REPLACE "," ";" LIBS "${LIBS}")
set(found "")
foreach(lib IN LISTS LIBS)
  if(NOT EXISTS "${lib}")
    message(FATAL_ERROR "no planted bugs: ${lib} does not exist (build it first)")
  endif()
  execute_process(COMMAND "${NM}" -C "${lib}" RESULT_VARIABLE rc OUTPUT_VARIABLE symbols ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "no planted bugs: ${NM} -C ${lib} failed (${rc}): ${err}")
  endif()
  string(TOLOWER "${symbols}" lower)
  string(REPLACE "debug" "" lower "${lower}")
  string(REGEX MATCHALL "[^\n]*(bug|inject|planted)[^\n]*" hits "${lower}")
  foreach(hit IN LISTS hits)
    string(APPEND found "  ${lib}: ${hit}\n")
  endforeach()
endforeach()
if(found)
  message(FATAL_ERROR "planted-bug code in a build without planted bugs:\n${found}")
endif()
message(STATUS "no planted bugs: no bug, inject or planted symbol in ${LIBS}")

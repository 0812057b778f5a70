# raftkit_warnings(<target>): the warning set for raftkit's own code.
function(raftkit_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
  # g++ 12 at -O3 (Release) reports -Wrestrict inside libstdc++'s own
  # std::string concatenation (GCC bug 105651): a false positive in the
  # standard library's code, not ours, so it stays a warning there.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
     AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
    target_compile_options(${target} PRIVATE -Wno-restrict)
  endif()
  if(RAFTKIT_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

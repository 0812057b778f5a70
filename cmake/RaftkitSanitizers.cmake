# Applies RAFTKIT_SANITIZE to every target of the build (tests included), so
# that instrumented and uninstrumented code never mix.
if(RAFTKIT_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
elseif(RAFTKIT_SANITIZE STREQUAL "thread")
  # -Wno-tsan: g++ warns that TSan does not model the atomic_thread_fence in
  # Asio's headers; Asio's own synchronization is mutex-based on Linux.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  add_link_options(-fsanitize=thread)
elseif(NOT RAFTKIT_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RAFTKIT_SANITIZE must be '', 'address' or 'thread', not '${RAFTKIT_SANITIZE}'")
endif()

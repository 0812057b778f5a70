# Applies RAFTKIT_SANITIZE to every target of the build (tests included), so
# that instrumented and uninstrumented code never mix.
if(RAFTKIT_SANITIZE STREQUAL "address")
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
  # g++ 12 under ASan takes the sized operator delete of Asio's coroutine
  # frames (awaitable_frame_base) for a mismatch with the operator new it
  # inlined (-Wmismatched-new-delete at the end of every co_return function,
  # e.g. PeerLink::handshake); ASan itself checks the real pairing at run time.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    add_compile_options(-Wno-mismatched-new-delete)
  endif()
elseif(RAFTKIT_SANITIZE STREQUAL "thread")
  # -Wno-tsan: g++ warns that TSan does not model the atomic_thread_fence in
  # Asio's headers; Asio's own synchronization is mutex-based on Linux.
  add_compile_options(-fsanitize=thread -fno-omit-frame-pointer -Wno-tsan)
  add_link_options(-fsanitize=thread)
elseif(NOT RAFTKIT_SANITIZE STREQUAL "")
  message(FATAL_ERROR "RAFTKIT_SANITIZE must be '', 'address' or 'thread', not '${RAFTKIT_SANITIZE}'")
endif()

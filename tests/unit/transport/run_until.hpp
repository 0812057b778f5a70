// Bounded waits for transport tests: run an io_context until a condition holds
// or a deadline passes (never a bare sleep).
#pragma once

#include <chrono>
#include <functional>

#include <boost/asio/io_context.hpp>

namespace raftkit::test {

/// Runs `io` in short slices until `done()` is true or `timeout` elapses.
/// Returns done()'s final value.
inline bool run_until(boost::asio::io_context& io, const std::function<bool()>& done,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(5));
  }
  return true;
}

}  // namespace raftkit::test

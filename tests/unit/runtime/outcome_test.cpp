// raftkit::outcome(ec): the one rule for "was the request done?" (the table
// in raftkit/error.hpp), for std and Boost error codes alike, and the names
// that carry errors across processes.
#include <catch2/catch.hpp>

#include <boost/system/error_code.hpp>

#include "raftkit/error.hpp"

using namespace raftkit;

TEST_CASE("outcome: refusals are not done, timeouts and failures are unknown, no error is done", "[outcome]") {
  CHECK(outcome(std::error_code{}) == RequestOutcome::done);
  for (errc e : {errc::not_leader, errc::busy, errc::dropped, errc::too_large, errc::invalid_argument,
                 errc::unavailable, errc::no_space})
    CHECK(outcome(e) == RequestOutcome::not_done);
  for (errc e : {errc::timeout, errc::shutting_down, errc::io_error, errc::corrupted, errc::locked,
                 errc::compacted, errc::cluster_mismatch, errc::protocol_error})
    CHECK(outcome(e) == RequestOutcome::unknown);
  CHECK(outcome(std::make_error_code(std::errc::connection_reset)) == RequestOutcome::unknown);
}

TEST_CASE("outcome: a Boost error code from a completion handler classifies as its raftkit value", "[outcome]") {
  const boost::system::error_code busy{std::error_code(errc::busy)};
  CHECK(outcome(busy) == RequestOutcome::not_done);
  const boost::system::error_code late{std::error_code(errc::timeout)};
  CHECK(outcome(late) == RequestOutcome::unknown);
}

TEST_CASE("outcome: error names round-trip; an unknown name is an unknown outcome", "[outcome]") {
  for (int v = static_cast<int>(errc::not_leader); v <= static_cast<int>(errc::protocol_error); ++v) {
    const std::error_code ec = make_error_code(static_cast<errc>(v));
    CHECK(error_from_name(error_name(ec)) == ec);
  }
  CHECK(outcome(error_from_name("permission_denied")) == RequestOutcome::unknown);
}

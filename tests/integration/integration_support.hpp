// integration_support.hpp — what every real-process test shares: timeouts
// stretched for slow (sanitized) builds, the servers' last output lines for
// a failure message, and a check that no server reported a sanitizer error.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "local_cluster.hpp"

#ifndef RAFTKIT_TIMEOUT_SCALE_DEFAULT
#define RAFTKIT_TIMEOUT_SCALE_DEFAULT 1
#endif

namespace raftkit::integration {

/// RAFTKIT_TIMEOUT_SCALE (environment, at least 1) multiplies every
/// timeout; sanitizer builds default to 3 (RAFTKIT_TIMEOUT_SCALE_DEFAULT).
inline double scale() {
  static const double s = [] {
    if (const char* e = std::getenv("RAFTKIT_TIMEOUT_SCALE")) {
      double v = std::atof(e);
      if (v >= 1) return v;
    }
    return double{RAFTKIT_TIMEOUT_SCALE_DEFAULT};
  }();
  return s;
}

/// `ms` milliseconds, scaled.
inline std::chrono::milliseconds T(int ms) {
  return std::chrono::milliseconds(static_cast<long long>(ms * scale()));
}

/// A writing client's options: each attempt outlasts the servers' request
/// timeout, the whole call a failover.
inline counter::ClientOptions client_options(const counter::LocalCluster& c) {
  counter::ClientOptions o = c.client_options("writer");
  o.connect_timeout = T(500);
  o.attempt_timeout = T(2500);
  o.call_timeout = T(10000);
  return o;
}

/// Starts node `id` and waits until it is ready; fails the test with the
/// reason otherwise.
inline void start_node(counter::LocalCluster& c, std::uint64_t id) {
  std::string err;
  const bool ok = c.start(id, T(15000), err);
  INFO(err);
  REQUIRE(ok);
}

/// The last 25 output lines of every server, for a failure message.
inline std::string outputs(const counter::LocalCluster& c) {
  std::string s;
  for (auto id : c.ids()) s += c.output_tail(id, 25);
  return s;
}

/// At the end of a test: no server printed a sanitizer report.
struct NoSanitizerReports {
  const counter::LocalCluster& c;
  ~NoSanitizerReports() {
    INFO(outputs(c));
    CHECK(c.sanitizer_reports() == 0);
  }
};

}  // namespace raftkit::integration

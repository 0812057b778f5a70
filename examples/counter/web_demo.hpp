// web_demo.hpp — `raftkit-counter-demo --web` (`scripts/demo.sh --web`): the
// 3-node cluster of real server processes under a continuous increment load,
// watched and driven from one page in a browser.
//
// The demo polls every node's status (role, term, commit, applied and last
// index, counter) ten times a second, computes the increments per second,
// and keeps a timeline of leader changes: when a node is killed or paused
// while it leads, the time from that signal to the first poll that sees a
// leader of a newer term is its failover time, and the time to the first
// increment another node acknowledged is when writes resumed.
//
// It serves, on 127.0.0.1 only:
//   GET  /                    the page (HTML and JS inline, no external asset)
//   GET  /api/state           the JSON the page polls (web_demo.cpp: state_json)
//   POST /api/node/<id>/<verb> kill (SIGKILL), pause (SIGSTOP), resume
//                             (SIGCONT) or restart a node; 202 once queued
// Every request must come from a loopback address with a Host header naming
// this port on 127.0.0.1 or localhost (a DNS-rebinding page cannot read or
// drive it). A POST must also carry the run's random token in the
// X-Raftkit-Token header (the page holds it; another site's page can neither
// read it nor send a custom header without a CORS preflight, which is not
// answered) and, if it has an Origin header, this page's origin. The page
// refuses to be framed (no clickjacking of its buttons).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/io_context.hpp>

#include "local_cluster.hpp"

namespace raftkit::counter {

struct WebDemoOptions {
  /// The page's port on 127.0.0.1; 0: any free port (printed).
  std::uint16_t port = 8090;
  /// Concurrent clients incrementing the counter.
  int clients = 2;
};

/// Starts `cluster` (constructed, not started) and the load, serves the page
/// and prints its URL, then runs `io` until it is stopped (io.stop() from
/// another thread: Ctrl-C). Returns the process's exit code.
int run_web_demo(LocalCluster& cluster, const WebDemoOptions& options, boost::asio::io_context& io);

/// The page (web_page.cpp), with the run's token for its POST requests.
std::string web_demo_page(const std::string& token);

}  // namespace raftkit::counter

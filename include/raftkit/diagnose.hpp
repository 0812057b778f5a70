// raftkit/diagnose.hpp — why a node knows no leader, in one line, from its
// NodeStatus alone (no Asio, no clock: the status carries the time it
// describes, NodeStatus::now). What the examples' /raft page and
// `raftkit-counter status` print.
//
// THE RULE, first match wins:
//   - the node stopped: "stopped: <why>";
//   - it has not started: "starting: the node is not running yet";
//   - its disk is full (NodeStatus::disk_full_since), whether or not it
//     knows a leader, since it cannot follow one (it acknowledges nothing
//     it has not written): "disk full for 12 s: log writes fail with
//     no_space; this node refuses writes and neither leads, votes nor
//     acknowledges until space is freed (it retries by itself)";
//   - it knows a leader (or leads): "" (nothing to explain);
//   - a log write has been in flight longer than disk_stall_timeout:
//     "disk stalled for 3 s: a log write has not finished";
//   - no configuration names it: "not a member yet: waiting for a leader to
//     add this node";
//   - it came back with an empty log under its id (NodeStatus::replacing):
//     "replacing its lost log: waiting for a leader to swap this node in";
//   - the voters it heard from within contact_timeout (itself included, if
//     a voter) are no majority, in either half of a joint configuration:
//     "no quorum: nodes 2 and 3 unreachable for 12 s" (the time since the
//     most recent of them was heard, or since this node started if none
//     was: "... not heard from since this node started 12 s ago");
//   - it is a learner or staging: "not a voter: waiting to hear from the
//     leader (term 4)";
//   - otherwise a majority is reachable and an election is under way:
//     "electing: a majority is reachable, no leader yet in term 4".
//
// The contacts are only in a status with its lists (Node::status() has
// them; runtime::Driver::status(true)).
#pragma once

#include <chrono>
#include <string>

#include "raftkit/status.hpp"

namespace raftkit {

/// One line saying why `status` shows no leader (see the file comment);
/// empty when the node knows a leader or is one (and its disk is not full).
std::string diagnose(const NodeStatus& status);

/// "450 ms" under a second, "12 s" above (whole seconds, rounded down).
std::string duration_text(std::chrono::nanoseconds d);

}  // namespace raftkit

// runtime/planted_bugs.hpp — the driver's deliberate bugs, a set of their
// own beside the protocol's (core/planted_bugs.hpp), and both together as
// the simulator and the in-memory test cluster plant them in every node.
//
// As for the core's: Driver::plant_bugs() and its field exist only in a build
// configured with RAFTKIT_PLANTED_BUGS; elsewhere Driver::planted(b) is a
// consteval `false` and the branches it guards compile to nothing.
#pragma once

#include "core/planted_bugs.hpp"

namespace raftkit::runtime {

/// Deliberate runtime bugs. Never switched on in a real node.
enum DriverBug : unsigned {
  bug_proposals_by_index_only = 1u << 0,  ///< a proposal at an index an older one holds is never completed
  bug_drop_missed_ticks = 1u << 1,        ///< a late timer counts as one tick, whatever the elapsed time
  bug_config_on_unwritten_commit = 1u << 2,  ///< a configuration is applied before its commit index is durable
  bug_drop_on_collision = 1u << 3,        ///< a proposal at an index an older one holds completes the
                                          ///< older with `dropped` at once (hole B)
  bug_snapshot_keeps_identity = 1u << 4,  ///< an empty log beside a surviving snapshot restarts as the
                                          ///< bootstrap incarnation (hole D)
  bug_ack_failed_write = 1u << 5,         ///< a log write refused with no_space counts as done: its
                                          ///< acknowledgements leave for entries the store lacks
  bug_hear_only_members = 1u << 6,        ///< the transport hears only the nodes its configuration names,
                                          ///< as the TCP transport did (hole G; planted where the transport
                                          ///< is modelled: the simulator's network)
};
using DriverBugs = core::BugSet<DriverBug>;

/// The protocol's and the driver's bugs planted in one node. One bug of
/// either kind is a set of one.
struct PlantedBugs {
  core::ProtocolBugs protocol;
  DriverBugs driver;

  constexpr PlantedBugs() = default;
  constexpr PlantedBugs(core::ProtocolBugs p, DriverBugs d) : protocol(p), driver(d) {}
  constexpr PlantedBugs(core::ProtocolBug b) : protocol(b) {}  // NOLINT(google-explicit-constructor)
  constexpr PlantedBugs(DriverBug b) : driver(b) {}             // NOLINT(google-explicit-constructor)

  constexpr bool empty() const { return protocol.empty() && driver.empty(); }
  constexpr bool contains(const PlantedBugs& other) const {
    return protocol.contains(other.protocol) && driver.contains(other.driver);
  }
  constexpr PlantedBugs& operator|=(const PlantedBugs& other) {
    protocol |= other.protocol;
    driver |= other.driver;
    return *this;
  }
  friend constexpr bool operator==(const PlantedBugs&, const PlantedBugs&) = default;
};

}  // namespace raftkit::runtime

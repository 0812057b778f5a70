// sim/config.hpp — what a simulated run is given and what it reports.
//
// A run is fully described by a SimConfig: the seed, the cluster size, the
// enabled fault kinds, the deliberately injected protocol bugs (checker tests
// only) and the virtual duration. replay_command() turns a config back into
// the raftkit-sim command line that repeats it event for event.
//
// Fault kinds are named on the command line (`--faults loss,crash`); adding a
// kind means adding it to the enum, to kFaultNames, and teaching the nemesis
// (Nemesis::inject_fault in nemesis.cpp) how to inject and heal it.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runtime/planted_bugs.hpp"

namespace raftkit::sim {

/// Virtual time in microseconds since the start of a run.
using Time = std::int64_t;
inline constexpr Time kMillis = 1000;
inline constexpr Time kSeconds = 1000 * kMillis;

enum class Fault : std::uint8_t {
  loss,       ///< messages dropped on some links
  duplicate,  ///< messages delivered twice
  reorder,    ///< delay spikes on some links, so later messages overtake
  partition,  ///< symmetric partitions (a node or a minority cut off, or one link both ways)
  oneway,     ///< one-way link cuts (a hears b, b does not hear a)
  crash,      ///< crash and restart, losing what was not synced
  disk,       ///< storage write or sync errors (the node stops), a hanging sync, a full disk for a while
  drift,      ///< per-node clock-rate drift (ticks run fast or slow)
  transfer,   ///< leadership transfers requested at random moments
  stall,      ///< a node's thread is busy for a while (its events wait)
  membership, ///< the leader adds, removes or replaces a server (spare nodes wait to be added)
  wipe,       ///< a node loses its disk (its log, its snapshots, or both) and restarts under its old id
  hold,       ///< some messages are held for one to four election timeouts: a vote request delayed past an
              ///< election, a message of a node's previous incarnation (or to it) reaching its next one
};
inline constexpr std::size_t kFaultKinds = 13;
inline constexpr std::array<std::string_view, kFaultKinds> kFaultNames = {
    "loss", "dup", "reorder", "partition", "oneway", "crash", "disk", "drift", "transfer", "stall", "membership",
    "wipe", "hold"};

/// A set of fault kinds, one bit per Fault.
using FaultSet = unsigned;
inline constexpr FaultSet kAllFaults = (1u << kFaultKinds) - 1;
inline constexpr bool has(FaultSet s, Fault f) { return (s >> static_cast<unsigned>(f)) & 1u; }

/// "all", "none", or a comma-separated list of kFaultNames. nullopt (and a
/// message in `error`) for an unknown name.
std::optional<FaultSet> parse_faults(std::string_view text, std::string* error);
/// The canonical spelling: "all", "none", or the list.
std::string format_faults(FaultSet faults);

/// Whether this build has planted bugs (CMake option RAFTKIT_PLANTED_BUGS).
#ifdef RAFTKIT_PLANTED_BUGS
inline constexpr bool kPlantedBugs = true;
#else
inline constexpr bool kPlantedBugs = false;
#endif
/// What a tool says when asked for a planted bug in a build without them.
inline constexpr std::string_view kNoPlantedBugs =
    "this build has no planted bugs (configure with -DRAFTKIT_PLANTED_BUGS=ON)";

/// "none" or a comma-separated list of core::ProtocolBug and
/// runtime::DriverBug names without the "bug_" prefix (commit_previous_term,
/// vote_ignores_log, proposals_by_index_only, ...). Anything but "none" is an
/// error (kNoPlantedBugs) in a build without planted bugs.
std::optional<runtime::PlantedBugs> parse_bugs(std::string_view text, std::string* error);
std::string format_bugs(const runtime::PlantedBugs& bugs);
/// Each planted bug (a set of one) with its name.
std::vector<std::pair<runtime::PlantedBugs, std::string_view>> all_bugs();

struct SimConfig {
  std::uint64_t seed = 1;
  /// Cluster size 1..7; 0 draws it from the seed.
  int nodes = 3;
  FaultSet faults = kAllFaults;
  /// Deliberate bugs switched on in every node (checker tests only; always
  /// none in a build without planted bugs).
  runtime::PlantedBugs bugs;
  /// Virtual length of the run.
  Time duration = 30 * kSeconds;
  /// Concurrent simulated clients.
  int clients = 4;
  /// Check the client histories for linearizability at the end of the run.
  bool check_linearizability = true;
  /// Seeds that run the real WAL run it as one group of a shared log
  /// (storage/shared_log.hpp) beside a neighbour group (see sim_store.hpp).
  bool shared_log = false;
  /// storage::SharedLogBug bits planted in those shared logs (checker tests
  /// only; no effect in a build without planted bugs).
  unsigned shared_log_bugs = 0;
  /// When set, receives every event of the run as a readable line.
  std::function<void(std::string_view)> verbose;
};

struct RunStats {
  std::uint64_t runs = 0;
  Time simulated = 0;          ///< virtual time covered
  std::uint64_t events = 0;    ///< events processed
  std::uint64_t elections = 0; ///< leaders elected (distinct terms)
  std::uint64_t commits = 0;   ///< distinct log entries committed
  std::uint64_t snapshots_taken = 0;      ///< state-machine snapshots made durable
  std::uint64_t snapshots_installed = 0;  ///< snapshots received from a leader and loaded
  std::uint64_t requests = 0;             ///< proposals, reads and transfers checked by the caller checker
  std::uint64_t membership_changes = 0;   ///< membership changes that completed (add, remove, replace)
  std::array<std::uint64_t, kFaultKinds> faults{};
  std::uint64_t ops_checked = 0;   ///< client operations in checked histories
  std::uint64_t ops_unknown = 0;   ///< ... of which with unknown outcome
  std::uint64_t lin_gave_up = 0;   ///< histories the checker could not decide
  std::uint64_t violations = 0;

  void add(const RunStats& o);
};

struct Violation {
  std::string kind;    ///< "election safety", "linearizability", "liveness", ...
  std::string what;    ///< the details
  Time at = 0;
  std::vector<std::string> recent_events;  ///< the last events before it, readable
};

struct RunResult {
  SimConfig config;
  RunStats stats;
  std::optional<Violation> violation;
  std::uint64_t trace_hash = 0;  ///< hash of every event of the run, in order
};

/// The command that replays `c` with every event printed.
std::string replay_command(const SimConfig& c);
/// A multi-line report: what broke, when, the replay command, the last events.
std::string format_violation(const RunResult& r);
std::string format_time(Time t);

}  // namespace raftkit::sim

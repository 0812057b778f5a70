// sim/world.hpp — what every part of the simulator shares: virtual time,
// the one event queue, the one random generator, the trace, the safety
// checker, the statistics and the first violation.
//
// TIME AND ORDER. Everything that happens is an Event in one priority queue
// ordered by (virtual time, sequence number) — never by pointer or hash
// order — and every random choice comes from one Rng seeded by the seed. A
// run is therefore a pure function of its SimConfig; the Trace hashes every
// event so tests can prove it. Each event is a named struct (namespace ev):
// who it is for and what it carries, nothing else.
#pragma once

#include <cstdint>
#include <optional>
#include <queue>
#include <string>
#include <variant>
#include <vector>

#include "sim/checker.hpp"
#include "sim/config.hpp"
#include "sim/rng.hpp"
#include "sim/trace.hpp"

namespace raftkit::sim {

/// Timing of the simulated world. Defaults resemble a LAN with SSDs and
/// etcd-like protocol settings scaled to a 50 ms tick.
struct Tuning {
  Time tick = 50 * kMillis;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  Time link_delay_min = 200, link_delay_max = 2 * kMillis;  ///< per-link base delay
  Time client_delay_min = 100, client_delay_max = 1 * kMillis;
  Time sync_min = 200, sync_max = 3 * kMillis;  ///< fsync latency
  double slow_sync_chance = 0.05;               ///< ... sometimes 10-60 ms
  Time client_think_mean = 60 * kMillis;
  Time client_timeout = 1500 * kMillis;
  Time request_timeout = 1000 * kMillis;  ///< Options::request_timeout of every node
  Time chaos_min = 3 * kSeconds, chaos_max = 8 * kSeconds;
  Time fault_interval_mean = 500 * kMillis;
  int liveness_election_timeouts = 10;
  Time election_timeout() const { return tick * election_ticks; }
};

/// What one seed drew for the whole run (see Simulator's constructor).
struct SeedProfile {
  bool use_codec = false;    ///< messages go through the wire codec
  bool lease_reads = false;  ///< leaders serve reads from their lease
  double max_drift = 0;      ///< clock rates stay within 1 ± this on lease seeds
  int liveness_timeouts = 10;  ///< election timeouts a heal has to show a commit
};

/// Events. `node` is a node's index; `gen` its generation when the event
/// was scheduled (an event for an earlier life of the node is ignored).
/// None is larger than 16 bytes, so that a queued Event takes 40.
namespace ev {
struct Tick { std::size_t node; std::uint64_t gen; };
struct Deliver { std::size_t to; std::uint32_t slot; };  ///< a pooled Message (Network)
struct SyncDone { std::size_t node; std::uint64_t gen; };
struct PowerCut { std::uint32_t node; bool quick_restart; std::uint64_t gen; };
struct Restart { std::size_t node; std::uint64_t gen; };
struct Poll { std::size_t node; std::uint64_t gen; };  ///< deferred proposals go out
struct Unreachable { std::uint32_t node, peer; std::uint64_t gen; };  ///< peer: its NodeId's value
struct ClientArrive { std::size_t node; std::uint32_t slot; };  ///< a pooled request (Clients)
struct ClientReply { std::uint32_t slot; };                      ///< a pooled answer (Clients)
struct ClientTimeout { int client; std::uint64_t op; };
struct ClientNext { int client; };
struct PhaseStart {};
struct PhaseEnd {};
struct Nemesis {};
struct Revert { std::uint64_t id; };
struct Probe {};
struct LivenessDeadline { Time healed_at; };
struct StreamDeliver { std::size_t to; std::uint32_t slot; };  ///< a pooled chunk or ack (Network)
/// A snapshot transfer's stall timer (SnapshotStreams).
struct StreamStallCheck { std::uint16_t node, to; std::uint32_t transfer; std::uint64_t gen; };
struct StreamExpire { std::size_t node; std::uint64_t gen; };  ///< a partial snapshot's timer
}  // namespace ev

using EventBody = std::variant<ev::Tick, ev::Deliver, ev::SyncDone, ev::PowerCut, ev::Restart, ev::Poll,
                               ev::Unreachable, ev::ClientArrive, ev::ClientReply,
                               ev::ClientTimeout, ev::ClientNext, ev::PhaseStart, ev::PhaseEnd, ev::Nemesis,
                               ev::Revert, ev::Probe, ev::LivenessDeadline, ev::StreamDeliver,
                               ev::StreamStallCheck, ev::StreamExpire>;

struct Event {
  Time at;
  std::uint64_t seq;
  EventBody body;
};
static_assert(sizeof(Event) <= 40);

class World {
 public:
  World(SimConfig config, Tuning tuning, std::size_t nodes)
      : config(std::move(config)), tuning(tuning), rng(this->config.seed * 0x2545F4914F6CDD1DULL + 7),
        checker(nodes) {}

  void schedule(Time at, const EventBody& body) { queue_.push(Event{at, seq_++, body}); }
  bool has_events() const { return !queue_.empty(); }
  const Event& next_event() const { return queue_.top(); }
  void pop_event() { queue_.pop(); }
  std::size_t queued() const { return queue_.size(); }

  void trace(const TraceEvent& e) {
    trace_.record(now, e);
    if (config.verbose) config.verbose(format_event(now, e));
  }
  std::uint64_t trace_hash() const { return trace_.hash(); }

  /// Records the first violation (later ones are ignored): the run stops.
  void fail(std::string kind, std::string what) {
    if (violation) return;
    violation = Violation{std::move(kind), std::move(what), now, trace_.recent(30)};
  }
  bool failed() const { return violation.has_value(); }

  const SimConfig config;
  const Tuning tuning;
  SeedProfile profile;
  Rng rng;
  Time now = 0;
  SafetyChecker checker;
  RunStats stats;
  std::optional<Violation> violation;

 private:
  struct Later {
    bool operator()(const Event& a, const Event& b) const { return a.at != b.at ? a.at > b.at : a.seq > b.seq; }
  };
  std::priority_queue<Event, std::vector<Event>, Later> queue_;
  std::uint64_t seq_ = 0;
  Trace trace_;
};

}  // namespace raftkit::sim

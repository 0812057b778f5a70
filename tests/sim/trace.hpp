// sim/trace.hpp — the record of a run: a hash of every event, and the last
// few events in a form a person can read.
//
// Every event is a named struct (traced::Tick, traced::Crash, ...; node
// numbers are 0-based indexes, printed 1-based). Formatting every event
// would dominate the simulator's cost, so an event is folded into a running
// hash (the determinism tests compare these hashes across runs of one seed)
// and kept in a ring buffer of the last kKeep events; only when a violation
// is reported (or --verbose asks for every event) are events turned into
// text.
//
// THE HASH. Each event is hashed as eight words: its TraceKind, node, peer,
// message type and four kind-specific numbers (pack() in trace.cpp says
// which field goes where). The layout is the one older versions of the
// simulator hashed, so that a refactoring can prove it changed nothing.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "core/raft.hpp"
#include <variant>

#include "raftkit/message.hpp"
#include "transport/codec.hpp"
#include "sim/config.hpp"
#include "sim/workload.hpp"

namespace raftkit::sim {

/// The kind number each event is hashed under (several structs share one).
enum class TraceKind : std::uint8_t {
  tick, deliver, drop, send /* unused, keeps the numbers */, ready, sync_done, role, crash, restart, storage_error, fault, heal, client_call,
  client_done, client_timeout, liveness, snapshot, chunk, chunk_ack, stream_end,
};

namespace traced {

/// A message as the network saw it.
struct MessageSummary {
  NodeId from, to;
  MessageType type = MessageType::append;
  Term term;
  Index index;
  Index commit;
  std::uint32_t entries = 0;
  bool reject = false;
};
MessageSummary summarize(const Message& m);

struct Tick { std::size_t node; Term term; core::Role role; };
struct Delivered { MessageSummary message; };
struct Dropped { MessageSummary message; };  ///< lost, cut, or its target is down
struct Ready { std::size_t node; std::size_t entries, messages, committed; Index commit; };
struct Synced { std::size_t node; Index last_index; Index commit; bool failed; };
struct RoleChanged { std::size_t node; Term term; core::Role role; Index last_index; Index commit; };
struct Crash { std::size_t node; std::size_t unsynced_kept, unsynced_lost; };
struct Stopped { std::size_t node; };                ///< a clean shutdown (Node::stop)
struct Wiped { std::size_t node; bool log_only; };  ///< log_only: the snapshots survived
struct Restarted { std::size_t node; Term term; Index last_index; Index commit; };
struct StartFailed { std::size_t node; };                  ///< the disk failed during start-up
struct WriteFailed { std::size_t node; std::uint64_t write; };  ///< a write or sync failed: the node stops

// Faults (hashed as TraceKind::fault).
/// A fault of any kind was drawn against `victim`; what it did is traced
/// separately (membership, wipe) or not at all (no leader, no safe victim).
struct FaultDrawn { Fault fault; std::size_t victim; };
/// loss, duplicate, reorder (delay spikes) or hold on `links` links.
struct LinkFault { Fault fault; std::size_t victim; std::uint64_t percent; std::size_t links; };
struct Partition { std::size_t victim; std::size_t links; };
enum class OneWay : std::uint8_t {
  unheard,          ///< nobody hears the victim
  deaf,             ///< the victim hears nobody
  one_link,         ///< one link out of the victim
  next_leader,      ///< the next leader loses its outgoing links (armed)
  after_timeout_now ///< the old leader stops hearing anyone as a transfer starts
};
struct OneWayCut { std::size_t victim; OneWay shape; };
/// crash: roll 0-3 crash now, 4-7 at the next sync, 8-9 several nodes at
/// their next sync, 10-11 a clean stop.
struct CrashFault { std::size_t victim; std::uint64_t roll; };
enum class DiskFault : std::uint8_t { fail_write, fail_sync, slow_sync, full };
struct Disk { std::size_t victim; DiskFault shape; };
struct Stall { std::size_t victim; Time millis; std::size_t links_cut; };
struct Drift { std::size_t victim; std::uint64_t rate_percent; };
/// victim: the node the fault drew (hashed, otherwise unused).
struct Transfer { std::size_t victim; std::size_t to; };
/// roll: 0-2 add a server, 3 add a learner, 4 replace, 5-7 remove (7: the leader).
struct MembershipChange { std::size_t leader; std::uint64_t roll; std::size_t target; };

struct Healed { bool all; };  ///< all: the end of a chaos phase, else one fault's time ran out
struct ClientCall { int client; std::size_t node; std::uint64_t op; OpKind kind; std::int64_t arg; bool via_log; };
struct ClientDone { int client; std::size_t node; std::uint64_t op; OpStatus status; OpOutput output; };
struct ClientTimeout { int client; std::uint64_t op; };
struct LivenessShown {};  ///< a write committed after the heal
struct SnapshotTaken { std::size_t node; Index index; };
struct SnapshotLoaded { std::size_t node; Index index; };

// Snapshot streams (snapshot_streams.hpp), on arrival or when dropped.
struct Chunk { std::size_t from, to; std::uint64_t transfer, offset, length; bool dropped; };
struct ChunkAck { std::size_t from, to; std::uint64_t transfer, received; transport::SnapshotAck::Status status; bool dropped; };
struct StreamEnded { std::size_t from, to; std::uint64_t transfer; bool delivered; };

}  // namespace traced

using TraceEvent =
    std::variant<traced::Tick, traced::Delivered, traced::Dropped, traced::Ready, traced::Synced,
                 traced::RoleChanged, traced::Crash, traced::Stopped, traced::Wiped, traced::Restarted,
                 traced::StartFailed, traced::WriteFailed, traced::FaultDrawn, traced::LinkFault, traced::Partition,
                 traced::OneWayCut, traced::CrashFault, traced::Disk, traced::Stall, traced::Drift, traced::Transfer,
                 traced::MembershipChange, traced::Healed, traced::ClientCall, traced::ClientDone,
                 traced::ClientTimeout, traced::LivenessShown, traced::SnapshotTaken, traced::SnapshotLoaded,
                 traced::Chunk, traced::ChunkAck, traced::StreamEnded>;

std::string format_event(Time at, const TraceEvent& e);

namespace traced {
/// A stream's chunk or acknowledgement from `from` to `to`.
TraceEvent summarize(std::size_t from, std::size_t to,
                     const std::variant<transport::SnapshotChunk, transport::SnapshotAck>& packet, bool dropped);
}

class Trace {
 public:
  static constexpr std::size_t kKeep = 40;

  void record(Time at, const TraceEvent& e);
  std::uint64_t hash() const { return hash_; }
  std::uint64_t count() const { return count_; }
  /// The last (up to) n events, oldest first, formatted.
  std::vector<std::string> recent(std::size_t n = 30) const;

 private:
  struct Kept {
    Time at = 0;
    TraceEvent event;
  };
  std::uint64_t hash_ = 0xCBF29CE484222325ULL;
  std::uint64_t count_ = 0;
  std::array<Kept, kKeep> ring_{};
};

}  // namespace raftkit::sim

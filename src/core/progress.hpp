// core/progress.hpp — what the leader knows about each follower.
//
// A follower's Progress moves between three states (etcd's design):
//
//        ┌──── reject / unreachable ───┐
//        ▼                              │
//     probe ── append acknowledged ──▶ replicate ◀── append acknowledged,
//        │      (even one equal to match)            servable from the log ──┐
//        │                                                                    │
//        └── next < first index ──▶ snapshot ── snapshot answered / reported ─┴─▶ probe
//                                             (report_snapshot, or the fallback timer)
//
//   probe:     the leader does not know where the follower's log ends; it
//              sends one append per heartbeat interval and waits for the
//              answer (`probe_sent` pauses it; a heartbeat answer unpauses
//              it, so even a caught-up follower in probe is probed and
//              returns to replicate).
//   replicate: the follower is in sync; the leader streams appends
//              optimistically (next advances at send time) within an
//              inflight window bounded in messages and in bytes. A full
//              window is kept: each heartbeat answer sends one empty append
//              at its end, whose answer frees it or shows the appends lost.
//   snapshot:  the follower needs a snapshot; nothing else is sent until the
//              follower answers, the runtime reports the snapshot's fate, or
//              an append acknowledgement shows the log can serve it.
//
// match_index only grows (a follower never loses an acknowledged entry,
// unless it lost its disk — which makes it a new incarnation, a different
// server as far as Raft knows: restart_as() starts its progress afresh).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string_view>

#include "core/fifo.hpp"
#include "raftkit/types.hpp"

namespace raftkit::core {

enum class ProgressState : std::uint8_t { probe, replicate, snapshot };
std::string_view to_string(ProgressState s);

/// The appends sent to one follower and not yet acknowledged, oldest first.
class Inflights {
  friend struct RaftInspector;  // raftkit-explore's state hash (see Raft)

 public:
  Inflights(std::size_t max_messages, std::size_t max_bytes) : max_messages_(max_messages), max_bytes_(max_bytes) {}
  void add(Index last, std::size_t bytes);
  /// Frees every append whose last index is <= `index`.
  void free_to(Index index);
  void reset();
  bool full() const { return sent_.size() >= max_messages_ || bytes_ >= max_bytes_; }
  std::size_t count() const { return sent_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  struct Sent {
    Index last;
    std::size_t bytes;
  };
  Fifo<Sent> sent_;
  std::size_t bytes_ = 0;
  std::size_t max_messages_;
  std::size_t max_bytes_;
};

struct Progress {
  Progress(Index next, std::size_t max_inflight_messages, std::size_t max_inflight_bytes)
      : next(next), inflights(max_inflight_messages, max_inflight_bytes) {}

  Index match;  ///< highest index known to be replicated on the follower
  Index next;   ///< index of the next entry to send
  ProgressState state = ProgressState::probe;
  bool probe_sent = false;    ///< probe: an append is outstanding
  bool append_held = false;   ///< replicate: an append was held back to batch it (ProtocolOptions::batch_appends)
  Index pending_snapshot;     ///< snapshot: the index being sent
  int snapshot_ticks = 0;     ///< snapshot: ticks since it was sent (a lost one is resent)
  bool recent_active = false;  ///< heard from since the last check-quorum
  std::uint64_t heard_at = 0;  ///< leader's tick count when it last heard from the follower
  bool learner = false;
  /// Which run of appends is current: bumped each time `next` restarts
  /// (probe, replicate, snapshot). Every append carries it in `context` and
  /// its answer echoes it, so a rejection of an append sent before the last
  /// restart (late, or of a window already given up) restarts nothing: the
  /// Transport may reorder, and a window delivered out of order is rejected
  /// many times over (see Raft::handle_append_response).
  std::uint64_t stream = 1;
  /// The incarnation of the follower this progress describes (the one that
  /// spoke last; see Raft::step_leader). Its match counts toward a commit
  /// only where the configuration names this incarnation.
  std::uint64_t incarnation = 0;
  Inflights inflights;

  void become_probe();
  void become_replicate();
  void become_snapshot(Index snapshot_index);
  /// The follower acknowledged entries up to `n`; returns true if match grew.
  bool maybe_update(Index n);
  /// Records an append of entries up to `last` sent in replicate state.
  void sent_entries(Index last, std::size_t bytes);
  /// The follower rejected an append at `rejected`; `hint` is where to
  /// retry from. Returns false if the rejection is stale.
  bool maybe_decrease_to(Index rejected, Index hint);
  /// Another incarnation of the follower spoke: nothing the previous one
  /// acknowledged holds for it. Match drops to 0 and replication probes
  /// again from the start (the answer says where its log ends).
  void restart_as(std::uint64_t incarnation);
  /// No new append should be sent now.
  bool paused() const;
};

/// Progress of every member (self included), keyed by id, ordered so that
/// iteration — and hence message order — is deterministic.
using ProgressMap = std::map<NodeId, Progress>;

class ProgressTracker {
 public:
  ProgressMap& map() { return map_; }
  const ProgressMap& map() const { return map_; }
  Progress* find(NodeId id) {
    auto it = map_.find(id);
    return it == map_.end() ? nullptr : &it->second;
  }
  const Progress* find(NodeId id) const {
    auto it = map_.find(id);
    return it == map_.end() ? nullptr : &it->second;
  }

 private:
  ProgressMap map_;
};

}  // namespace raftkit::core

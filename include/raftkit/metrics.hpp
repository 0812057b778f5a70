// raftkit/metrics.hpp — what a node counts, and how a service reads it.
//
// A node keeps one MetricsRegistry. The runtime updates it as things happen
// (a proposal arrives, an entry commits, a log write finishes, bytes leave
// on the wire); the service reads a MetricsSnapshot through
// Node::metrics() whenever it likes — to export it, to alert on it, to draw
// it — and to_prometheus() turns a snapshot into the Prometheus text
// exposition format for a /metrics endpoint.
//
// Three kinds of value, as Prometheus names them:
//   counter    only grows while the process lives (restarts begin at 0;
//              Prometheus' rate() copes with that): things that happened
//   gauge      goes up and down: the current term, requests waiting now
//   histogram  a distribution: latencies and sizes, in fixed log-scale
//              buckets (powers of two), so recording is one atomic add and
//              no configuration is needed. Bucket i holds the values v with
//              2^(i-1) < v <= 2^i (bucket 0: v <= 1), the last bucket every
//              value above 2^(kBuckets-2). Latencies are recorded in
//              microseconds (1 µs .. 2^35 µs ≈ 9.5 h), sizes in bytes
//              (1 B .. 32 GiB); exported in seconds and bytes.
//
// Updating is lock-free (relaxed atomics), from any thread: the strand, the
// disk thread and the transport all write to the same registry. Reading a
// snapshot is not one consistent cut: each value is exact, but two values
// may straddle an update (proposals_committed may be read just before
// proposals_received counts the proposal that committed). A histogram's
// count is the sum of its buckets, so count and buckets always agree.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>

#include "raftkit/types.hpp"

namespace raftkit {

/// A point-in-time copy of one histogram.
struct HistogramSnapshot {
  /// Number of buckets: kBuckets - 1 finite ones (upper bounds 2^0 .. 2^35)
  /// and the last, unbounded one.
  static constexpr std::size_t kBuckets = 37;
  /// Inclusive upper bound of bucket i, in the recorded unit: 2^i, and
  /// UINT64_MAX (meaning +Inf) for the last bucket.
  static constexpr std::uint64_t upper_bound(std::size_t i) noexcept {
    return i + 1 >= kBuckets ? std::numeric_limits<std::uint64_t>::max() : std::uint64_t{1} << i;
  }
  /// The bucket a value falls in.
  static constexpr std::size_t bucket_of(std::uint64_t value) noexcept {
    if (value <= 1) return 0;
    const auto i = static_cast<std::size_t>(std::bit_width(value - 1));  // smallest i with value <= 2^i
    return i < kBuckets - 1 ? i : kBuckets - 1;
  }

  /// Values recorded in each bucket (not cumulative).
  std::array<std::uint64_t, kBuckets> buckets{};
  /// Number of values recorded (the sum of `buckets`).
  std::uint64_t count = 0;
  /// Sum of the values recorded, in the recorded unit (µs or bytes).
  std::uint64_t sum = 0;

  /// An estimate of quantile q (0..1) in the recorded unit: the upper bound
  /// of the bucket that holds it, so at most twice the true value. 0 when
  /// nothing was recorded.
  std::uint64_t quantile(double q) const noexcept;
};

/// Proposals that completed with an error, by the error's meaning.
struct ProposalFailures {
  std::uint64_t not_leader = 0;     ///< refused: this node does not lead
  std::uint64_t busy = 0;           ///< refused by flow control or max_pending_requests
  std::uint64_t too_large = 0;      ///< refused: larger than protocol.max_entry_bytes
  std::uint64_t dropped = 0;        ///< overwritten by another leader's entry
  std::uint64_t timeout = 0;        ///< not answered within request_timeout (outcome unknown)
  std::uint64_t shutting_down = 0;  ///< the node stopped first (outcome unknown)
  std::uint64_t storage = 0;        ///< the store failed (io_error, no_space)
  std::uint64_t other = 0;          ///< any other error
};

/// Everything a node counts, copied out of its MetricsRegistry. Counters
/// start at 0 when the process starts.
struct MetricsSnapshot {
  // Requests.
  std::uint64_t proposals_received = 0;   ///< counter: async_propose calls that reached the node
  std::uint64_t proposals_committed = 0;  ///< counter: proposals completed with success
  ProposalFailures proposals_failed;      ///< counters: proposals completed with an error
  std::uint64_t reads_received = 0;       ///< counter: async_read calls that reached the node
  std::uint64_t reads_failed = 0;         ///< counter: reads completed with an error
  std::uint64_t reads_stale = 0;          ///< counter: async_read_stale calls served (not linearizable)
  std::int64_t pending_requests = 0;      ///< gauge: proposals and reads waiting now

  // The log and the state machine.
  std::uint64_t entries_committed = 0;  ///< counter: entries this node learned are committed
  std::uint64_t entries_applied = 0;    ///< counter: entries applied to the state machine
  std::int64_t term = 0;                ///< gauge: current term
  std::int64_t commit_index = 0;        ///< gauge: highest index known committed
  std::int64_t applied_index = 0;       ///< gauge: highest index applied
  std::int64_t is_leader = 0;           ///< gauge: 1 while this node leads, else 0

  // Elections.
  std::uint64_t elections_started = 0;  ///< counter: campaigns this node started (real votes, not pre-votes)
  std::uint64_t elections_won = 0;      ///< counter: times this node became leader
  std::uint64_t leader_changes = 0;     ///< counter: times the leader this node knows changed (to a new id or to none)
  /// counter: on a leader, messages from another incarnation of a follower
  /// than the one it tracked (a node that lost its log, or a late message
  /// of its previous incarnation); each restarts that follower's progress
  std::uint64_t incarnation_changes = 0;

  // Storage.
  HistogramSnapshot log_append_us;  ///< histogram: one log write (Ready persisted), µs, without its fsync (log_fsync_us)
  HistogramSnapshot log_fsync_us;   ///< histogram: one fsync/fdatasync of the log, µs
  /// gauge: 1 while the disk is full (a log write was refused with
  /// no_space and no retry has succeeded yet), else 0
  std::int64_t disk_full = 0;
  /// counter: writes refused with no_space (log writes and their retries,
  /// snapshot saves)
  std::uint64_t no_space_writes = 0;

  // Snapshots.
  HistogramSnapshot snapshot_bytes;        ///< histogram: size of each snapshot saved, bytes
  HistogramSnapshot snapshot_save_us;      ///< histogram: time to serialise and save one snapshot (off the strand), µs
  HistogramSnapshot snapshot_capture_us;   ///< histogram: time the state machine's capture took on the strand, µs
  HistogramSnapshot snapshot_restore_us;   ///< histogram: time to restore the state machine from a snapshot, µs
  HistogramSnapshot snapshot_send_us;      ///< histogram: time to stream one snapshot to a follower, µs
  std::uint64_t snapshots_installed = 0;   ///< counter: snapshots received from a leader and loaded
  std::uint64_t snapshots_sent = 0;        ///< counter: snapshots a follower received whole (leader side)
  std::uint64_t snapshots_send_failed = 0; ///< counter: snapshot transfers that failed or were abandoned

  // Transport.
  std::uint64_t messages_sent = 0;      ///< counter: Raft messages handed to the transport
  std::uint64_t messages_received = 0;  ///< counter: Raft messages received from peers
  std::uint64_t bytes_sent = 0;         ///< counter: bytes written to peers (framing included)
  std::uint64_t bytes_received = 0;     ///< counter: bytes read from peers (framing included)
};

/// A monotonically growing count, safe to update from any thread. (Named
/// MetricCounter so that a service's own `Counter` state machine, with
/// `using namespace raftkit`, does not collide with it.)
class MetricCounter {
 public:
  /// Adds `n` (default 1).
  void add(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  /// The count so far.
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

/// A value that goes up and down, safe to update from any thread.
class MetricGauge {
 public:
  /// Replaces the value.
  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  /// Adds `n` (negative to subtract).
  void add(std::int64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  /// The current value.
  std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

/// A distribution in fixed power-of-two buckets (see HistogramSnapshot),
/// safe to update from any thread: one record() is two relaxed atomic adds.
class MetricHistogram {
 public:
  /// Records one value in the histogram's unit (bytes, or µs).
  void record(std::uint64_t value) noexcept {
    buckets_[HistogramSnapshot::bucket_of(value)].fetch_add(1, std::memory_order_relaxed);
    sum_.fetch_add(value, std::memory_order_relaxed);
  }
  /// Records a duration in microseconds (negative durations count as 0).
  template <class Rep, class Period>
  void record(std::chrono::duration<Rep, Period> d) noexcept {
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
    record(us > 0 ? static_cast<std::uint64_t>(us) : 0);
  }
  /// A copy of the buckets, count and sum.
  HistogramSnapshot snapshot() const noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, HistogramSnapshot::kBuckets> buckets_{};
  std::atomic<std::uint64_t> sum_{0};
};

/// The live metrics of one node. The runtime owns one and updates its
/// members where the events happen; every member may be updated from any
/// thread. Services read it through snapshot() (or Node::metrics()).
class MetricsRegistry {
 public:
  MetricCounter proposals_received;   ///< see MetricsSnapshot::proposals_received
  MetricCounter proposals_committed;  ///< see MetricsSnapshot::proposals_committed
  MetricCounter reads_received;       ///< see MetricsSnapshot::reads_received
  MetricCounter reads_failed;         ///< see MetricsSnapshot::reads_failed
  MetricCounter reads_stale;          ///< see MetricsSnapshot::reads_stale
  MetricGauge pending_requests;       ///< see MetricsSnapshot::pending_requests

  MetricCounter entries_committed;  ///< see MetricsSnapshot::entries_committed
  MetricCounter entries_applied;    ///< see MetricsSnapshot::entries_applied
  MetricGauge term;                 ///< see MetricsSnapshot::term
  MetricGauge commit_index;         ///< see MetricsSnapshot::commit_index
  MetricGauge applied_index;        ///< see MetricsSnapshot::applied_index
  MetricGauge is_leader;            ///< see MetricsSnapshot::is_leader

  MetricCounter elections_started;  ///< see MetricsSnapshot::elections_started
  MetricCounter elections_won;      ///< see MetricsSnapshot::elections_won
  MetricCounter leader_changes;     ///< see MetricsSnapshot::leader_changes
  MetricCounter incarnation_changes;  ///< see MetricsSnapshot::incarnation_changes

  MetricHistogram log_append_us;  ///< see MetricsSnapshot::log_append_us
  MetricHistogram log_fsync_us;   ///< see MetricsSnapshot::log_fsync_us
  MetricGauge disk_full;          ///< see MetricsSnapshot::disk_full
  MetricCounter no_space_writes;  ///< see MetricsSnapshot::no_space_writes

  MetricHistogram snapshot_bytes;     ///< see MetricsSnapshot::snapshot_bytes
  MetricHistogram snapshot_save_us;   ///< see MetricsSnapshot::snapshot_save_us
  MetricHistogram snapshot_capture_us;  ///< see MetricsSnapshot::snapshot_capture_us
  MetricHistogram snapshot_restore_us;  ///< see MetricsSnapshot::snapshot_restore_us
  MetricHistogram snapshot_send_us;     ///< see MetricsSnapshot::snapshot_send_us
  MetricCounter snapshots_installed;  ///< see MetricsSnapshot::snapshots_installed
  MetricCounter snapshots_sent;         ///< see MetricsSnapshot::snapshots_sent
  MetricCounter snapshots_send_failed;  ///< see MetricsSnapshot::snapshots_send_failed

  MetricCounter messages_sent;      ///< see MetricsSnapshot::messages_sent
  MetricCounter messages_received;  ///< see MetricsSnapshot::messages_received
  MetricCounter bytes_sent;         ///< see MetricsSnapshot::bytes_sent
  MetricCounter bytes_received;     ///< see MetricsSnapshot::bytes_received

  /// Counts a proposal that completed with `ec` under its reason in
  /// ProposalFailures (raftkit::errc values; anything else is `other`).
  /// A zero `ec` counts a success (proposals_committed).
  void proposal_completed(std::error_code ec) noexcept;

  /// A copy of every value (see the top of this header on consistency).
  MetricsSnapshot snapshot() const noexcept;

 private:
  MetricCounter failed_not_leader_, failed_busy_, failed_too_large_, failed_dropped_, failed_timeout_,
      failed_shutting_down_, failed_storage_, failed_other_;
};

/// The snapshot in the Prometheus text exposition format (version 0.0.4),
/// every sample labelled node="<node>". Metric names begin with `raftkit_`;
/// counters end in `_total`; latencies are in seconds and sizes in bytes, as
/// Prometheus' conventions ask. Serve it with
/// `Content-Type: text/plain; version=0.0.4`.
std::string to_prometheus(const MetricsSnapshot& snapshot, NodeId node);

}  // namespace raftkit

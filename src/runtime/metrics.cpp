// metrics.cpp — the registry's snapshot and the Prometheus exposition.
//
// The exposition follows the text format 0.0.4: for each family a `# HELP`
// line, a `# TYPE` line, then its samples. Histograms expose cumulative
// `_bucket{le="..."}` samples ending with le="+Inf" (equal to `_count`),
// then `_sum` and `_count`. Every bucket is emitted, empty or not, so the
// set of `le` values is the same on every node and every scrape, and
// histogram_quantile() over a sum of nodes sees matching bounds.
#include "raftkit/metrics.hpp"

#include <iterator>

#include <fmt/format.h>

#include "raftkit/error.hpp"

namespace raftkit {

std::uint64_t HistogramSnapshot::quantile(double q) const noexcept {
  if (count == 0) return 0;
  if (q < 0) q = 0;
  if (q > 1) q = 1;
  // The rank of the quantile, 1-based: the smallest value with at least
  // q * count values at or below it.
  auto rank = static_cast<std::uint64_t>(q * static_cast<double>(count));
  if (rank == 0) rank = 1;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBuckets; ++i) {
    seen += buckets[i];
    if (seen >= rank) return upper_bound(i);
  }
  return upper_bound(kBuckets - 1);
}

HistogramSnapshot MetricHistogram::snapshot() const noexcept {
  HistogramSnapshot s;
  for (std::size_t i = 0; i < HistogramSnapshot::kBuckets; ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    s.count += s.buckets[i];
  }
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

void MetricsRegistry::proposal_completed(std::error_code ec) noexcept {
  if (!ec) {
    proposals_committed.add();
    return;
  }
  if (ec.category() != raftkit_category()) {
    failed_other_.add();
    return;
  }
  switch (static_cast<errc>(ec.value())) {
    case errc::not_leader: failed_not_leader_.add(); return;
    case errc::busy: failed_busy_.add(); return;
    case errc::too_large: failed_too_large_.add(); return;
    case errc::dropped: failed_dropped_.add(); return;
    case errc::timeout: failed_timeout_.add(); return;
    case errc::shutting_down: failed_shutting_down_.add(); return;
    case errc::io_error:
    case errc::no_space: failed_storage_.add(); return;
    default: failed_other_.add(); return;
  }
}

MetricsSnapshot MetricsRegistry::snapshot() const noexcept {
  MetricsSnapshot s;
  s.proposals_received = proposals_received.value();
  s.proposals_committed = proposals_committed.value();
  s.proposals_failed.not_leader = failed_not_leader_.value();
  s.proposals_failed.busy = failed_busy_.value();
  s.proposals_failed.too_large = failed_too_large_.value();
  s.proposals_failed.dropped = failed_dropped_.value();
  s.proposals_failed.timeout = failed_timeout_.value();
  s.proposals_failed.shutting_down = failed_shutting_down_.value();
  s.proposals_failed.storage = failed_storage_.value();
  s.proposals_failed.other = failed_other_.value();
  s.reads_received = reads_received.value();
  s.reads_failed = reads_failed.value();
  s.reads_stale = reads_stale.value();
  s.pending_requests = pending_requests.value();
  s.entries_committed = entries_committed.value();
  s.entries_applied = entries_applied.value();
  s.term = term.value();
  s.commit_index = commit_index.value();
  s.applied_index = applied_index.value();
  s.is_leader = is_leader.value();
  s.elections_started = elections_started.value();
  s.elections_won = elections_won.value();
  s.leader_changes = leader_changes.value();
  s.incarnation_changes = incarnation_changes.value();
  s.log_append_us = log_append_us.snapshot();
  s.log_fsync_us = log_fsync_us.snapshot();
  s.disk_full = disk_full.value();
  s.no_space_writes = no_space_writes.value();
  s.snapshot_bytes = snapshot_bytes.snapshot();
  s.snapshot_save_us = snapshot_save_us.snapshot();
  s.snapshot_capture_us = snapshot_capture_us.snapshot();
  s.snapshot_restore_us = snapshot_restore_us.snapshot();
  s.snapshot_send_us = snapshot_send_us.snapshot();
  s.snapshots_installed = snapshots_installed.value();
  s.snapshots_sent = snapshots_sent.value();
  s.snapshots_send_failed = snapshots_send_failed.value();
  s.messages_sent = messages_sent.value();
  s.messages_received = messages_received.value();
  s.bytes_sent = bytes_sent.value();
  s.bytes_received = bytes_received.value();
  return s;
}

namespace {

class Exposition {
 public:
  explicit Exposition(NodeId node) : node_(node) {}

  void family(std::string_view name, std::string_view type, std::string_view help) {
    fmt::format_to(std::back_inserter(out_), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <class T>
  void sample(std::string_view name, T value) {
    fmt::format_to(std::back_inserter(out_), "{}{{node=\"{}\"}} {}\n", name, node_, value);
  }
  template <class T>
  void sample(std::string_view name, std::string_view label, std::string_view label_value, T value) {
    fmt::format_to(std::back_inserter(out_), "{}{{node=\"{}\",{}=\"{}\"}} {}\n", name, node_, label, label_value,
                   value);
  }
  void counter(std::string_view name, std::string_view help, std::uint64_t value) {
    family(name, "counter", help);
    sample(name, value);
  }
  void gauge(std::string_view name, std::string_view help, std::int64_t value) {
    family(name, "gauge", help);
    sample(name, value);
  }
  // `scale` converts the recorded unit to the exported one (1e-6: µs -> s).
  void histogram(std::string_view name, std::string_view help, const HistogramSnapshot& h, double scale) {
    family(name, "histogram", help);
    const std::string bucket = fmt::format("{}_bucket", name);
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i + 1 < HistogramSnapshot::kBuckets; ++i) {
      cumulative += h.buckets[i];
      const double bound = static_cast<double>(HistogramSnapshot::upper_bound(i)) * scale;
      sample(bucket, "le", fmt::format("{}", bound), cumulative);
    }
    sample(bucket, "le", "+Inf", h.count);
    sample(fmt::format("{}_sum", name), static_cast<double>(h.sum) * scale);
    sample(fmt::format("{}_count", name), h.count);
  }

  std::string take() { return std::move(out_); }

 private:
  NodeId node_;
  std::string out_;
};

}  // namespace

std::string to_prometheus(const MetricsSnapshot& s, NodeId node) {
  Exposition e(node);
  e.counter("raftkit_proposals_received_total", "Proposals (async_propose) that reached this node.",
            s.proposals_received);
  e.counter("raftkit_proposals_committed_total", "Proposals completed with success (committed and applied).",
            s.proposals_committed);
  {
    constexpr std::string_view name = "raftkit_proposals_failed_total";
    e.family(name, "counter", "Proposals completed with an error, by reason.");
    const auto& f = s.proposals_failed;
    e.sample(name, "reason", "not_leader", f.not_leader);
    e.sample(name, "reason", "busy", f.busy);
    e.sample(name, "reason", "too_large", f.too_large);
    e.sample(name, "reason", "dropped", f.dropped);
    e.sample(name, "reason", "timeout", f.timeout);
    e.sample(name, "reason", "shutting_down", f.shutting_down);
    e.sample(name, "reason", "storage", f.storage);
    e.sample(name, "reason", "other", f.other);
  }
  e.counter("raftkit_reads_received_total", "Linearizable reads (async_read) that reached this node.",
            s.reads_received);
  e.counter("raftkit_reads_failed_total", "Reads completed with an error.", s.reads_failed);
  e.counter("raftkit_reads_stale_total", "Stale local reads (async_read_stale, not linearizable) served.",
            s.reads_stale);
  e.gauge("raftkit_pending_requests", "Proposals and reads waiting at this node.", s.pending_requests);
  e.counter("raftkit_entries_committed_total", "Log entries this node learned are committed.", s.entries_committed);
  e.counter("raftkit_entries_applied_total", "Log entries applied to the state machine.", s.entries_applied);
  e.gauge("raftkit_term", "Current Raft term.", s.term);
  e.gauge("raftkit_commit_index", "Highest log index known committed.", s.commit_index);
  e.gauge("raftkit_applied_index", "Highest log index applied to the state machine.", s.applied_index);
  e.gauge("raftkit_is_leader", "1 while this node is the leader, else 0.", s.is_leader);
  e.counter("raftkit_elections_started_total", "Elections this node started as a candidate.", s.elections_started);
  e.counter("raftkit_elections_won_total", "Times this node became leader.", s.elections_won);
  e.counter("raftkit_leader_changes_total", "Times the leader known to this node changed.", s.leader_changes);
  e.counter("raftkit_incarnation_changes_total",
            "Messages from another incarnation of a follower than the one the leader tracked.", s.incarnation_changes);
  e.histogram("raftkit_log_append_seconds", "Duration of one log write, without its fsync (raftkit_log_fsync_seconds).", s.log_append_us, 1e-6);
  e.histogram("raftkit_log_fsync_seconds", "Duration of one fsync of the log.", s.log_fsync_us, 1e-6);
  e.gauge("raftkit_disk_full", "1 while a log write is refused for want of disk space, else 0.", s.disk_full);
  e.counter("raftkit_no_space_writes_total", "Writes (log and snapshot) the disk refused for want of space.",
            s.no_space_writes);
  e.histogram("raftkit_snapshot_bytes", "Size of each snapshot saved.", s.snapshot_bytes, 1.0);
  e.histogram("raftkit_snapshot_save_seconds", "Duration of saving one snapshot.", s.snapshot_save_us, 1e-6);
  e.histogram("raftkit_snapshot_capture_seconds", "Duration of the state machine's snapshot capture on the strand.",
              s.snapshot_capture_us, 1e-6);
  e.histogram("raftkit_snapshot_restore_seconds", "Duration of restoring the state machine from a snapshot.",
              s.snapshot_restore_us, 1e-6);
  e.histogram("raftkit_snapshot_send_seconds", "Duration of streaming one snapshot to a follower.",
              s.snapshot_send_us, 1e-6);
  e.counter("raftkit_snapshots_installed_total", "Snapshots received from a leader and loaded.",
            s.snapshots_installed);
  e.counter("raftkit_snapshots_sent_total", "Snapshots a follower received whole.", s.snapshots_sent);
  e.counter("raftkit_snapshots_send_failed_total", "Snapshot transfers that failed or were abandoned.",
            s.snapshots_send_failed);
  e.counter("raftkit_messages_sent_total", "Raft messages sent to peers.", s.messages_sent);
  e.counter("raftkit_messages_received_total", "Raft messages received from peers.", s.messages_received);
  e.counter("raftkit_bytes_sent_total", "Bytes sent to peers.", s.bytes_sent);
  e.counter("raftkit_bytes_received_total", "Bytes received from peers.", s.bytes_received);
  return e.take();
}

}  // namespace raftkit

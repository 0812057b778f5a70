#include "runtime/snapshot_lifecycle.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "raftkit/error.hpp"

namespace raftkit::runtime {

namespace {
// Copies what the state machine reads into memory: the snapshot loaded at
// start is kept for the first follower that needs it.
class TeeReader final : public SnapshotReader {
 public:
  TeeReader(SnapshotReader& in, Bytes& copy) : in_(in), copy_(copy) {
    copy_.reserve(static_cast<std::size_t>(in.remaining()));
  }
  std::error_code read(std::span<std::uint8_t> out, std::size_t& got) override {
    if (auto ec = in_.read(out, got)) return ec;
    copy_.insert(copy_.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(got));
    return {};
  }
  std::uint64_t remaining() const override { return in_.remaining(); }

 private:
  SnapshotReader& in_;
  Bytes& copy_;
};

// Counts the bytes a capture writes (metrics).
class CountingWriter final : public SnapshotWriter {
 public:
  CountingWriter(SnapshotWriter& out, std::uint64_t& count) : out_(out), count_(count) {}
  std::error_code write(BytesView data) override {
    count_ += data.size();
    return out_.write(data);
  }

 private:
  SnapshotWriter& out_;
  std::uint64_t& count_;
};
}  // namespace

SnapshotLifecycle::SnapshotLifecycle(const Options& options, StateMachine& machine, LogStore& store,
                                     SnapshotStore& snapshots, DriverIo& io, MetricsRegistry& metrics, IoIds& ids)
    : options_(options), sm_(machine), store_(store), snapshots_(snapshots), io_(io), metrics_(metrics), ids_(ids) {}

// ---- loading -------------------------------------------------------------------

std::error_code SnapshotLifecycle::restore(SnapshotReader& in, std::string& detail) {
  const TimePoint started = io_.metrics_clock();
  if (auto ec = sm_.restore_snapshot(in)) {
    detail = "the state machine refused the snapshot: " + ec.message();
    return ec;
  }
  metrics_.snapshot_restore_us.record(io_.metrics_clock() - started);
  return {};
}

std::error_code SnapshotLifecycle::load(std::string& detail) {
  const SnapshotMeta in_store = store_.snapshot_meta();
  SnapshotMeta loaded;
  auto kept = std::make_shared<Bytes>();
  std::string problem;
  std::string why;
  auto ec = snapshots_.load(
      [&](const SnapshotMeta& meta, SnapshotReader& in) -> std::error_code {
        if (meta.index < in_store.index) {
          problem = fmt::format("the newest snapshot ({}) is older than the log store's snapshot ({})", meta.index,
                                in_store.index);
          return errc::corrupted;
        }
        if (meta.index > in_store.index) {
          // A crash came between saving the snapshot and recording it in the store.
          if (auto e = store_.install_snapshot(meta)) return problem = "recording the snapshot", e;
          if (auto e = store_.sync()) return problem = "syncing the log store", e;
        }
        TeeReader tee(in, *kept);
        if (auto e = restore(tee, problem)) return e;
        Bytes rest;  // what the state machine left unread is part of the snapshot sent on
        if (auto e = read_all(tee, rest)) return problem = "reading the snapshot", e;
        loaded = meta;
        return {};
      },
      why);
  if (ec == errc::unavailable && problem.empty()) {
    if (in_store.index == Index{}) return {};
    detail = fmt::format("the log store starts after a snapshot at {} but no snapshot is available{}", in_store.index,
                         options_.snapshot_dir.empty() ? " (no snapshot_dir is set)" : " in " + options_.snapshot_dir);
    return errc::corrupted;
  }
  if (ec) {
    detail = problem.empty() ? "cannot load snapshot: " + why : problem + " (" + why + ")";
    return ec;
  }
  recorded_ = loaded;
  bytes_ = std::move(kept);
  if (observer_) observer_->on_snapshot_loaded(loaded);
  return {};
}

std::error_code SnapshotLifecycle::install_received(const SnapshotMeta& meta, Bytes data, std::string& detail) {
  MemorySnapshotReader in(data);
  if (auto ec = restore(in, detail)) return ec;
  recorded_ = meta;
  bytes_ = std::make_shared<Bytes>(std::move(data));
  bytes_since_snapshot_ = 0;
  if (taken_ && taken_->index <= recorded_.index) taken_.reset();
  metrics_.snapshots_installed.add();
  if (observer_) observer_->on_snapshot_loaded(recorded_);
  return {};
}

// ---- taking --------------------------------------------------------------------

// The state machine captures its state here, on the driver's thread, and
// the capture is serialised inside the DiskWrite: on Node's disk thread while
// applies go on, synchronously in the simulator.
// One snapshot waits for compaction at a time: the next is taken once the
// log store recorded the previous one (so with snapshot_trailing_entries
// above snapshot_interval, snapshots come every trailing-window entries).
void SnapshotLifecycle::maybe_take(const core::Raft& raft) {
  maybe_record(raft);
  if (saving_ || taken_) return;
  const Index applied = raft.applied_index();
  const bool by_entries =
      options_.snapshot_interval != 0 && distance(newest_index(), applied) >= options_.snapshot_interval;
  const bool by_bytes = options_.snapshot_interval_bytes != 0 &&
                        bytes_since_snapshot_ >= options_.snapshot_interval_bytes && applied > newest_index();
  if (!by_entries && !by_bytes) return;
  if (applied < retake_at_) return;  // the disk refused the last save
  take(raft);
}

void SnapshotLifecycle::snapshot_now(const core::Raft& raft, DoneHandler done) {
  const Index applied = raft.applied_index();
  if (newest_index() >= applied && !saving_) return done({});
  waiters_.emplace_back(applied, std::move(done));
  if (!saving_) take_for_waiters(raft);
}

void SnapshotLifecycle::fail_waiters(std::error_code why) {
  for (auto& w : std::exchange(waiters_, {})) w.second(why);
}

// Starts a snapshot for the snapshot_now() callers; if none can be taken (the
// applied entry's term is gone from the log), they learn it now rather than
// wait for ever.
void SnapshotLifecycle::take_for_waiters(const core::Raft& raft) {
  take(raft);
  if (saving_) return;
  for (auto& w : std::exchange(waiters_, {})) w.second(errc::unavailable);
}

void SnapshotLifecycle::take(const core::Raft& raft) {
  const Index applied = raft.applied_index();
  const auto term = raft.log().term(applied);
  if (!term) return;
  const SnapshotMeta meta{applied, *term, raft.membership()};
  bytes_since_snapshot_ = 0;
  const TimePoint started = io_.metrics_clock();
  std::shared_ptr<SnapshotCapture> capture = sm_.capture_snapshot();
  metrics_.snapshot_capture_us.record(io_.metrics_clock() - started);
  auto w = ids_.new_write([this, meta, capture = std::move(capture)](std::string& what) {
    const TimePoint saving = io_.metrics_clock();
    std::uint64_t bytes = 0;
    auto ec = snapshots_.save(
        meta,
        [&](SnapshotWriter& out) {
          CountingWriter counted(out, bytes);
          return capture->write_to(counted);
        },
        what);
    if (ec) {
      what = "taking a snapshot: " + what;
      return ec;
    }
    metrics_.snapshot_save_us.record(io_.metrics_clock() - saving);
    metrics_.snapshot_bytes.record(bytes);
    return std::error_code{};
  });
  w->snapshot_only = true;
  saving_ = Saving{w->id, meta};
  io_.persist(std::move(w));
}

// Records the newest taken snapshot in the log store, which discards the log
// up to it — once `snapshot_trailing_entries` entries follow it (a follower
// a little behind is served from the log), and, on a leader, not while a
// follower is receiving a snapshot: what it needs next is the log right
// after that snapshot.
void SnapshotLifecycle::maybe_record(const core::Raft& raft) {
  if (!taken_ || recording_) return;
  // A Ready that installs a received snapshot is being written: the store's
  // writes run in hand-out order, so recording ours after it could take the
  // store back to an older snapshot. install_received() drops ours if it is covered.
  if (receiving_) return;
  if (!force_record_ && distance(taken_->index, raft.applied_index()) < options_.snapshot_trailing_entries) return;
  if (raft.role() == core::Role::leader) {
    for (const auto& [id, pr] : raft.progress().map()) {
      if (id != options_.id && pr.state == core::ProgressState::snapshot && pr.pending_snapshot < taken_->index)
        return;
    }
  }
  const SnapshotMeta meta = *taken_;
  auto w = ids_.new_write([this, meta](std::string& what) -> std::error_code {
    if (auto e = store_.install_snapshot(meta)) {
      what = "recording a snapshot";
      return e;
    }
    return {};
  });
  recording_ = Recording{w->id, meta};
  io_.persist(std::move(w));
}

// ---- completions -----------------------------------------------------------------

bool SnapshotLifecycle::write_done(std::uint64_t id, const core::Raft& raft) {
  if (saving_ && saving_->write_id == id) {
    saved(raft);
    return true;
  }
  if (recording_ && recording_->write_id == id) {
    recorded(raft);
    return true;
  }
  return false;
}

bool SnapshotLifecycle::write_refused(std::uint64_t id, const core::Raft& raft) {
  if (saving_ && saving_->write_id == id) {
    options_.logger.warn(options_.id, raft.term(), "disk full: the snapshot at index {} was not saved; the next "
                         "is taken {} entries on", saving_->meta.index, options_.snapshot_interval);
    retake_at_ = raft.applied_index() + std::max<std::uint64_t>(options_.snapshot_interval, 1);
    saving_.reset();
    fail_waiters(errc::no_space);
    return true;
  }
  if (recording_ && recording_->write_id == id) {
    recording_.reset();  // maybe_record() tries again after the next apply
    return true;
  }
  return false;
}

// Durable in the snapshot store; recorded in the log store (which compacts
// the log) once maybe_record() allows.
void SnapshotLifecycle::saved(const core::Raft& raft) {
  const SnapshotMeta meta = std::move(saving_->meta);
  saving_.reset();
  if (meta.index > newest_index()) taken_ = meta;
  if (observer_) observer_->on_snapshot_taken(meta);
  std::erase_if(waiters_, [&](auto& w) {
    if (meta.index < w.first) return false;
    w.second({});
    return true;
  });
  if (!waiters_.empty()) take_for_waiters(raft);  // they asked while an older one was being saved
  maybe_record(raft);
}

void SnapshotLifecycle::recorded(const core::Raft& raft) {
  const SnapshotMeta meta = std::move(recording_->meta);
  recording_.reset();
  force_record_ = false;
  if (meta.index > recorded_.index) {
    recorded_ = meta;
    bytes_.reset();
  }
  if (taken_ && taken_->index <= recorded_.index) taken_.reset();
  maybe_record(raft);
}

bool SnapshotLifecycle::read_done(SnapshotRead& r, Term term) {
  if (!reading_ || *reading_ != r.id) return false;
  reading_.reset();
  if (r.ec) {
    options_.logger.warn(options_.id, term, "cannot read snapshot {} to send it: {}", recorded_.index,
                         r.detail.empty() ? r.ec.message() : r.detail);
  } else if (r.meta.index == recorded_.index && r.meta.term == recorded_.term) {
    bytes_ = std::make_shared<Bytes>(std::move(r.data));
  }
  return true;
}

// ---- sending ---------------------------------------------------------------------

bool SnapshotLifecycle::attach_bytes(Message& m, core::Raft& raft) {
  // Only the snapshot the log store records can be sent, once its bytes
  // are in memory; meanwhile the core hears it failed and asks again later.
  if (!m.snapshot || !bytes_ || m.snapshot->index != recorded_.index) {
    raft.report_snapshot(m.to, false);
    if (m.snapshot && m.snapshot->index == recorded_.index) read_to_send(raft);
    return false;
  }
  // Moved, not copied (a large snapshot would stall this thread): the next
  // follower that needs it has it read from the store again.
  m.snapshot_data = std::move(*bytes_);
  bytes_.reset();
  sends_[m.to] = io_.metrics_clock();  // metrics only
  return true;
}

void SnapshotLifecycle::send_reported(NodeId peer, bool ok) {
  auto it = sends_.find(peer);
  if (it == sends_.end()) return;
  if (ok) {
    metrics_.snapshots_sent.add();
    metrics_.snapshot_send_us.record(io_.metrics_clock() - it->second);
  } else {
    metrics_.snapshots_send_failed.add();
  }
  sends_.erase(it);
}

// The bytes of the recorded snapshot are read from the snapshot store on the
// snapshot thread (a SnapshotRead), only when a follower needs them.
// The store holds the newest snapshot only: while a newer one waits for the
// trailing window, the recorded one's file is gone, so the newer one is
// recorded at once (the follower needs a snapshot anyway) and sent instead.
void SnapshotLifecycle::read_to_send(const core::Raft& raft) {
  if (reading_ || recorded_.index == Index{}) return;
  if (taken_) {
    force_record_ = true;
    maybe_record(raft);
    return;
  }
  auto r = std::make_shared<SnapshotRead>();
  r->id = ids_.next();
  r->store = &snapshots_;
  reading_ = r->id;
  io_.read_snapshot(std::move(r));
}

}  // namespace raftkit::runtime

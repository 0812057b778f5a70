// raftkit/state_machine.hpp — the one interface a service implements.
//
// raftkit calls apply(), query(), capture_snapshot() and restore_snapshot()
// on the node's strand, one at a time, never concurrently with each other:
// no locking is needed inside them.
//
// SNAPSHOTS STREAM, IN TWO STEPS. A snapshot of a large state takes long to
// serialise, and applies must not wait for it. So taking one is split:
//
//   1. capture_snapshot() runs on the strand, between two applies, and must
//      be cheap: it returns a SnapshotCapture holding a consistent view of
//      the state as of the last applied entry. Two ways to make that view:
//        - a copy (fine for states up to some megabytes: copying memory is
//          fast, serialising is what is slow), or
//        - a copy-on-write structure (a persistent map, or a version number
//          per record with the old versions kept while a capture lives), so
//          the capture costs O(1) and applies pay a little per write while
//          it lives.
//   2. SnapshotCapture::write_to() runs later on ANOTHER thread (Node's disk
//      thread) while applies go on, and streams the view into a
//      SnapshotWriter. It must touch only the captured view, never the live
//      state the strand is changing.
//
// Restoring reads a SnapshotReader: restore_snapshot() replaces the whole
// state with what one write_to() wrote. Bytes that do not decode are an
// error value, never a crash nor an exception; raftkit checksums snapshots
// on disk and on the wire, so such bytes mean another program (or another
// version) wrote them, and the node stops with a clear error.
//
// MemorySnapshotWriter / MemorySnapshotReader and CopiedSnapshot (below) are
// the small pieces a state machine that snapshots by copy needs.
#pragma once

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <system_error>

#include "raftkit/error.hpp"
#include "raftkit/types.hpp"

namespace raftkit {

/// Where a snapshot's bytes go (a file, a buffer, a socket).
class SnapshotWriter {
 public:
  virtual ~SnapshotWriter() = default;
  /// Appends `data` to the snapshot. An error (errc::no_space,
  /// errc::io_error, ...) abandons the snapshot: the capture returns it.
  virtual std::error_code write(BytesView data) = 0;
};

/// Where a snapshot's bytes come from. The bytes have been checksummed
/// before the reader is handed out.
class SnapshotReader {
 public:
  virtual ~SnapshotReader() = default;
  /// Reads up to out.size() bytes into `out`; `got` < out.size() only at
  /// the end of the snapshot (0: nothing left).
  virtual std::error_code read(std::span<std::uint8_t> out, std::size_t& got) = 0;
  /// Bytes not read yet.
  virtual std::uint64_t remaining() const = 0;
  /// Reads exactly out.size() bytes; errc::corrupted if the snapshot ends first.
  std::error_code read_exact(std::span<std::uint8_t> out) {
    while (!out.empty()) {
      std::size_t got = 0;
      if (auto ec = read(out, got)) return ec;
      if (got == 0) return errc::corrupted;
      out = out.subspan(got);
    }
    return {};
  }
};

/// A consistent view of the state, made on the strand by capture_snapshot(),
/// serialised later on another thread.
class SnapshotCapture {
 public:
  virtual ~SnapshotCapture() = default;
  /// Streams the captured view into `out`. Runs once, on a thread other
  /// than the strand, while apply() goes on: it must read only the captured
  /// view. Returns the writer's error, if any.
  virtual std::error_code write_to(SnapshotWriter& out) = 0;
};

/// The replicated state machine a service implements (see the file comment).
class StateMachine {
 public:
  virtual ~StateMachine() = default;

  /// Applies one committed command (entries of type normal only), in log
  /// order, exactly once per node lifetime for each index above the last
  /// snapshot loaded. Must be deterministic: the same entries in the same
  /// order give the same state on every node. The returned bytes complete
  /// the proposer's async_propose on the node where it was proposed.
  virtual Bytes apply(const Entry& entry) = 0;

  /// Answers a read-only query against the current state. Called by
  /// async_read once the state includes every write that completed before
  /// the read began (linearizable). Must not change the state.
  virtual Bytes query(BytesView query) const = 0;

  /// Captures the state after the last applied entry, cheaply (see the file
  /// comment: a copy or a copy-on-write view). Never null. The capture may
  /// outlive later applies and is destroyed on any thread.
  virtual std::unique_ptr<SnapshotCapture> capture_snapshot() const = 0;

  /// Replaces the whole state with what a capture's write_to() wrote. An
  /// empty snapshot (remaining() == 0 at the start) is the initial state.
  /// Errors: errc::corrupted when the bytes do not decode (say so in the
  /// state machine's own logs if more detail helps). On error the state is
  /// unspecified (the node stops); decoding into a fresh structure and
  /// swapping it in at the end keeps it unchanged instead.
  virtual std::error_code restore_snapshot(SnapshotReader& in) = 0;

  // ---- optional hooks: the defaults keep a state machine that ignores
  // them working exactly as before ----------------------------------------
  //
  // Like every member, they run on the node's strand. Do not call the Node
  // from inside one (Node's calls would run inline, inside the node's own
  // step): post the call to an executor instead.

  /// Called once per batch of consecutive committed commands (entries of
  /// type normal, in log order, each above the last snapshot loaded), in
  /// place of one apply() per entry. Apply them, then call
  /// `applied(result)` once for each entry, in order and before returning,
  /// with what apply() would have returned (it completes that entry's
  /// proposer); the state must include an entry's effect by the time its
  /// `applied` is called.
  /// A service that writes the batch to its own store in one transaction
  /// (one fsync for many commands) applies the whole batch first and then
  /// reports every result. How entries are cut into batches is up to the
  /// node and varies between replicas: the resulting state must not depend
  /// on it. Calling `applied` fewer or more times than there are entries
  /// breaks the node's bookkeeping: the node stops (NodeStatus::failure
  /// says why). Default: apply() for each entry.
  virtual void apply_batch(std::span<const Entry> entries, const std::function<void(Bytes result)>& applied) {
    for (const Entry& entry : entries) applied(apply(entry));
  }

  /// This node became the leader of `term`. Entries committed by earlier
  /// leaders may not be applied yet (they are, once an entry of `term`
  /// commits); a linearizable read (async_read) accounts for that. Typical
  /// use: start work only the leader does (leases, timers, sending
  /// notifications). Default: nothing.
  virtual void on_leadership_gained(Term term) { (void)term; }

  /// This node no longer leads in `term` (the term it had gained): it
  /// stepped down (a higher term, a lost quorum, a stalled disk, a
  /// leadership transfer) or the node stopped. Called once after each
  /// on_leadership_gained. Stop the leader-only work here. Default: nothing.
  virtual void on_leadership_lost(Term term) { (void)term; }
};

/// Collects a snapshot in memory.
class MemorySnapshotWriter final : public SnapshotWriter {
 public:
  std::error_code write(BytesView data) override {
    bytes.insert(bytes.end(), data.begin(), data.end());
    return {};
  }
  Bytes bytes;  ///< everything written so far
};

/// Reads a snapshot held in memory; `data` must outlive the reader.
class MemorySnapshotReader final : public SnapshotReader {
 public:
  /// Reads `data` from its first byte.
  explicit MemorySnapshotReader(BytesView data) : data_(data) {}
  std::error_code read(std::span<std::uint8_t> out, std::size_t& got) override {
    got = std::min(out.size(), data_.size());
    if (got > 0) std::memcpy(out.data(), data_.data(), got);
    data_ = data_.subspan(got);
    return {};
  }
  std::uint64_t remaining() const override { return data_.size(); }

 private:
  BytesView data_;
};

/// A capture that is already serialised: for state machines whose state is
/// small enough to encode on the strand (capture_snapshot() returns
/// `std::make_unique<CopiedSnapshot>(encode(state))`).
class CopiedSnapshot final : public SnapshotCapture {
 public:
  /// Holds `bytes` until write_to().
  explicit CopiedSnapshot(Bytes bytes) : bytes_(std::move(bytes)) {}
  std::error_code write_to(SnapshotWriter& out) override { return out.write(bytes_); }

 private:
  Bytes bytes_;
};

/// Reads everything a reader has left into memory (restore helpers and tests).
inline std::error_code read_all(SnapshotReader& in, Bytes& out) {
  const std::uint64_t n = in.remaining();
  out.resize(static_cast<std::size_t>(n));
  return in.read_exact(out);
}

}  // namespace raftkit

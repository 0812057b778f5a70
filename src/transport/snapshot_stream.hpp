// transport/snapshot_stream.hpp — the snapshot-streaming protocol as two
// event-driven state machines, with no I/O, no clock and no timers.
//
// A snapshot message does not travel as one frame: the sender cuts its data
// into chunks (SnapshotChunk) and keeps at most a window of them ahead of
// the receiver's acknowledgements (SnapshotAck). The receiver appends chunks
// in order and answers each with the count of bytes it holds; a chunk past
// that count is answered with a "gap" and the sender rewinds to it. The
// receiver hands the message on only once the whole data is there and its
// CRC-32C matches the one every chunk carries.
//
//   sender (SnapshotTransfer, one per follower and group)      receiver (SnapshotReceiver)
//   next_chunks() ── chunk(offset, total, crc) ──▶   on_chunk(now)
//   on_ack()      ◀── ack(received, status) ──────   (complete: the message)
//   on_stall_check() every stall timeout             expire(now) now and then
//   rewind() when a new connection is up
//
// The owner (the TCP transport) does the I/O: it encodes and queues what
// next_chunks() returns, feeds acknowledgements to on_ack() and chunks to
// on_chunk(), calls on_stall_check() from a timer, and reports the verdicts.
// Everything here is deterministic, so the tests drive it without sockets
// and a simulator can run it on virtual time.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "raftkit/message.hpp"
#include "transport/codec.hpp"

namespace raftkit::transport {

/// The stream's bounds (TcpTransportOptions documents each).
struct SnapshotStreamLimits {
  std::size_t chunk_bytes = std::size_t{1} << 20;          ///< snapshot data per chunk, > 0
  std::size_t window_chunks = 4;                            ///< chunks ahead of the acknowledgements, > 0
  std::uint64_t max_snapshot_bytes = std::uint64_t{16} << 30;  ///< largest snapshot a receiver accepts
  int stalls_before_failure = 3;                            ///< stall checks without progress, in a row
  std::size_t max_partial_snapshots = 4;                    ///< groups a receiver takes snapshots of at once
};

/// Where a transfer stands after an event.
enum class TransferVerdict : std::uint8_t {
  sending,    ///< keep going: queue next_chunks()
  delivered,  ///< the receiver holds the whole, verified snapshot: report success, forget the transfer
  failed,     ///< give up (`why` says why): report failure, forget the transfer
};

/// The sending side of one snapshot to one follower.
class SnapshotTransfer {
 public:
  /// `metadata` is the snapshot message without its data; `checksum` the
  /// CRC-32C of `data`; `id` a transfer id unique for this sender's life.
  SnapshotTransfer(Message metadata, std::shared_ptr<const Bytes> data, std::uint32_t checksum, std::uint64_t id);

  std::uint64_t id() const { return id_; }
  NodeId to() const { return metadata_.to; }
  std::uint64_t total() const { return data_->size(); }
  /// Bytes the receiver acknowledged holding.
  std::uint64_t acknowledged() const { return acked_; }

  /// The chunks to send now: from the first byte not yet sent up to the
  /// window past the acknowledged offset (an empty snapshot is one chunk).
  std::vector<SnapshotChunk> next_chunks(const SnapshotStreamLimits& limits);
  /// An acknowledgement from the receiver. One of another transfer changes
  /// nothing. `why` is set when the verdict is failed.
  TransferVerdict on_ack(const SnapshotAck& ack, std::string& why);
  /// Called once per stall timeout: no acknowledgement advanced the transfer
  /// since the last call rewinds it to the acknowledged offset; after
  /// limits.stalls_before_failure such calls in a row it fails.
  TransferVerdict on_stall_check(const SnapshotStreamLimits& limits);
  /// A new connection to the receiver: resend from the acknowledged offset.
  void rewind();

 private:
  Message metadata_;
  std::shared_ptr<const Bytes> data_;
  std::uint32_t checksum_;
  std::uint64_t id_;
  std::uint64_t next_ = 0;   // first byte not yet sent
  std::uint64_t acked_ = 0;  // bytes the receiver holds
  bool sent_any_ = false;
  int stalls_ = 0;
  std::uint64_t progress_ = 0;       // bumped on every advance
  std::uint64_t progress_seen_ = 0;  // at the last stall check
};

/// A snapshot being received: what its chunks brought so far.
struct PartialSnapshot {
  std::chrono::steady_clock::time_point last_chunk;
  NodeId from;
  std::uint64_t transfer = 0;
  Message message;
  std::uint64_t total = 0;
  std::uint32_t checksum = 0;  ///< announced by the sender
  std::uint32_t crc = 0;       ///< of `data` so far
  Bytes data;
};

/// The receiving side: one partial snapshot per group (Message::group), at
/// most limits.max_partial_snapshots groups at once. Within a group only the
/// newest leader's counts: a chunk of an older term is refused while a newer
/// transfer is held.
class SnapshotReceiver {
 public:
  using Clock = std::chrono::steady_clock;

  /// What one chunk produced: the acknowledgement to send back; the whole
  /// message when the snapshot is complete and verified; the reason when the
  /// chunk was refused (the acknowledgement then says failed).
  struct Step {
    SnapshotAck ack;
    std::optional<Message> complete;
    std::string refusal;
    bool started = false;  ///< this chunk began a new partial snapshot
  };

  /// Takes one chunk from `from` to `self` at time `now`.
  Step on_chunk(NodeId self, NodeId from, const SnapshotChunk& chunk, Clock::time_point now,
                const SnapshotStreamLimits& limits);
  /// Drops every partial snapshot that got no chunk for `limit` before
  /// `now`; returns a description of each dropped.
  std::vector<std::string> expire(Clock::time_point now, Clock::duration limit);
  /// Whether a partial snapshot is held.
  bool receiving() const { return !partials_.empty(); }
  void reset() { partials_.clear(); }

 private:
  std::map<GroupId, PartialSnapshot> partials_;
};

}  // namespace raftkit::transport

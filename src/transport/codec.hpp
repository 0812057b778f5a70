// transport/codec.hpp — raftkit::Message <-> framed Cap'n Proto bytes.
//
// Framing. Every frame is an 8-byte raftkit header followed by a body:
//
//   offset 0  'R' 'K'        magic: rejects a stray client or another protocol at once
//   offset 2  u8 version     kFrameVersion (1); anything else is a protocol error
//   offset 3  u8 reserved    must be zero
//   offset 4  u32 LE length  body bytes: a nonzero multiple of 8, <= max_frame_bytes
//   offset 8  body           one Cap'n Proto message (standard segment table + segments)
//                            whose root is wire::Frame
//
// The header is checked on its own (decode_frame_header) before the reader
// allocates anything for the body, so a peer cannot make us reserve more than
// max_frame_bytes per connection. The header is a whole word, so a body read
// into word-aligned storage stays aligned and decodes without a copy.
//
// Decoding untrusted bytes. The body is read with capnp::FlatArrayMessageReader
// and explicit ReaderOptions: the traversal limit is the frame limit in words
// (an honest message reads each word once; a message built to amplify reads
// through aliased pointers stops at one max frame's worth of work) and the
// nesting limit is small (the schema nests four levels). Trailing bytes after
// the message, an unknown union member, an unknown MessageType or EntryType
// are protocol errors. Every kj exception thrown by Cap'n Proto on malformed
// input is caught here and becomes errc::protocol_error: nothing escapes.
// Unaligned input is copied once into a word array (capnp requires alignment).
//
// Encoding without copying payloads. encode() takes the Message by value and
// keeps it inside the EncodedFrame. Entry payloads and snapshot data of at
// least `external_payload_min_bytes` that are word-aligned and a multiple of
// 8 long are referenced in place as extra Cap'n Proto segments
// (Orphanage::referenceExternalData); buffers() then maps header, segment
// table and segments onto Asio buffers for one gathered write. Smaller or
// odd-sized payloads are copied (a memcpy is cheaper than an iovec for them,
// and referencing an odd-sized blob would expose the bytes after it). At most
// kMaxExternalSegments blobs are referenced per frame, well under capnp's
// segment-count limit on the reading side.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>
#include <variant>
#include <vector>

#include <boost/asio/buffer.hpp>

#include "raftkit/error.hpp"
#include "raftkit/message.hpp"
#include "raftkit/types.hpp"

namespace raftkit::transport {

inline constexpr std::uint8_t kFrameVersion = 1;
inline constexpr std::uint32_t kProtocolVersion = 2;  ///< carried in the handshake
inline constexpr std::size_t kFrameHeaderBytes = 8;
inline constexpr std::size_t kDefaultMaxFrameBytes = std::size_t{64} << 20;  // 64 MiB
inline constexpr std::size_t kMaxExternalSegments = 128;
inline constexpr std::size_t kMaxClusterIdBytes = 256;

struct CodecLimits {
  /// Largest accepted and produced frame body, in bytes (capped at 2^32 - 8).
  std::size_t max_frame_bytes = kDefaultMaxFrameBytes;
  /// Cap'n Proto nesting limit for decoding; the schema needs 4.
  int nesting_limit = 8;
  /// Payloads at least this long (and aligned, multiple of 8) are written
  /// from their own storage instead of being copied into the message.
  std::size_t external_payload_min_bytes = 1024;
};

/// First frame of a TCP connection, from the connecting node.
struct Handshake {
  std::string cluster_id;
  NodeId node;
  std::uint32_t protocol_version = kProtocolVersion;
  NodeId expected_peer;  ///< who the connecting node thinks it dialled
  std::uint64_t generation = 0;  ///< the connecting node's cluster generation (0: none yet)
  friend bool operator==(const Handshake&, const Handshake&) = default;
};

/// The accepting node's answer to a Handshake.
struct HandshakeReply {
  bool accepted = false;
  NodeId node;
  std::string reason;
  /// What the accepting node says of itself (ClusterStanding): a node about
  /// to bootstrap refuses to if it is a member. A peer of an older version
  /// sends none of these: not a member.
  bool member = false;
  NodeId leader;
  Index commit;
  friend bool operator==(const HandshakeReply&, const HandshakeReply&) = default;
};

/// One piece of a streamed snapshot (leader -> follower). `message` is the
/// snapshot message without its data.
struct SnapshotChunk {
  Message message;
  std::uint64_t transfer = 0;  ///< the sender's id for the stream
  std::uint64_t offset = 0;    ///< where the data starts in the snapshot data
  std::uint64_t total = 0;     ///< length of the whole snapshot data
  std::uint32_t checksum = 0;  ///< CRC-32C of the whole snapshot data
  Bytes data;                  ///< decoded chunks (and encodes without `shared`)
  /// Encoding only: when set, the chunk's bytes are shared->[offset,
  /// offset + shared_length), referenced in place rather than copied.
  std::shared_ptr<const Bytes> shared;
  std::size_t shared_length = 0;
  /// The chunk's bytes, wherever they are held.
  BytesView bytes() const {
    return shared ? BytesView(*shared).subspan(static_cast<std::size_t>(offset), shared_length) : BytesView(data);
  }
  /// Equal fields and equal bytes, however they are held.
  friend bool operator==(const SnapshotChunk& a, const SnapshotChunk& b) {
    const BytesView x = a.bytes(), y = b.bytes();
    return a.message == b.message && a.transfer == b.transfer && a.offset == b.offset && a.total == b.total &&
           a.checksum == b.checksum && std::equal(x.begin(), x.end(), y.begin(), y.end());
  }
};

/// The receiver's answer to a chunk.
struct SnapshotAck {
  enum class Status : std::uint8_t { receiving = 0, gap = 1, complete = 2, failed = 3 };
  NodeId from;
  NodeId to;
  std::uint64_t transfer = 0;
  std::uint64_t received = 0;  ///< bytes held contiguously from offset 0
  Status status = Status::receiving;
  GroupId group = 0;  ///< the snapshot message's group
  friend bool operator==(const SnapshotAck&, const SnapshotAck&) = default;
};

/// What one frame carries.
using FramePayload = std::variant<Message, Handshake, HandshakeReply, SnapshotChunk, SnapshotAck>;

/// An encoded frame, ready for a gathered write. Owns everything its buffers
/// point at (including the Message whose payloads it references), so it can
/// be queued and written later. Movable; buffers stay valid across moves.
class EncodedFrame {
 public:
  EncodedFrame();
  EncodedFrame(EncodedFrame&&) noexcept;
  EncodedFrame& operator=(EncodedFrame&&) noexcept;
  ~EncodedFrame();

  /// Header, segment table and segments, in order. Empty for a default frame.
  const std::vector<boost::asio::const_buffer>& buffers() const;
  /// Total bytes of the frame, header included.
  std::size_t size() const;
  /// The frame as one contiguous byte string (copies; for tests and fuzzing).
  Bytes to_bytes() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
  friend std::error_code encode_frame(FramePayload, EncodedFrame&, const CodecLimits&);
};

/// Encodes one frame. Errors: too_large when the body would exceed
/// limits.max_frame_bytes (out is left empty), protocol_error when Cap'n
/// Proto refuses the value (e.g. a list beyond its size limits).
std::error_code encode_frame(FramePayload payload, EncodedFrame& out, const CodecLimits& limits = {});

/// Convenience: encode_frame of a Message.
std::error_code encode(Message msg, EncodedFrame& out, const CodecLimits& limits = {});

/// Convenience for tests, fuzzing and benchmarks: the frame as contiguous bytes
/// (empty on error).
Bytes encode_to_bytes(const Message& msg, const CodecLimits& limits = {});

/// Checks the 8 header bytes and returns the body length in `body_bytes`.
/// Errors: protocol_error (bad magic, version, reserved byte, length not a
/// nonzero multiple of 8), too_large (length over limits.max_frame_bytes).
std::error_code decode_frame_header(BytesView header, std::size_t& body_bytes, const CodecLimits& limits = {});

/// Decodes a frame body (the bytes after the header, exactly body_bytes long).
/// Never throws; on error `out` is unspecified.
std::error_code decode_frame_body(BytesView body, FramePayload& out, const CodecLimits& limits = {});

/// Decodes a whole frame (header + body, nothing after it).
std::error_code decode_frame(BytesView frame, FramePayload& out, const CodecLimits& limits = {});

/// Decodes a whole frame that must carry a Message.
std::error_code decode(BytesView frame, Message& out, const CodecLimits& limits = {});

}  // namespace raftkit::transport

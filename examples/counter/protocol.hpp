// protocol.hpp — the counter's client protocol in plain C++ (counter.capnp is
// the wire form; protocol.cpp is the only code that touches it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "raftkit/host_port.hpp"
#include "raftkit/types.hpp"

namespace raftkit::counter {

/// Largest frame body either side sends or accepts.
inline constexpr std::size_t kMaxFrameBody = 64 * 1024;
/// Bytes of the length prefix (big-endian uint32).
inline constexpr std::size_t kFrameHeader = 4;

struct IncrRequest { std::int64_t delta = 1; };
/// A read of the value: linearizable, or (stale) the node's own value now,
/// which may miss increments that completed elsewhere.
struct GetRequest { bool stale = false; };
struct StatusRequest {};
struct TransferLeaderRequest { std::uint64_t target = 0; };
struct AddServerRequest {
  std::uint64_t id = 0;
  std::string raft_address;
  std::string client_address;
};
struct RemoveServerRequest { std::uint64_t id = 0; };
struct SnapshotRequest {};
/// A member that moved: its new Raft and client addresses.
struct UpdateServerRequest {
  std::uint64_t id = 0;
  std::string raft_address;
  std::string client_address;
};
using Request = std::variant<IncrRequest, GetRequest, StatusRequest, TransferLeaderRequest, AddServerRequest,
                             RemoveServerRequest, SnapshotRequest, UpdateServerRequest>;

struct NodeInfo {
  std::uint64_t id = 0;
  std::string role;
  std::uint64_t term = 0;
  std::uint64_t leader = 0;
  std::uint64_t commit = 0;
  std::uint64_t applied = 0;
  std::uint64_t last_index = 0;
  std::int64_t value = 0;
  std::string failure;
  std::string client_address;
  std::vector<std::uint64_t> voters;
  std::vector<std::uint64_t> learners;
  std::vector<std::uint64_t> staging;
  std::vector<std::uint64_t> voters_outgoing;  ///< non-empty: a joint configuration
  bool replacing = false;
  std::uint64_t incarnation = 0;
  std::uint64_t generation = 0;  ///< the cluster generation (raftkit::Status::generation)
  std::uint64_t snapshot_index = 0;
  std::string diagnosis;  ///< why no leader is known (raftkit::diagnose()); empty when one is
  bool disk_full = false;  ///< log writes are refused with no_space (NodeStatus::disk_full_since)
};

enum class ReplyKind { ok, not_leader, failed, unknown_outcome };

struct Reply {
  ReplyKind kind = ReplyKind::failed;
  std::int64_t value = 0;
  std::string code;
  std::string message;
  std::uint64_t leader_id = 0;
  std::string leader_address;
  std::optional<NodeInfo> info;
};

/// Encodes a whole frame (length prefix included).
std::vector<std::uint8_t> encode_request(const Request& r);
std::vector<std::uint8_t> encode_reply(const Reply& r);

/// Reads the length prefix; nullopt if the length is not acceptable
/// (zero, not a multiple of 8, or over kMaxFrameBody).
std::optional<std::size_t> frame_body_size(const std::uint8_t (&header)[kFrameHeader]);

/// Decodes a frame body; on failure returns nullopt and sets `error`.
std::optional<Request> decode_request(const std::vector<std::uint8_t>& body, std::string& error);
std::optional<Reply> decode_reply(const std::vector<std::uint8_t>& body, std::string& error);

std::string_view kind_name(ReplyKind k);

// Addresses parse with raftkit::parse_host_port (raftkit/host_port.hpp).


/// "a:1,b:2" -> {"a:1","b:2"}; each must parse as host:port. Error message or empty.
std::string parse_address_list(std::string_view s, std::vector<std::string>& out);

}  // namespace raftkit::counter

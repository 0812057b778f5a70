# raftkit.capnp — raftkit's wire schema (protocol version 1).
#
# The codec (codec.cpp) is the only code that reads or writes these structs;
# the rest of raftkit works on raftkit::Message. Every struct has explicit
# field numbers; fields are only ever added, never renumbered or retyped.
#
# One frame on the wire carries exactly one `Frame`: either a Raft message or,
# at the start of a TCP connection, a handshake or its reply. Enum values are
# checked on decode: an unknown MessageType or EntryType is a protocol error,
# never silently mapped to a default.

@0xae03c3451aa6d61d;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("raftkit::wire");

# Mirrors raftkit::MessageType; 0 is never valid on the wire.
enum MessageType {
  unspecified @0;
  append @1;
  appendResponse @2;
  vote @3;
  voteResponse @4;
  preVote @5;
  preVoteResponse @6;
  heartbeat @7;
  heartbeatResponse @8;
  snapshot @9;
  snapshotResponse @10;
  timeoutNow @11;
  readIndex @12;
  readIndexResponse @13;
}

# Mirrors raftkit::EntryType.
enum EntryType {
  normal @0;
  noop @1;
  membership @2;
}

struct Entry {
  term @0 :UInt64;
  index @1 :UInt64;
  type @2 :EntryType;
  payload @3 :Data;
}

struct Membership {
  voters @0 :List(UInt64);
  learners @1 :List(UInt64);
  votersOutgoing @2 :List(UInt64);
  staging @3 :List(UInt64);
  addresses @4 :List(Address);
  incarnations @5 :List(Incarnation);          # Membership::incarnations
  outgoingIncarnations @6 :List(Incarnation);  # Membership::outgoing_incarnations
  generation @7 :UInt64;                       # Membership::generation (0: the first)
}

struct Incarnation {
  node @0 :UInt64;
  incarnation @1 :UInt64;
}

struct Address {
  node @0 :UInt64;
  address @1 :Text;
}

struct SnapshotMeta {
  index @0 :UInt64;
  term @1 :UInt64;
  membership @2 :Membership;
}

# Mirrors raftkit::Message field by field.
struct Message {
  type @0 :MessageType;
  from @1 :UInt64;
  to @2 :UInt64;
  term @3 :UInt64;
  logTerm @4 :UInt64;
  index @5 :UInt64;
  commit @6 :UInt64;
  entries @7 :List(Entry);
  reject @8 :Bool;
  rejectHint @9 :UInt64;
  hintTerm @10 :UInt64;
  context @11 :UInt64;
  snapshot :union {
    none @12 :Void;            # std::nullopt
    meta @13 :SnapshotMeta;    # engaged optional
  }
  snapshotData @14 :Data;
  incarnation @15 :UInt64;
  generation @16 :UInt64;      # the sender's cluster generation (0: a new node no leader reached yet)
  group @17 :UInt64;           # the Raft group (raftkit::Host); 0: a single node's
}

# First frame of every TCP connection, sent by the connecting side.
struct Handshake {
  clusterId @0 :Text;          # operator-chosen cluster name; must match exactly
  nodeId @1 :UInt64;           # the connecting node
  protocolVersion @2 :UInt32;  # this schema's version: 2 (2: members and messages carry incarnations)
  expectedPeer @3 :UInt64;     # the node the connecting side believes it reached
  generation @4 :UInt64;       # the connecting node's cluster generation (0: a new node, or not known)
}

# The accepting side's answer. On refusal it closes the connection after it.
struct HandshakeReply {
  accepted @0 :Bool;
  nodeId @1 :UInt64;           # the accepting node
  reason @2 :Text;             # why it refused (empty when accepted)
  # What the accepting node says of itself (raftkit::ClusterStanding), for a
  # node that asks before it bootstraps (it refuses to if `member`). Absent
  # (false, 0) from an older peer.
  member @3 :Bool;             # it knows a committed entry or a leader of this cluster
  leader @4 :UInt64;           # whom it believes leads (0: unknown)
  commit @5 :UInt64;           # its commit index
}

# One piece of a snapshot streamed from a leader to a follower. A snapshot
# message travels as a stream of these (see tcp_transport.cpp); the receiver
# reassembles the data, checks `checksum`, and only then delivers `message`
# with the data to its node.
struct SnapshotChunk {
  message @0 :Message;       # the snapshot message: metadata, no data
  transfer @1 :UInt64;       # the sender's id for this stream; a new id restarts it
  offset @2 :UInt64;         # where `data` starts within the snapshot data
  totalBytes @3 :UInt64;     # length of the whole snapshot data
  checksum @4 :UInt32;       # CRC-32C of the whole snapshot data
  data @5 :Data;
}

# The receiver's answer to each chunk.
enum SnapshotAckStatus {
  receiving @0;              # `received` bytes held; send on from there
  gap @1;                    # a chunk came past `received`: rewind to it
  complete @2;               # whole, checksum verified, handed to the node
  failed @3;                 # refused (checksum, size or order): stream over
}

struct SnapshotAck {
  from @0 :UInt64;
  to @1 :UInt64;
  transfer @2 :UInt64;
  received @3 :UInt64;       # bytes held contiguously from offset 0
  status @4 :SnapshotAckStatus;
  group @5 :UInt64;          # the group of the snapshot's message
}

struct Frame {
  union {
    message @0 :Message;
    handshake @1 :Handshake;
    handshakeReply @2 :HandshakeReply;
    snapshotChunk @3 :SnapshotChunk;
    snapshotAck @4 :SnapshotAck;
  }
}

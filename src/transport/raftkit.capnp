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
  recovering @15 :UInt64;
  caughtUp @16 :UInt64;
}

# First frame of every TCP connection, sent by the connecting side.
struct Handshake {
  clusterId @0 :Text;          # operator-chosen cluster name; must match exactly
  nodeId @1 :UInt64;           # the connecting node
  protocolVersion @2 :UInt32;  # this schema's version: 1
  expectedPeer @3 :UInt64;     # the node the connecting side believes it reached
}

# The accepting side's answer. On refusal it closes the connection after it.
struct HandshakeReply {
  accepted @0 :Bool;
  nodeId @1 :UInt64;           # the accepting node
  reason @2 :Text;             # why it refused (empty when accepted)
}

struct Frame {
  union {
    message @0 :Message;
    handshake @1 :Handshake;
    handshakeReply @2 :HandshakeReply;
  }
}

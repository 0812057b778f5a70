# counter.capnp — the replicated counter's client protocol (version 1).
#
# Framing: every frame is a 4-byte big-endian body length followed by the
# body, a Cap'n Proto message in flat-array (unpacked, single-segment or
# multi-segment) form. A body is a multiple of 8 bytes and at most 64 KiB;
# the server checks the length before allocating and decodes with small
# ReaderOptions limits. One request, then one reply, per connection at a time.

@0xd1b5c0a2f4e3a771;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("raftkit::counter::wire");

struct Request {
  union {
    incr @0 :Int64;            # add this (may be negative) and return the new value
    get @1 :Void;              # linearizable read of the value, served by any node (no redirect)
    status @2 :Void;           # this node's view; never redirected
    transferLeader @3 :UInt64; # hand leadership to this node id
    addServer @4 :AddServer;   # add a node (leader; redirected like incr)
    removeServer @5 :UInt64;   # remove this node id (leader; redirected)
    snapshot @6 :Void;         # take a snapshot now on the node asked; never redirected
    getStale @7 :Void;         # NOT linearizable: the value as the node asked has applied it, at once
    updateServer @8 :AddServer; # change a member's Raft and client addresses (leader; redirected)
  }
}

struct AddServer {
  id @0 :UInt64;
  raftAddress @1 :Text;      # the new node's Raft transport host:port
  clientAddress @2 :Text;    # its client host:port (for redirects)
}

struct NodeInfo {
  id @0 :UInt64;
  role @1 :Text;
  term @2 :UInt64;
  leader @3 :UInt64;
  commit @4 :UInt64;
  applied @5 :UInt64;
  lastIndex @6 :UInt64;
  value @7 :Int64;           # the counter as applied locally (not linearizable)
  failure @8 :Text;
  clientAddress @9 :Text;
  # The configuration this node knows (applied or not yet committed).
  voters @10 :List(UInt64);
  learners @11 :List(UInt64);
  staging @12 :List(UInt64);         # being added: learners until caught up
  votersOutgoing @13 :List(UInt64);  # non-empty while a change is joint
  replacing @14 :Bool;               # a new incarnation (empty log) the leader has not swapped in yet
  snapshotIndex @15 :UInt64;         # the newest snapshot, taken or loaded
  incarnation @16 :UInt64;           # this node's incarnation (born with its log)
  diagnosis @17 :Text;               # why no leader is known, in one line (raftkit::diagnose); empty if one is
  diskFull @18 :Bool;                # log writes are refused with no_space (retried until space is freed)
  generation @19 :UInt64;            # the cluster generation (1 as bootstrapped, +1 per --force-new-cluster)
}

enum ReplyKind {
  ok @0;              # done; `value` holds the result (incr, get)
  notLeader @1;       # nothing was done; try `leaderAddress` (empty: unknown)
  failed @2;          # nothing was done (busy, dropped, bad request, ...)
  unknownOutcome @3;  # the command may or may not have been applied
}

struct Reply {
  kind @0 :ReplyKind;
  value @1 :Int64;
  code @2 :Text;           # machine-readable reason (an errc name), empty on ok
  message @3 :Text;        # human-readable
  leaderId @4 :UInt64;
  leaderAddress @5 :Text;  # the leader's client address, if known
  info @6 :NodeInfo;       # set for status
}

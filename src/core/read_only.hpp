// core/read_only.hpp — linearizable reads without writing the log.
//
// A read is linearizable if it observes every write committed before it
// began. The leader knows the latest commit index, but it cannot know,
// alone, that it is still the leader: a newer leader may have been elected
// behind a partition and committed more. Two ways out (thesis §6.4):
//
// ReadIndex. The leader notes its commit index when the read arrives, then
// sends a heartbeat round; once a quorum acknowledged that round (or a
// later one) no other leader can have existed at the moment the round
// left, so the noted index is at least every committed index, and the read
// may be served once the state machine has applied it. A new leader does
// not know its commit index until an entry of its own term commits, so
// reads that arrive before that wait for it (round 0 = "not yet started").
// Rounds are numbered; a follower echoes the number in its heartbeat answer
// and the leader keeps, per peer, the highest number acknowledged, so one
// round confirms every read that was waiting for it or an earlier one, and
// reads are answered in arrival order.
//
// One round for every read waiting (thesis §6.4; etcd's server does the
// same). A read does not send a round of its own: it waits, unstarted, and
// the Raft starts one round for all the unstarted reads when the next Ready
// (or take_messages) is taken — as proposals made until then share one
// append. At most one round that carries reads is in flight: reads that
// arrive while it is wait for the round after it, which starts once a
// quorum acknowledged the one in flight (or with the next periodic
// heartbeat, which carries them too, should the round's messages be lost).
// A read never joins a round that left before it arrived: an answer to
// that round may come from a follower that has since voted for a newer
// leader, which may already have committed a write the read must see.
// So n reads arriving together cost one round instead of n, and under load
// a round per round trip confirms everything that came in meanwhile.
//
// Lease. Every follower that acknowledged a heartbeat reset its election
// timer after that heartbeat left, and (with check-quorum) ignores vote
// requests for election_ticks ticks of its own clock. So for
// election_ticks - lease_margin_ticks ticks after the newest round that a
// quorum acknowledged was *sent*, no other leader can be elected and the
// leader may answer from its commit index at once. The bound is in ticks:
// every tick() call counts, so a runtime that falls behind must call tick()
// once per elapsed interval (missed ones included) or the lease outlives
// real time. A TimeoutNow breaks the argument — its target campaigns at
// once, and voters grant it although they just heard the leader — so after
// one is sent the lease is gone for the rest of the term, even if the
// transfer is abandoned (the message may still be in flight).
//
// A follower batches too (ForwardedReads): its reads wait until the next
// Ready and leave as one read_index request to the leader, whose answer
// serves them all; reads arriving while a request is unanswered wait for
// the next request (sent once the answer comes, or at the next tick should
// it be lost) — never riding on a request that left before they arrived,
// for the same reason as above.
//
// This class only keeps the bookkeeping; the Raft decides when rounds go
// out and who is answered how. It has no notion of roles: the Raft resets
// it whenever leadership changes.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "core/fifo.hpp"
#include "core/quorum.hpp"
#include "raftkit/types.hpp"

namespace raftkit::core {

/// A read waiting for a heartbeat round.
struct PendingRead {
  std::uint64_t context = 0;  ///< the caller's read_index() argument
  NodeId requester;           ///< this node, or the follower that forwarded it
  Index index;                ///< commit index to serve at
  std::uint64_t round = 0;    ///< heartbeat round that must be acknowledged (0: not started)
};

class ReadOnly {
  friend struct RaftInspector;  // raftkit-explore's state hash (see Raft)

 public:
  /// `lease_ticks`: how long a quorum-acknowledged round gives a lease
  /// (0: leases off). `horizon_ticks`: rounds older than this are forgotten.
  ReadOnly(std::uint64_t lease_ticks, std::uint64_t horizon_ticks)
      : lease_ticks_(lease_ticks), horizon_ticks_(horizon_ticks) {}

  /// Forgets every round, acknowledgement and lease (a new term or role).
  /// Pending reads must have been taken (take_all) before.
  void reset();

  // ---- ReadIndex ---------------------------------------------------------
  /// Queues a read. `r.round` is 0 (unstarted: it waits for the next round
  /// started) except under a deliberate bug.
  void add(const PendingRead& r) {
    pending_.push_back(r);
    if (r.round == 0) ++unstarted_;
  }
  bool has_pending() const { return !pending_.empty(); }
  /// Reads are waiting that no round has carried yet.
  bool has_unstarted() const { return unstarted_ != 0; }
  /// The last round that carried reads has not yet been acknowledged by a
  /// quorum of `membership`: reads arriving now wait for the next one.
  bool read_round_in_flight(const Membership& membership) const {
    return read_round_ != 0 && !round_acknowledged(membership, read_round_);
  }
  /// The last round that carried reads (0: none since reset()).
  std::uint64_t last_read_round() const { return read_round_; }
  /// The leader's first commit in its term: reads that arrived before it
  /// are served at that commit index.
  void set_index_of_unstarted(Index committed);
  /// Reads not yet waiting for a round now wait for `round`, a round
  /// numbered (new_round) after every one of them arrived.
  void start_unstarted(std::uint64_t round);
  /// Removes and returns, oldest first, the reads whose round a quorum of
  /// `membership` acknowledged.
  std::vector<PendingRead> take_confirmed(const Membership& membership);
  /// Removes and returns every pending read (leadership lost).
  std::vector<PendingRead> take_all();

  // ---- heartbeat rounds --------------------------------------------------
  /// Numbers a new heartbeat round sent at tick `now` by `self` (in its
  /// `incarnation`, which acknowledges it at once) and returns the number
  /// to send as context.
  std::uint64_t new_round(NodeId self, std::uint64_t incarnation, std::uint64_t now);
  /// Incarnation `incarnation` of `peer` answered the heartbeat of `round`
  /// (an answer of another incarnation than the last one replaces it: a
  /// round counts only from the incarnation the configuration names).
  void acknowledge(NodeId peer, std::uint64_t incarnation, std::uint64_t round);
  /// The last round numbered (0: none yet).
  std::uint64_t last_round() const { return round_; }

  // ---- lease -------------------------------------------------------------
  /// Whether the lease holds at tick `now`: the newest round acknowledged
  /// by a quorum left less than lease_ticks ago. Does not look at
  /// timeout_now_sent(); the caller decides.
  bool lease_holds(const Membership& membership, std::uint64_t now) const;
  /// A TimeoutNow left: no lease until reset().
  void note_timeout_now() { timeout_now_sent_ = true; }
  bool timeout_now_sent() const { return timeout_now_sent_; }

 private:
  bool round_acknowledged(const Membership& membership, std::uint64_t round) const;

  std::uint64_t lease_ticks_;
  std::uint64_t horizon_ticks_;
  Fifo<PendingRead> pending_;
  std::size_t unstarted_ = 0;                      // reads in pending_ with round 0
  std::uint64_t read_round_ = 0;                   // the last round that carried reads (0: none)
  std::uint64_t round_ = 0;                        // last round numbered
  struct Acked {
    std::uint64_t round = 0;        // highest round acknowledged
    std::uint64_t incarnation = 0;  // by this incarnation of the peer
  };
  std::map<NodeId, Acked> acked_;  // per peer
  Fifo<std::pair<std::uint64_t, std::uint64_t>> sent_at_;  // (round, tick), leases only
  bool timeout_now_sent_ = false;
};

/// A follower's reads on their way to the leader (see the file comment).
/// Request ids are drawn from `first_request` on (seed it with a number
/// drawn per start, so an answer to a previous incarnation's request can
/// never match a request of this one).
class ForwardedReads {
  friend struct RaftInspector;  // raftkit-explore's state hash (see Raft)

 public:
  explicit ForwardedReads(std::uint64_t first_request) : next_request_(first_request) {}

  /// A read to ask the leader about at the next flush.
  void add(std::uint64_t context) { waiting_.push_back(context); }
  /// Reads wait, and no request is unanswered (or a tick passed since the
  /// last one left): the next flush may send one.
  bool request_due() const { return !waiting_.empty() && may_send_; }
  /// Takes the reads waiting into a new request sent at tick `now`; returns
  /// its id (the context of the read_index message).
  std::uint64_t take_request(std::uint64_t now);
  /// The answer to request `id`: the reads it carried, oldest first (empty
  /// for an unknown or already answered id).
  std::vector<std::uint64_t> answer(std::uint64_t id);
  /// A tick: another request may leave even though one is unanswered (its
  /// message may be lost). Returns the reads of requests unanswered for
  /// more than `give_up_ticks` (their callers are told it failed).
  std::vector<std::uint64_t> tick(std::uint64_t now, std::uint64_t give_up_ticks);
  /// Removes and returns every read, sent or not (the leader is gone).
  std::vector<std::uint64_t> take_all();
  bool empty() const { return waiting_.empty() && asked_.empty(); }

 private:
  struct Request {
    std::uint64_t sent_at = 0;
    std::vector<std::uint64_t> contexts;
  };
  std::vector<std::uint64_t> waiting_;
  std::map<std::uint64_t, Request> asked_;
  std::uint64_t next_request_;
  bool may_send_ = true;
};

}  // namespace raftkit::core

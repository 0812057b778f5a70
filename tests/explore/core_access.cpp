// explore/core_access.cpp — the explorer's one window into the core's
// private state, and the one place that names the fields of messages and
// hard states that the recovery rework (node identity = id + incarnation)
// changes. When a field of core::Raft, LogView, ReadOnly or Inflights is
// added or removed, the size checks below stop the build: a field the hash
// left out would make the search merge states whose futures differ.
#include <fmt/format.h>

#include "explore/hash.hpp"
#include "explore/model.hpp"

namespace raftkit::core {

struct RaftInspector {
  static void add_membership(explore::Hasher& h, const Membership& m) {
    for (const auto* v : {&m.voters, &m.learners, &m.voters_outgoing, &m.staging}) {
      h.add(v->size());
      for (NodeId id : *v) h.add(id.value);
    }
    for (const auto* v : {&m.incarnations, &m.outgoing_incarnations}) {
      h.add(v->size());
      for (const auto& [id, incarnation] : *v) {
        h.add(id.value);
        h.add(incarnation);
      }
    }
    h.add(m.generation);
  }

  static void add_log(explore::Hasher& h, const LogView& log) {
    h.add(log.unstable_offset_.value);
    h.add(log.committed_.value);
    h.add(log.applied_.value);
    h.add(log.unstable_snapshot_ ? log.unstable_snapshot_->index.value + 1 : 0);
    if (log.unstable_snapshot_) {
      h.add(log.unstable_snapshot_->term.value);
      add_membership(h, log.unstable_snapshot_->membership);
    }
    h.add(log.unstable_.size());
    for (const Entry& e : log.unstable_) explore::add_entry(h, e);
  }

  static void add_progress(explore::Hasher& h, const Progress& p) {
    h.add(p.match.value);
    h.add(p.next.value);
    h.add(static_cast<std::uint64_t>(p.state) | std::uint64_t{p.probe_sent} << 8 | std::uint64_t{p.append_held} << 9 |
          std::uint64_t{p.recent_active} << 10 | std::uint64_t{p.learner} << 11);
    h.add(p.pending_snapshot.value);
    h.add(static_cast<std::uint64_t>(p.snapshot_ticks));
    h.add(p.heard_at);
    h.add(p.incarnation);
    h.add(p.stream);
    h.add(p.inflights.sent_.size());
    for (const auto& s : p.inflights.sent_) h.add(s.last.value);
  }

  static void add_read_only(explore::Hasher& h, const ReadOnly& r) {
    h.add(r.pending_.size());
    for (const PendingRead& p : r.pending_) {
      h.add(p.context);
      h.add(p.requester.value);
      h.add(p.index.value);
      h.add(p.round);
    }
    h.add(r.round_);
    for (const auto& [id, acked] : r.acked_) {
      h.add(id.value);
      h.add(acked.round);
      h.add(acked.incarnation);
    }
    h.add(r.sent_at_.size());
    for (const auto& [round, tick] : r.sent_at_) {
      h.add(round);
      h.add(tick);
    }
    h.add(r.timeout_now_sent_);
    h.add(r.unstarted_);
    h.add(r.read_round_);
  }

  static void add_forwarded(explore::Hasher& h, const ForwardedReads& f) {
    h.add(f.waiting_.size());
    for (std::uint64_t c : f.waiting_) h.add(c);
    h.add(f.asked_.size());
    for (const auto& [id, req] : f.asked_) {
      h.add(id);
      h.add(req.sent_at);
      h.add(req.contexts.size());
      for (std::uint64_t c : req.contexts) h.add(c);
    }
    h.add(f.next_request_);
    h.add(f.may_send_);
  }

  static void add_messages(explore::Hasher& h, const std::vector<Message>& v) {
    h.add(v.size());
    for (const Message& m : v) h.add(explore::message_hash(m));
  }

  /// Everything that decides the Raft's future behaviour, except the
  /// random generator's position (see README: the election timeout drawn
  /// last is hashed, the draws to come are not). Untimed (only a leader
  /// ticks) the drawn timeout decides nothing and is left out too: it only
  /// told apart states whose nodes had drawn a different number of times.
  static void add_raft(explore::Hasher& h, const Raft& r, bool timed) {
    static_assert(sizeof(Raft) == 1512, "core::Raft changed: hash the new fields in RaftInspector::add_raft");
    static_assert(sizeof(LogView) == 328, "core::LogView changed: hash the new fields in add_log");
    static_assert(sizeof(ReadOnly) == 160, "core::ReadOnly changed: hash the new fields in add_read_only");
    static_assert(sizeof(Progress) == 128, "core::Progress changed: hash the new fields in add_progress");
    static_assert(sizeof(ForwardedReads) == 88, "core::ForwardedReads changed: hash the new fields in add_forwarded");
    add_log(h, r.log_);
    add_membership(h, r.membership_);
    for (const auto& [id, pr] : r.progress_.map()) {
      h.add(id.value);
      add_progress(h, pr);
    }
    h.add(static_cast<std::uint64_t>(r.role_));
    h.add(r.term_.value);
    h.add(r.vote_.value);
    h.add(r.leader_.value);
    for (const auto& [id, ballot] : r.votes_) {
      h.add(id.value * 2 + ballot.granted);
      h.add(ballot.incarnation);
    }
    h.add(static_cast<std::uint64_t>(r.election_elapsed_));
    h.add(static_cast<std::uint64_t>(r.heartbeat_elapsed_));
    if (timed) h.add(static_cast<std::uint64_t>(r.randomized_timeout_));
    h.add(r.transferee_.value);
    h.add(r.uncommitted_bytes_);
    h.add(r.config_index_.value);
    h.add(r.pending_conf_index_.value);
    h.add(std::uint64_t{r.leaving_} << 1 | std::uint64_t{r.ready_outstanding_} << 2 |
          std::uint64_t{r.broadcast_pending_} << 3);
    h.add(r.incarnation_);
    h.add(r.vote_quiet_until_);
    h.add(r.generation_);
    // incarnation_changes_, generation_refusals_ and last_refusal_ only
    // count (for metrics and logs): not part of the state.
    // bugs_ (only in a build with planted bugs; its size hides in padding,
    // so sizeof(Raft) is the same without): the Config's, in every node alike.
    add_read_only(h, r.read_only_);
    add_forwarded(h, r.forwarded_);
    h.add(r.early_appends_.size() << 1 | std::uint64_t{r.matched_in_term_});
    for (const auto& [prev, m] : r.early_appends_) h.add(explore::message_hash(m));
    h.add(r.ticks_);
    explore::add_hard_state(h, r.persisted_hs_);
    add_messages(h, r.msgs_);
    add_messages(h, r.persisted_msgs_);
    for (const ReadState& rs : r.read_states_) {
      h.add(rs.index.value);
      h.add(rs.context);
    }
    for (const FailedRead& f : r.failed_reads_) h.add(f.context);
  }

  static int election_elapsed(const Raft& r) { return r.election_elapsed_; }
};

}  // namespace raftkit::core

namespace raftkit::explore {

void add_hard_state(Hasher& h, const HardState& hs) {
  h.add(hs.term.value);
  h.add(hs.vote.value);
  h.add(hs.commit.value);
  h.add(hs.incarnation);
  h.add(hs.generation);
}

// The incarnation a node takes when its store names none and it does not
// bootstrap: one per start (distinct from kBootstrapIncarnation), so a wiped
// node comes back as a new incarnation, as the runtime's random draw makes it.
void set_identity(ProtocolOptions& o, std::uint32_t life) { o.incarnation = std::uint64_t{life} + 10; }

bool may_campaign_now(const core::Raft& r) {
  // A node that came back as a new incarnation campaigns only once it
  // counts (campaign() returns at once otherwise; the bugs do not change it).
  return r.counted();
}

bool counted_in(const Membership& m, NodeId id, bool outgoing, const core::Raft& node) {
  return incarnation_of(m, id, outgoing) == node.incarnation();
}

std::uint64_t counted_incarnation(const Membership& m, NodeId id, bool outgoing) {
  return incarnation_of(m, id, outgoing);
}
std::uint64_t incarnation_now(const core::Raft& node) { return node.incarnation(); }

bool same_incarnation(const core::Progress& pr, const Message& m) { return pr.incarnation == m.incarnation; }

void add_raft(Hasher& h, const core::Raft& r, bool timed) { core::RaftInspector::add_raft(h, r, timed); }
int election_elapsed(const core::Raft& r) { return core::RaftInspector::election_elapsed(r); }

std::uint64_t message_hash(const Message& m) {
  Hasher h;
  h.add(static_cast<std::uint64_t>(m.type) | m.from.value << 8 | m.to.value << 24 | std::uint64_t{m.reject} << 40);
  h.add(m.term.value);
  h.add(m.log_term.value);
  h.add(m.index.value);
  h.add(m.commit.value);
  h.add(m.entries.size());
  for (const Entry& e : m.entries) add_entry(h, e);
  h.add(m.reject_hint.value);
  h.add(m.hint_term.value);
  h.add(m.context);
  if (m.snapshot) {
    h.add(m.snapshot->index.value);
    h.add(m.snapshot->term.value);
    core::RaftInspector::add_membership(h, m.snapshot->membership);
  }
  h.add(m.incarnation);
  h.add(m.generation);
  return h.done();
}

std::string describe_identity(const Message& m) {
  // Only an incarnation other than a bootstrap node's is worth a word.
  return m.incarnation > kBootstrapIncarnation ? fmt::format(" (incarnation {})", m.incarnation) : std::string{};
}

std::string describe_hard_state(const HardState& hs) {
  return fmt::format("term {} vote n{} commit {}{}", hs.term, hs.vote, hs.commit,
                     hs.incarnation > kBootstrapIncarnation ? fmt::format(" incarnation {}", hs.incarnation) : "");
}

}  // namespace raftkit::explore

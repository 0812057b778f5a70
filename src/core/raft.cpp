// core/raft.cpp — the protocol rules. Section numbers refer to Ongaro's
// thesis ("Consensus: Bridging Theory and Practice", 2014).
#include "core/raft.hpp"

#include <algorithm>
#include <utility>

#include "core/invariant.hpp"
#include "core/quorum.hpp"
#include "raftkit/error.hpp"

namespace raftkit::core {

namespace {

// What an entry counts toward max_uncommitted_bytes: commands only. The
// leader's no-op (or first configuration) and membership changes count
// nothing, so a new leader without a quorum can still accept up to the whole
// limit, and its own entries never block a proposal.
std::size_t uncommitted_size(const Entry& e) {
  return e.type == EntryType::normal && !e.payload.empty() ? entry_bytes(e) : 0;
}

// A message from the network is checked before any rule looks at it: the
// core never aborts on what a peer sent.
bool well_formed(const Message& m, NodeId self) {
  if (m.from.is_none() || m.from == self || (m.to != self)) return false;
  if (m.type == MessageType::append) {
    for (std::size_t k = 0; k < m.entries.size(); ++k) {
      const Entry& e = m.entries[k];
      if (e.index != m.index + (k + 1) || e.term > m.term) return false;
      if (e.type != EntryType::normal && e.type != EntryType::noop && e.type != EntryType::membership) return false;
      if (e.type == EntryType::membership && !decode_membership(e.payload)) return false;
    }
    if (!m.entries.empty() && m.entries.front().term < m.log_term) return false;
  }
  if (m.type == MessageType::snapshot && (!m.snapshot || !membership_problem(m.snapshot->membership).empty()))
    return false;
  return true;
}

}  // namespace

Raft::Raft(const ProtocolOptions& options, const LogStore& store)
    : id_(options.id),
      options_(options),
      log_(store),
      rng_{options.seed * 0x9E3779B97F4A7C15ULL + options.id.value},
      read_only_(options.lease_reads ? static_cast<std::uint64_t>(options.election_ticks - options.lease_margin_ticks) : 0,
                 static_cast<std::uint64_t>(options.election_ticks)),
      // Request ids of this start: the runtime draws options.incarnation at
      // random on every start (Driver), so they never meet an earlier start's.
      forwarded_(options.incarnation | (std::uint64_t{1} << 63)) {
  const std::string problem = options.validate();
  RAFTKIT_ASSERT(problem.empty(), "invalid ProtocolOptions: {}", problem);
  const HardState hs = store.hard_state();
  persisted_hs_ = hs;
  const SnapshotMeta snap = store.snapshot_meta();
  if (snap.index != Index{}) {
    membership_ = snap.membership;
    config_index_ = snap.index;
  }
  // The configuration in force is the last one committed: the snapshot's,
  // or a later membership entry up to the durable commit index.
  for (Index lo = log_.first_index(), hi = std::min(hs.commit, log_.last_index()); lo <= hi;) {
    std::vector<Entry> batch;
    if (log_.slice(lo, hi + 1, std::size_t{4} << 20, batch) || batch.empty()) break;
    for (const Entry& e : batch) {
      if (e.type != EntryType::membership) continue;
      if (auto m = decode_membership(e.payload)) {
        membership_ = std::move(*m);
        config_index_ = e.index;
      }
    }
    lo = batch.back().index + 1;
  }
  // A store that never heard of a term, an entry or a snapshot belongs to a
  // node that never took part in anything: it may still bootstrap, even
  // though an earlier start without bootstrap gave it a random incarnation
  // (a newcomer who forgot the flag, then restarts with it). Switching that
  // incarnation for the bootstrap one is safe:
  // - the random incarnation was never counted anywhere: a configuration
  //   names a new incarnation only once a leader swapped it in, after it
  //   caught up, so a counted node has received entries (last index > 0);
  //   and it never voted (a vote is cast in a term > 0, made durable first);
  // - it said nothing that counts: every answer it sends carries the term it
  //   answers, durable before it leaves, and the store holds term 0;
  // - so the node is, as far as any cluster can tell, a node starting for
  //   the first time with bootstrap on, which is what it becomes. (That an
  //   empty store may be a wiped disk of a node that did take part is the
  //   same risk as any first start with bootstrap: the operator's flag says
  //   it is not.)
  const bool untouched = store.last_index() == Index{} && snap.index == Index{} && hs.term == Term{};
  if (options.bootstrap && (hs.incarnation == 0 || untouched)) {
    incarnation_ = kBootstrapIncarnation;
  } else if (hs.incarnation != 0) {
    incarnation_ = hs.incarnation;
  } else {
    // A log born now (a new server, or one whose disk was wiped): a new
    // incarnation of this id, which counts for nothing until a leader swaps
    // it into the configuration.
    incarnation_ = options.incarnation >= 2 ? options.incarnation : 2 + rng_() % (~std::uint64_t{0} - 2);
  }
  if (config_index_ == Index{} && incarnation_ == kBootstrapIncarnation) membership_ = bootstrap_membership(options);
  // A restart: a lease this node acknowledged before may still run on its
  // leader (thesis §4.2.3 and §6.4.1); only leases depend on it.
  if (!untouched && options.lease_reads) vote_quiet_until_ = static_cast<std::uint64_t>(options.election_ticks);
  derive_generation(hs, snap, store.last_index());
  term_ = hs.term;
  vote_ = hs.vote;
  become_follower(term_, NodeId{});
  vote_ = hs.vote;  // become_follower keeps the vote of an unchanged term
  if (options.force_new_cluster) force_new_cluster();
}

// The generation: the one recorded; else that of the configuration in force
// (1 if it names none) for a node that bootstraps or whose log was written
// before generations were recorded; else, for a new log over a kept
// snapshot, that snapshot's (so a snapshot of a generation left behind by a
// recovery is refused, never taken for the new history); else none (0)
// until a leader gives it its own (admits_generation).
void Raft::derive_generation(const HardState& hs, const SnapshotMeta& snap, Index stored_last) {
  const auto named = [](const Membership& m) { return std::max<std::uint64_t>(1, m.generation); };
  if (hs.generation != 0) {
    generation_ = hs.generation;
  } else if (incarnation_ == kBootstrapIncarnation || (hs.incarnation != 0 && stored_last != Index{})) {
    generation_ = named(membership_);
    // Derived the same way at every start: it needs no write of its own (it
    // goes with the next hard state written).
    persisted_hs_.generation = generation_;
  } else if (snap.index != Index{}) {
    generation_ = named(snap.membership);
  } else {
    generation_ = 0;
  }
}

// Recovery from a lost majority. The survivor keeps its log and state and
// becomes, in a new term and a new generation, the only voter of a new
// configuration (keeping its own address and incarnation). That entry and
// every entry before it are committed by the operator's decision, not by a
// quorum: entries this node holds but the old cluster never committed are
// committed now, and entries the old cluster committed without this node
// are lost. The new term (with this node's vote) is never reused by it, and
// the new generation makes every member of the old one a stranger
// (admits_generation), whatever its term or log: the old and the new
// cluster can never exchange an entry, a vote or an acknowledgement.
void Raft::force_new_cluster() {
  RAFTKIT_ASSERT(log_.last_index() != Index{}, "force_new_cluster on node {}: its store is empty", id_);
  Membership forced{{id_}, {}, {}, {}, {}, {}, {}};
  // This node's address as its log last named it (the last configuration
  // appended, committed or not).
  std::optional<Membership> last = membership_;
  for (Index lo = log_.first_index(), hi = log_.last_index(); lo <= hi;) {
    std::vector<Entry> batch;
    if (log_.slice(lo, hi + 1, std::size_t{4} << 20, batch) || batch.empty()) break;
    for (const Entry& e : batch)
      if (e.type == EntryType::membership)
        if (auto m = decode_membership(e.payload)) last = std::move(m);
    lo = batch.back().index + 1;
  }
  if (auto it = last->addresses.find(id_); it != last->addresses.end()) forced.addresses.emplace(id_, it->second);
  set_incarnation(forced, id_, incarnation_);
  generation_ += 1;
  forced.generation = generation_;
  become_follower(term_.next(), NodeId{});
  vote_ = id_;  // this term is the recovery's: this node votes for no one else in it
  append_to_log({Entry{term_, Index{}, EntryType::membership, encode_membership(forced)}});
  uncommitted_bytes_ = 0;
  log_.commit_to(log_.last_index());
  membership_ = std::move(forced);
  config_index_ = log_.last_index();
  become_follower(term_, NodeId{});  // progress for the new configuration
}

// The configuration of a node that bootstrapped its cluster and knows no
// configuration committed yet. Its log, if not empty, starts with the entry
// the cluster's first leader wrote (become_leader): that entry, not this
// start's options, is the cluster's configuration, so a node restarted with
// edited peers neither counts votes by them nor writes them to the log as a
// second configuration without a joint step. An empty log: the options name
// the voters, each in its bootstrap incarnation.
Membership Raft::bootstrap_membership(const ProtocolOptions& options) const {
  if (log_.last_index() >= Index{1} && log_.first_index() == Index{1}) {
    std::vector<Entry> first;
    if (!log_.slice(Index{1}, Index{2}, std::size_t{4} << 20, first) && !first.empty() &&
        first.front().type == EntryType::membership)
      if (auto m = decode_membership(first.front().payload)) return std::move(*m);
  }
  Membership m{options.initial_voters, {}, {}, {}, {}, {}, {}};
  for (const auto& [id, address] : options.initial_addresses)
    if (is_member(m, id)) m.addresses.emplace(id, address);
  return m;
}

// ---------------------------------------------------------------------------
// Time

void Raft::tick() {
  ++ticks_;
  ++election_elapsed_;
  if (role_ != Role::leader) {
    // A request whose answer is lost must not hold the reads behind it, nor
    // its own for ever (their callers hear not_leader and may retry).
    if (!forwarded_.empty())
      for (std::uint64_t context : forwarded_.tick(ticks_, 2 * static_cast<std::uint64_t>(options_.election_ticks)))
        failed_reads_.push_back({context, leader_});
    if (counted() && election_elapsed_ >= randomized_timeout_) {
      election_elapsed_ = 0;
      campaign(options_.pre_vote, false);
    }
    return;
  }
  ++heartbeat_elapsed_;
  if (election_elapsed_ >= options_.election_ticks) {
    election_elapsed_ = 0;
    // Check quorum (§6.2): a leader cut off from a majority steps down, so
    // clients go elsewhere instead of waiting on a leader that cannot commit.
    if (options_.check_quorum && !quorum_active()) {
      become_follower(term_, NodeId{});
      return;
    }
    // A transfer that has not completed within an election timeout is
    // abandoned (§3.10) so that proposals resume.
    if (!transferee_.is_none()) abort_transfer();
  }
  // The runtime reports each snapshot's fate (report_snapshot); a report
  // that never comes (a lost message, a transport that cannot tell) must
  // not stall the follower forever, so after a few election timeouts
  // without an answer the leader probes again, which resends the snapshot
  // if it is still needed.
  for (auto& [id, pr] : progress_.map()) {
    if (pr.state == ProgressState::snapshot && ++pr.snapshot_ticks > snapshot_fallback_ticks()) pr.become_probe();
  }
  if (heartbeat_elapsed_ >= options_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    // Reads waiting ride along (the round leaves after they arrived); this
    // also carries them on should the round in flight have been lost.
    if (read_only_.has_unstarted() && committed_in_term()) {
      start_read_round();
    } else {
      broadcast_heartbeat(read_only_.new_round(id_, incarnation_, ticks_));
    }
  }
}


void Raft::report_unreachable(NodeId peer) {
  if (role_ != Role::leader) return;
  Progress* pr = progress_.find(peer);
  if (pr && pr->state == ProgressState::replicate) pr->become_probe();
}

void Raft::report_snapshot(NodeId peer, bool ok) {
  if (role_ != Role::leader) return;
  Progress* pr = progress_.find(peer);
  if (!pr || pr->state != ProgressState::snapshot) return;
  // Delivered: the follower's answer (or, if that is lost, the next
  // heartbeat answer) resumes replication after the snapshot. Failed: forget
  // it, and the next heartbeat answer probes from match again, which sends
  // a fresh snapshot if the log still cannot serve the follower. Either
  // way nothing is sent before the follower has been heard from again.
  if (!ok) pr->pending_snapshot = Index{};
  pr->become_probe();
  pr->probe_sent = true;
}

int Raft::snapshot_fallback_ticks() const { return kSnapshotFallbackElections * options_.election_ticks; }

void Raft::reset_randomized_timeout() {
  const auto t = static_cast<std::uint64_t>(options_.election_ticks);
  randomized_timeout_ = static_cast<int>(t + rng_() % t);  // uniform enough in [T, 2T)
}

// ---------------------------------------------------------------------------
// Role transitions

void Raft::reset(Term term) {
  if (term != term_) {
    term_ = term;
    vote_ = NodeId{};
  }
  leader_ = NodeId{};
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  broadcast_pending_ = false;
  reset_randomized_timeout();
  abort_transfer();
  votes_.clear();
  fail_pending_reads();
  read_only_.reset();
  uncommitted_bytes_ = 0;
  if (!planted(bug_early_appends_outlive_term)) [[likely]]
    early_appends_.clear();
  matched_in_term_ = false;

  progress_.map().clear();
  for (NodeId id : members_of(membership_)) {
    Progress pr(log_.last_index() + 1, options_.max_inflight_messages, options_.max_inflight_bytes);
    pr.learner = !is_voter(id);
    pr.incarnation = id == id_ ? incarnation_ : named_incarnation(id);
    if (id == id_) pr.match = log_.persisted_last_index();
    progress_.map().emplace(id, std::move(pr));
  }
}

void Raft::become_follower(Term term, NodeId leader) {
  reset(term);
  role_ = Role::follower;
  leader_ = leader;
}

void Raft::become_pre_candidate() {
  RAFTKIT_ASSERT(role_ != Role::leader, "leader cannot pre-campaign");
  // A pre-candidate changes neither its term nor its vote (§9.6).
  role_ = Role::pre_candidate;
  leader_ = NodeId{};
  votes_.clear();
  election_elapsed_ = 0;
  reset_randomized_timeout();
  fail_pending_reads();
}

void Raft::become_candidate() {
  RAFTKIT_ASSERT(role_ != Role::leader, "leader cannot campaign");
  reset(term_.next());
  vote_ = id_;
  role_ = Role::candidate;
}

void Raft::become_leader() {
  RAFTKIT_ASSERT(role_ != Role::follower, "follower cannot become leader directly");
  reset(term_);
  role_ = Role::leader;
  leader_ = id_;
  for (auto& [id, pr] : progress_.map()) pr.recent_active = (id == id_);
  // Any membership entry not yet applied may be a change in flight.
  pending_conf_index_ = log_.last_index();
  leaving_ = !membership_.voters.empty() &&
             std::find(membership_.voters.begin(), membership_.voters.end(), id_) == membership_.voters.end();
  // A no-op in the new term lets the leader commit, and so learn, every
  // entry of earlier terms (§3.6.2, Figure 3.7); reads wait for it (§6.4).
  // The first leader of a new cluster writes the configuration it was
  // started with instead, so from then on the log holds it. A log that is
  // not empty already starts with that entry (bootstrap_membership()).
  if (log_.last_index() == Index{}) {
    append_to_log({Entry{term_, Index{}, EntryType::membership, encode_membership(membership_)}});
    pending_conf_index_ = log_.last_index();
  } else {
    append_to_log({Entry{term_, log_.last_index() + 1, EntryType::noop, {}}});
  }
}

void Raft::campaign() { campaign(options_.pre_vote, false); }

void Raft::campaign(bool pre_vote, bool transfer) {
  if (role_ == Role::leader || !counted() || campaigns_held_) return;
  // A configuration known committed but not yet applied would decide this
  // election; counting votes in the older one could elect a node with a
  // quorum the newer configuration never agreed to (etcd's hup() waits too).
  if (has_unapplied_membership()) return;
  // A snapshot accepted but not yet persisted is part of our log as far as
  // the vote requests would say, but not as far as a restart would know:
  // wait until it is durable (etcd's hup does the same).
  if (log_.unstable_snapshot()) return;
  Term vote_term;
  MessageType request;
  if (pre_vote) {
    become_pre_candidate();
    vote_term = term_.next();
    request = MessageType::pre_vote;
  } else {
    become_candidate();
    vote_term = term_;
    request = MessageType::vote;
  }
  votes_[id_] = Ballot{true, incarnation_};
  if (tally_votes() == VoteResult::won) {  // a single voter
    if (pre_vote) {
      campaign(false, transfer);
    } else {
      become_leader();
      broadcast_append();
    }
    return;
  }
  for (NodeId peer : members_of(membership_)) {
    if (peer == id_ || !is_voter(peer)) continue;
    Message m;
    m.type = request;
    m.to = peer;
    m.term = vote_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    m.context = transfer ? kTransferContext : 0;
    send(std::move(m));
  }
}

#ifdef RAFTKIT_PLANTED_BUGS
void Raft::plant_bugs(ProtocolBugs bugs) { bugs_ = bugs; }
#endif

VoteResult Raft::tally_votes() const {
  if (planted(bug_votes_by_id)) [[unlikely]]
    return quorum_vote<true>(membership_, votes_);
  return quorum_vote(membership_, votes_);
}

void Raft::poll_votes() {
  switch (tally_votes()) {
    case VoteResult::won:
      if (role_ == Role::pre_candidate) {
        campaign(false, false);
      } else {
        become_leader();
        broadcast_append();
      }
      break;
    case VoteResult::lost:
      become_follower(term_, NodeId{});
      break;
    case VoteResult::pending:
      break;
  }
}

// ---------------------------------------------------------------------------
// Messages

void Raft::step(const Message& m) {
  if (!well_formed(m, id_)) return;
  if (!admits_generation(m)) return;
  const bool vote_request = m.type == MessageType::vote || m.type == MessageType::pre_vote;

  if (m.term > term_) {
    if (vote_request) {
      // While a node hears from a leader it ignores vote requests, so a
      // node that was partitioned away cannot depose a healthy leader
      // (§4.2.3) — unless the leader itself asked for the election. With
      // check_quorum off this holds only for requests from outside the
      // configuration: a removed server that never learned of its removal
      // (and so times out and campaigns again and again) disrupts nothing
      // while the cluster has a leader (thesis §4.2.3).
      const bool in_lease = (options_.check_quorum || !is_member(membership_, m.from)) && !leader_.is_none() &&
                            election_elapsed_ < options_.election_ticks;
      if (in_lease && m.context != kTransferContext) return;
    }
    if (m.type == MessageType::pre_vote) {
      // Never change term on a pre-vote request.
    } else if (m.type == MessageType::pre_vote_response && !m.reject) {
      // The term of a granted pre-vote is the one we will campaign in.
    } else if (m.type == MessageType::append || m.type == MessageType::heartbeat ||
               m.type == MessageType::snapshot) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, NodeId{});
    }
  } else if (m.term < term_) {
    if (m.type == MessageType::append || m.type == MessageType::heartbeat) {
      // "Reply false if term < currentTerm": the stale leader learns the new
      // term from this answer and steps down (with check-quorum it could
      // otherwise stay stuck).
      Message r;
      r.type = MessageType::append_response;
      r.to = m.from;
      send(std::move(r));
    } else if (m.type == MessageType::pre_vote) {
      Message r;
      r.type = MessageType::pre_vote_response;
      r.to = m.from;
      r.reject = true;
      send(std::move(r));
    }
    return;
  }

  if (vote_request) {
    handle_vote_request(m);
    return;
  }
  switch (role_) {
    case Role::leader: step_leader(m); break;
    case Role::candidate:
    case Role::pre_candidate: step_candidate(m); break;
    case Role::follower: step_follower(m); break;
    case Role::starting:
    case Role::stopped: break;  // the runtime's roles, never a core's
  }
}

// A recovered cluster and the members of the generation it left behind
// must never merge: an old member's log may hold entries the old majority
// committed without the survivor, and the survivor's log entries the old
// cluster never committed; either side taking the other's entries (or
// votes, or acknowledgements) would break state machine safety. So any
// message of another generation is dropped before its term is even looked
// at (an old member's higher term must not depose the new leader). A new
// node (generation 0) takes the generation of the first leader that
// reaches it, and its own messages carry 0 until then, which every node
// hears.
bool Raft::admits_generation(const Message& m) {
  if (m.generation == generation_ || m.generation == 0 || planted(bug_generations_merge)) return true;
  if (generation_ == 0) {
    const bool from_leader =
        m.type == MessageType::append || m.type == MessageType::heartbeat || m.type == MessageType::snapshot;
    if (from_leader) generation_ = m.generation;
    return true;
  }
  ++generation_refusals_;
  last_refusal_ = {m.from, m.generation};
  return false;
}

void Raft::handle_vote_request(const Message& m) {
  const bool pre = m.type == MessageType::pre_vote;
  // §3.4: at most one vote per term, first come first served; a pre-vote
  // for a future term commits to nothing.
  // A node that just restarted may have acknowledged a leader whose lease
  // still runs: it grants nothing for one election timeout, unless the
  // leader itself asked for the election (thesis §4.2.3, for a restart).
  const bool quiet =
      ticks_ < vote_quiet_until_ && m.context != kTransferContext && !planted(bug_votes_right_after_start);
  const bool can_vote =
      !quiet && (vote_ == m.from || (vote_.is_none() && leader_.is_none()) || (pre && m.term > term_));
  Message r;
  r.type = pre ? MessageType::pre_vote_response : MessageType::vote_response;
  r.to = m.from;
  // §5.4.1: only to a candidate whose log is at least as up to date.
  if (can_vote && (planted(bug_vote_ignores_log) || log_.is_up_to_date(m.index, m.log_term))) {
    r.term = m.term;
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.reject = true;
  }
  send(std::move(r));
}

void Raft::step_follower(const Message& m) {
  const bool from_leader =
      m.type == MessageType::append || m.type == MessageType::heartbeat || m.type == MessageType::snapshot;
  if (from_leader) {
    election_elapsed_ = 0;
    leader_ = m.from;
  }
  switch (m.type) {
    case MessageType::append:
      handle_append(m);
      break;
    case MessageType::heartbeat:
      handle_heartbeat(m);
      break;
    case MessageType::snapshot:
      handle_snapshot(m);
      break;
    case MessageType::timeout_now:
      // §3.10: the leader asks us to start an election at once.
      campaign(false, true);
      break;
    case MessageType::read_index_response:
      // The answer to one request: it serves (or fails) every read it carried.
      for (std::uint64_t context : forwarded_.answer(m.context)) {
        if (m.reject) {
          failed_reads_.push_back({context, leader_ == m.from ? NodeId{} : leader_});
        } else {
          read_states_.push_back({m.index, context});
        }
      }
      break;
    case MessageType::read_index:
      // A node that took us for the leader: answer at once that we cannot
      // serve it, so its caller hears "not leader" now instead of waiting
      // for its timeout. (etcd forwards the request to the leader with the
      // requester's id as sender; raftkit's transports check that a
      // message's sender is the connection's peer, so a forwarded message
      // would be refused — see ETCD_CONFORMANCE.md.)
      reject_read_index(m);
      break;
    default:
      break;
  }
}

void Raft::reject_read_index(const Message& m) {
  Message r;
  r.type = MessageType::read_index_response;
  r.to = m.from;
  r.reject = true;
  r.context = m.context;
  send(std::move(r));
}

void Raft::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::append:
    case MessageType::heartbeat:
    case MessageType::snapshot:
      // A leader exists in our term: §3.4, return to follower.
      become_follower(m.term, m.from);
      step_follower(m);
      break;
    case MessageType::pre_vote_response:
      if (role_ == Role::pre_candidate) {
        votes_.emplace(m.from, Ballot{!m.reject, m.incarnation});
        poll_votes();
      }
      break;
    case MessageType::vote_response:
      if (role_ == Role::candidate) {
        votes_.emplace(m.from, Ballot{!m.reject, m.incarnation});
        poll_votes();
      }
      break;
    case MessageType::read_index:
      reject_read_index(m);
      break;
    default:
      break;
  }
}

void Raft::handle_append(const Message& m) {
  Message r;
  r.type = MessageType::append_response;
  r.to = m.from;
  r.context = m.context;  // the leader's run of appends (Progress::stream)
  if (m.index < log_.committed()) {
    // Everything up to our commit index already matches the leader's log.
    r.index = log_.committed();
    send(std::move(r));
    return;
  }
  std::optional<Index> last;
  const Index last_new = m.index + m.entries.size();
  if (planted(bug_truncate_matched) && !m.entries.empty() && log_.matches(m.index, m.log_term) &&
      log_.last_index() > last_new && m.entries.front().index > log_.committed()) [[unlikely]] {
    log_.append(m.entries);  // a stale append replaces everything after its `prev`, matching entries too
    log_.commit_to(std::min(m.commit, last_new));
    last = last_new;
  } else {
    last = log_.maybe_append(m.index, m.log_term, m.commit, m.entries);
  }
  if (last) {
    matched_in_term_ = true;
    r.index = take_early_appends(*last);
  } else {
    if (matched_in_term_ && m.index > log_.last_index() && !m.entries.empty() &&
        early_appends_.size() < options_.max_inflight_messages) {
      // A gap: an earlier append is late (the Transport may reorder a
      // window) or lost. Keep this one for when the log reaches it, and
      // reject it all the same, so that the leader resends from where the
      // log ends as soon as it would have without.
      early_appends_.insert_or_assign(m.index, m);
    }
    // §5.3 with the optimisation of §3.5: tell the leader where our log
    // could match, skipping the whole conflicting term.
    r.reject = true;
    r.index = m.index;
    auto [hint, hint_term] = log_.find_conflict_by_term(m.index, m.log_term);
    r.reject_hint = hint;
    r.hint_term = hint_term;
  }
  send(std::move(r));
}

Index Raft::take_early_appends(Index last) {
  while (!early_appends_.empty() && early_appends_.begin()->first <= log_.last_index()) {
    const Message e = std::move(early_appends_.begin()->second);
    early_appends_.erase(early_appends_.begin());
    // All of one leader's term (reset clears them), so the log cannot
    // conflict with them: each either extends the log or is already in it
    // (a duplicate), and the last index each proves is the leader's too.
    if (const std::optional<Index> l = log_.maybe_append(e.index, e.log_term, e.commit, e.entries))
      last = std::max(last, *l);
  }
  return last;
}

void Raft::handle_heartbeat(const Message& m) {
  // The leader capped the commit at the match of the follower it tracks,
  // which may be a previous incarnation of this node with another log: we
  // commit only if we hold the entry the heartbeat names (log matching
  // then says everything before it is the leader's too).
  if (m.commit > log_.committed() && log_.matches(m.commit, m.log_term)) log_.commit_to(m.commit);
  Message r;
  r.type = MessageType::heartbeat_response;
  r.to = m.from;
  r.context = m.context;
  send(std::move(r));
}

void Raft::handle_snapshot(const Message& m) {
  const SnapshotMeta& snap = *m.snapshot;
  Message r;
  r.type = MessageType::snapshot_response;
  r.to = m.from;
  if (snap.index <= log_.committed()) {
    r.index = log_.committed();
  } else if (log_.matches(snap.index, snap.term)) {
    // We already hold the snapshot's last entry: just commit up to it.
    log_.commit_to(snap.index);
    r.index = snap.index;
  } else {
    log_.restore(snap);
    early_appends_.clear();
    membership_ = snap.membership;
    config_index_ = snap.index;
    snapshot_data_ = m.snapshot_data;
    r.index = snap.index;
  }
  send(std::move(r));
}

// ---------------------------------------------------------------------------
// Leader

void Raft::step_leader(const Message& m) {
  Progress* pr = progress_.find(m.from);
  if (m.type == MessageType::read_index) {
    if (pr) handle_read_index(m);
    return;
  }
  if (!pr) return;  // not a member
  if (m.incarnation != pr->incarnation) {
    // Another incarnation of this follower: the one tracked so far, or the
    // one speaking now, lost its log (a message of the previous one may
    // arrive late). Nothing either acknowledged holds for the other: the
    // progress starts afresh for the one speaking, and its statements count
    // only where the configuration names it (maybe_commit).
    const bool any = m.type == MessageType::snapshot_response && planted(bug_snapshot_answer_any_incarnation);
    if (!any) {
      pr->restart_as(m.incarnation);
      ++incarnation_changes_;
      send_append(m.from, true);  // probe the new incarnation's log from the start
    }
  }
  pr->recent_active = true;
  pr->heard_at = ticks_ + 1;  // 0 stays "never"
  switch (m.type) {
    case MessageType::append_response:
      handle_append_response(m, *pr);
      break;
    case MessageType::heartbeat_response:
      handle_heartbeat_response(m, *pr);
      break;
    case MessageType::snapshot_response:
      // In snapshot state, or in probe after report_snapshot(): the answer
      // says where the follower's log now ends; probe from there.
      if (pr->state == ProgressState::replicate) break;
      if (!m.reject) pr->maybe_update(std::min(m.index, log_.last_index()));
      if (pr->state == ProgressState::snapshot) pr->become_probe();
      pr->probe_sent = false;
      send_append(m.from, true);
      break;
    default:
      break;
  }
}

void Raft::handle_append_response(const Message& m, Progress& pr) {
  if (m.index > log_.last_index()) return;  // acknowledges what we never sent
  if (m.reject) {
    // A rejection of an earlier run of appends (a context of 0 comes from a
    // node that does not echo it) is stale: the run now in flight may be
    // accepted, and restarting it for every late rejection of a reordered
    // window multiplies the appends in flight.
    if (m.context != 0 && m.context != pr.stream && !planted(bug_stale_rejections)) return;
    Index probe_at = m.reject_hint;
    if (m.hint_term > Term{}) probe_at = log_.find_conflict_by_term(m.reject_hint, m.hint_term).first;
    if (pr.maybe_decrease_to(m.index, probe_at)) {
      if (pr.state == ProgressState::replicate) pr.become_probe();
      send_append(m.from, true);
    }
    return;
  }
  // An acknowledgement equal to match still proves where a probed
  // follower's log ends: a caught-up follower must not stay in probe.
  const bool grew = pr.maybe_update(m.index);
  if (!grew && !(pr.state == ProgressState::probe && pr.match == m.index)) {
    pr.probe_sent = false;  // an answer to a probe, even a duplicate, unpauses it
    return;
  }
  switch (pr.state) {
    case ProgressState::probe: pr.become_replicate(); break;
    case ProgressState::snapshot:
      // The follower acknowledged entries the log can continue from (it
      // caught up some other way, or the snapshot's index was passed):
      // replicate from the log, whatever became of the snapshot.
      if (pr.match + 1 >= log_.first_index()) {
        pr.become_probe();
        pr.become_replicate();
      }
      break;
    case ProgressState::replicate: pr.inflights.free_to(m.index); break;
  }
  // The acknowledgement may have freed several slots of the window (or
  // moved the follower to replicate): fill it, after telling everyone a
  // new commit index if there is one.
  if (maybe_commit()) broadcast_append();
  // What batching held back goes now (a commit index it withheld, too).
  if (pr.append_held) send_append(m.from, true);
  while (send_append(m.from, false)) {
  }
  if (m.from == transferee_ && pr.match == log_.last_index()) send_timeout_now(m.from);
  maybe_finish_membership_change();
}

void Raft::send_timeout_now(NodeId to) {
  read_only_.note_timeout_now();
  Message t;
  t.type = MessageType::timeout_now;
  t.to = to;
  send(std::move(t));
}

void Raft::handle_heartbeat_response(const Message& m, Progress& pr) {
  pr.probe_sent = false;
  if (pr.state == ProgressState::replicate && pr.inflights.full()) {
    // The window stays as it is (its appends may only be slow). One empty
    // append at the window's end tells whether they arrived: the follower
    // acknowledges it (freeing the window) or rejects it (they were lost:
    // back to probe from match).
    send_window_probe(m.from);
  } else if (pr.match < log_.last_index() || pr.state == ProgressState::probe) {
    // A probing follower, even a caught-up one, gets a probe: its answer
    // moves it back to replicate. Nothing is held back for batching now: if
    // the appends in flight were lost, the follower rejects this one.
    send_append(m.from, true, /*may_hold=*/planted(bug_held_until_ack));
  }
  read_only_.acknowledge(m.from, m.incarnation, m.context);
  confirm_reads();
}

void Raft::handle_read_index(const Message& m) {
  if (lease_valid()) {
    Message r;
    r.type = MessageType::read_index_response;
    r.to = m.from;
    r.index = log_.committed();
    r.context = m.context;
    send(std::move(r));
    return;
  }
  add_read(m.context, m.from);
}

void Raft::add_read(std::uint64_t context, NodeId requester) {
  // The read waits for a round numbered after it arrived (flush_reads).
  std::uint64_t round = 0;
  if (planted(bug_read_joins_left_round) && committed_in_term()) [[unlikely]]
    round = read_only_.last_read_round();  // it left earlier, and may be acknowledged already
  read_only_.add({context, requester, log_.committed(), round});
  if (round != 0) confirm_reads();
}

bool Raft::lease_valid() const {
  if (!options_.lease_reads || role_ != Role::leader || !transferee_.is_none() || !committed_in_term()) return false;
  // Once a TimeoutNow left, its target may win an election at any moment
  // (it may still be in flight after the transfer was abandoned) with the
  // votes of followers that acknowledged our heartbeats: no lease for the
  // rest of this term (read_only.hpp; tikv/raft-rs#234, etcd-io/etcd#12704).
  if (read_only_.timeout_now_sent()) {
    if (!planted(bug_lease_after_transfer)) [[likely]]
      return false;
  }
  return read_only_.lease_holds(membership_, ticks_);
}

void Raft::append_to_log(std::vector<Entry> entries) {
  Index next = log_.last_index() + 1;
  std::size_t bytes = 0;
  for (Entry& e : entries) {
    e.term = term_;
    e.index = next;
    ++next;
    bytes += uncommitted_size(e);
  }
  log_.append(entries);
  uncommitted_bytes_ += bytes;
}

void Raft::broadcast_append() {
  for (auto& [id, pr] : progress_.map()) {
    if (id != id_) send_append(id, true);
  }
}

void Raft::broadcast_heartbeat(std::uint64_t context) {
  for (auto& [id, pr] : progress_.map()) {
    if (id != id_) send_heartbeat(id, context);
  }
}

void Raft::send_heartbeat(NodeId to, std::uint64_t context) {
  const Progress* pr = progress_.find(to);
  Message m;
  m.type = MessageType::heartbeat;
  m.to = to;
  m.commit = std::min(pr->match, log_.committed());
  m.log_term = log_.term(m.commit).value_or(Term{});  // 0 behind our snapshot: the follower commits nothing
  m.context = context;
  send(std::move(m));
}

void Raft::send_window_probe(NodeId to) {
  Progress& pr = *progress_.find(to);
  const Index prev = pr.next - 1;
  const std::optional<Term> prev_term = log_.term(prev);
  if (!prev_term) {
    // The window's end was compacted meanwhile: probe from match, which
    // sends the snapshot if the follower needs one.
    pr.become_probe();
    send_append(to, true);
    return;
  }
  Message m;
  m.type = MessageType::append;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  m.context = pr.stream;
  send(std::move(m));
}

bool Raft::send_append(NodeId to, bool send_if_empty, bool may_hold) {
  Progress& pr = *progress_.find(to);
  if (pr.paused()) return false;
  const Index prev = pr.next - 1;
  const std::optional<Term> prev_term = log_.term(prev);
  std::vector<Entry> entries;
  std::error_code ec;
  if (prev_term) {
    const Index hi = std::min(log_.last_index() + 1, pr.next + options_.max_entries_per_append);
    ec = log_.slice(pr.next, hi, options_.max_bytes_per_append, entries);
  }
  if (!prev_term || ec) {
    // What the follower needs was compacted away: send the snapshot (§5).
    // The runtime attaches the snapshot's bytes when it sends the message.
    if (!pr.recent_active) return false;
    Message m;
    m.type = MessageType::snapshot;
    m.to = to;
    m.snapshot = log_.snapshot_meta();
    RAFTKIT_ASSERT(m.snapshot->index != Index{}, "follower {} needs entries before {} but there is no snapshot",
                   to, log_.first_index());
    pr.become_snapshot(m.snapshot->index);
    send(std::move(m));
    return true;
  }
  if (entries.empty() && !send_if_empty) return false;
  const Index last = prev + entries.size();
  // Batching: with appends in flight, only a full one (as many entries as
  // an append takes, or cut short by its byte limit) leaves now; the next
  // acknowledgement sends the rest.
  const bool full = entries.size() >= options_.max_entries_per_append || last < log_.last_index();
  if (may_hold && options_.batch_appends && pr.state == ProgressState::replicate && pr.inflights.count() > 0 &&
      !full) {
    pr.append_held = true;
    return false;
  }
  pr.append_held = false;
  std::size_t bytes = 0;
  for (const Entry& e : entries) bytes += entry_bytes(e);
  Message m;
  m.type = MessageType::append;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  m.context = pr.stream;
  m.entries = std::move(entries);
  if (!m.entries.empty() || pr.state == ProgressState::probe) pr.sent_entries(last, bytes);
  send(std::move(m));
  return true;
}

bool Raft::maybe_commit() {
  const Membership* counted = &membership_;
  Membership with_learners;
  if (planted(bug_learner_in_quorum)) [[unlikely]] {
    with_learners = membership_;
    for (const auto* v : {&membership_.learners, &membership_.staging})
      with_learners.voters.insert(with_learners.voters.end(), v->begin(), v->end());
    counted = &with_learners;
  }
  // An acknowledgement counts only from the incarnation the configuration
  // names: another one may have lost what it acknowledged.
  const Index quorum = quorum_index(*counted, [this](NodeId id, std::uint64_t incarnation) {
    const Progress* pr = progress_.find(id);
    return pr && (pr->incarnation == incarnation || planted(bug_acks_by_id)) ? pr->match : Index{};
  });
  // §5.4.2: only entries of the current term are committed by counting.
  const bool first_commit = !committed_in_term();
  if (planted(bug_commit_previous_term)) [[unlikely]] {
    const auto t = log_.term(std::min(quorum, log_.last_index()));
    if (!t || !log_.maybe_commit(std::min(quorum, log_.last_index()), *t)) return false;
  } else if (!log_.maybe_commit(quorum, term_)) {
    return false;
  }
  // Reads that waited for this commit go out with the next Ready's round.
  if (first_commit) read_only_.set_index_of_unstarted(log_.committed());
  return true;
}

bool Raft::committed_in_term() const { return log_.term(log_.committed()) == term_; }

bool Raft::read_round_due() const {
  return role_ == Role::leader && read_only_.has_unstarted() && committed_in_term() &&
         !read_only_.read_round_in_flight(membership_);
}

bool Raft::forward_due() const { return role_ == Role::follower && !leader_.is_none() && forwarded_.request_due(); }

void Raft::flush_reads() {
  if (read_round_due()) start_read_round();
  if (forward_due()) {
    Message m;
    m.type = MessageType::read_index;
    m.to = leader_;
    m.context = forwarded_.take_request(ticks_);
    send(std::move(m));
  }
}

void Raft::start_read_round() {
  if (!read_only_.has_unstarted() || !committed_in_term()) return;
  const std::uint64_t round = read_only_.new_round(id_, incarnation_, ticks_);
  read_only_.start_unstarted(round);
  broadcast_heartbeat(round);
  confirm_reads();
}

void Raft::confirm_reads() {
  if (!read_only_.has_pending()) return;
  for (const PendingRead& r : read_only_.take_confirmed(membership_)) {
    if (r.requester == id_) {
      read_states_.push_back({r.index, r.context});
    } else {
      Message m;
      m.type = MessageType::read_index_response;
      m.to = r.requester;
      m.index = r.index;
      m.context = r.context;
      send(std::move(m));
    }
  }
}

void Raft::fail_pending_reads() {
  // A follower's reads asked of (or waiting for) a leader it no longer follows.
  if (!forwarded_.empty())
    for (std::uint64_t context : forwarded_.take_all()) failed_reads_.push_back({context, NodeId{}});
  if (!read_only_.has_pending()) return;
  for (const PendingRead& r : read_only_.take_all()) {
    if (r.requester == id_) {
      failed_reads_.push_back({r.context, NodeId{}});
    } else {
      Message m;
      m.type = MessageType::read_index_response;
      m.to = r.requester;
      m.reject = true;
      m.context = r.context;
      send(std::move(m));
    }
  }
}

void Raft::abort_transfer() { transferee_ = NodeId{}; }

bool Raft::quorum_active() {
  Ballots active;
  for (auto& [id, pr] : progress_.map()) {
    active[id] = Ballot{id == id_ || pr.recent_active, pr.incarnation};
    if (id != id_) pr.recent_active = false;
  }
  return quorum_vote(membership_, active) == VoteResult::won;
}

bool Raft::is_voter(NodeId id) const { return core::is_voter(membership_, id); }

bool Raft::counted() const { return core::is_voter(membership_, id_, incarnation_); }

bool Raft::counts(NodeId id, const Progress& pr) const { return core::is_voter(membership_, id, pr.incarnation); }

std::uint64_t Raft::named_incarnation(NodeId id) const {
  const auto in = [id](const std::vector<NodeId>& v) { return std::find(v.begin(), v.end(), id) != v.end(); };
  const bool incoming = in(membership_.voters) || in(membership_.learners) || in(membership_.staging);
  return incarnation_of(membership_, id, !incoming);
}

void Raft::send(Message m) {
  m.from = id_;
  m.incarnation = incarnation_;
  m.generation = generation_;
  if (m.term == Term{}) m.term = term_;
  if (must_follow_persist(m.type)) {
    if (!planted(bug_reply_before_persist)) [[likely]] {
      persisted_msgs_.push_back(std::move(m));
      return;
    }
  }
  msgs_.push_back(std::move(m));
}

// ---------------------------------------------------------------------------
// Requests

std::error_code Raft::propose(Bytes payload, Proposed* where) {
  if (role_ != Role::leader) return errc::not_leader;
  // Leaving (a configuration without this leader is appended) or handing
  // over: retry shortly, at the next leader.
  if (leaving_ || !transferee_.is_none()) return errc::busy;
  if (payload.size() > options_.max_entry_bytes) return errc::too_large;
  Entry e{term_, Index{}, EntryType::normal, std::move(payload)};
  const std::size_t bytes = uncommitted_size(e);
  // Bounded memory when the quorum is gone: refuse rather than grow.
  if (options_.max_uncommitted_bytes != 0 && uncommitted_bytes_ > 0 &&
      uncommitted_bytes_ + bytes > options_.max_uncommitted_bytes)
    return errc::busy;
  append_to_log({std::move(e)});
  if (where) *where = {log_.last_index(), term_};
  // Replicated when the next Ready is taken: the proposals made until then
  // travel in one append per follower instead of one each.
  broadcast_pending_ = true;
  return {};
}

std::error_code Raft::read_index(std::uint64_t context) {
  if (role_ == Role::leader) {
    if (lease_valid() || planted(bug_read_without_quorum)) {
      read_states_.push_back({log_.committed(), context});
      return {};
    }
    add_read(context, id_);
    return {};
  }
  if (leader_.is_none()) return errc::not_leader;
  // Asked of the leader with the next Ready, with every read waiting then.
  forwarded_.add(context);
  return {};
}

std::error_code Raft::transfer_leader(NodeId to) {
  if (role_ != Role::leader) return errc::not_leader;
  if (to.is_none()) {
    // The most up-to-date voter that is reachable and being replicated to.
    Index best;
    for (const auto& [id, pr] : progress_.map()) {
      if (id == id_ || !counts(id, pr) || !reachable(pr) || pr.state != ProgressState::replicate)
        continue;
      if (to.is_none() || pr.match > best) {
        to = id;
        best = pr.match;
      }
    }
    if (to.is_none()) return errc::unavailable;
  }
  if (to == id_) {
    // Leadership stays here: a pending transfer is cancelled, so proposals
    // resume and no TimeoutNow goes out for it any more.
    abort_transfer();
    return {};
  }
  const Progress* pr = progress_.find(to);
  if (!is_voter(to) || !pr) return errc::invalid_argument;
  // Refuse rather than hand leadership to a node that cannot take it: the
  // transfer blocks proposals, and a dead target would leave no leader.
  if (!reachable(*pr) || pr->state != ProgressState::replicate || !counts(to, *pr)) return errc::unavailable;
  if (transferee_ == to) return {};
  transferee_ = to;
  election_elapsed_ = 0;  // the transfer gets one election timeout
  if (pr->match == log_.last_index()) {
    send_timeout_now(to);
  } else {
    send_append(to, true);
  }
  return {};
}

bool Raft::reachable(const Progress& pr) const {
  return pr.heard_at != 0 && ticks_ + 1 - pr.heard_at <= static_cast<std::uint64_t>(options_.election_ticks);
}

bool Raft::reachable(NodeId peer) const {
  const Progress* pr = progress_.find(peer);
  return pr && reachable(*pr);
}

void Raft::step_down() {
  if (role_ == Role::leader) become_follower(term_, NodeId{});
}

// ---------------------------------------------------------------------------
// Ready / advance

bool Raft::has_ready() const {
  if (ready_outstanding_) return false;
  return HardState{term_, vote_, log_.committed(), incarnation_, generation_} != persisted_hs_ ||
         !log_.unstable_entries().empty() || log_.unstable_snapshot() || !msgs_.empty() || !persisted_msgs_.empty() ||
         log_.has_next_committed() || !read_states_.empty() || !failed_reads_.empty() || read_round_due() || forward_due();
}

void Raft::flush_broadcast() {
  if (!broadcast_pending_) return;
  broadcast_pending_ = false;
  // As much as each follower's window takes, so a pipelined follower sees
  // what one append per proposal would have sent, in fewer messages.
  if (role_ == Role::leader) {
    for (auto& [id, pr] : progress_.map())
      if (id != id_ && send_append(id, true))
        while (send_append(id, false)) {
        }
  }
}

std::vector<Message> Raft::take_messages() {
  flush_broadcast();
  flush_reads();
  return std::exchange(msgs_, {});
}

Ready Raft::ready() {
  RAFTKIT_ASSERT(!ready_outstanding_, "ready() called twice without advance() (ready {})", ready_number_);
  flush_broadcast();
  flush_reads();
  ready_outstanding_ = true;
  Ready rd;
  rd.number = ++ready_number_;
  const HardState hs{term_, vote_, log_.committed(), incarnation_, generation_};
  if (hs != persisted_hs_) rd.hard_state = hs;
  rd.snapshot = log_.unstable_snapshot();
  if (rd.snapshot) rd.snapshot_data = std::move(snapshot_data_);
  rd.entries = log_.unstable_entries();
  rd.messages = std::move(msgs_);
  rd.persisted_messages = std::move(persisted_msgs_);
  rd.committed_entries = log_.next_committed_entries(options_.max_bytes_per_append * 4);
  rd.read_states = std::move(read_states_);
  rd.failed_reads = std::move(failed_reads_);
  msgs_.clear();
  persisted_msgs_.clear();
  read_states_.clear();
  failed_reads_.clear();
  snapshot_data_.clear();
  return rd;
}

void Raft::advance(const Ready& rd) {
  RAFTKIT_ASSERT(ready_outstanding_ && rd.number == ready_number_, "advance({}) does not match ready {}", rd.number,
                 ready_number_);
  ready_outstanding_ = false;
  if (rd.hard_state) persisted_hs_ = *rd.hard_state;
  if (rd.snapshot) {
    log_.stable_snapshot_to(rd.snapshot->index);
    if (log_.applied() < rd.snapshot->index) log_.applied_to(rd.snapshot->index);
  }
  if (!rd.entries.empty()) log_.stable_to(rd.entries.back().index, rd.entries.back().term);
  if (!rd.committed_entries.empty()) {
    for (const Entry& e : rd.committed_entries) {
      if (e.type != EntryType::membership || e.index <= config_index_) continue;
      if (auto m = decode_membership(e.payload)) apply_membership(*m, e.index);
    }
    log_.applied_to(rd.committed_entries.back().index);
    if (role_ == Role::leader) {
      std::size_t bytes = 0;
      for (const Entry& e : rd.committed_entries) bytes += uncommitted_size(e);
      uncommitted_bytes_ = bytes > uncommitted_bytes_ ? 0 : uncommitted_bytes_ - bytes;
    }
  }
  if (role_ == Role::leader) {
    // The leader counts itself toward a commit only once its own log is
    // durable (it wrote in parallel with the followers, §10.2.1).
    Progress& self = *progress_.find(id_);
    if (self.maybe_update(log_.persisted_last_index()) && maybe_commit()) broadcast_append();
    maybe_finish_membership_change();
  }
}

// ---------------------------------------------------------------------------
// Membership (thesis §4.3; core/membership.hpp)

std::error_code Raft::propose_membership(const Membership& requested, Proposed* where) {
  if (where) *where = {};
  if (role_ != Role::leader) return errc::not_leader;
  if (!transferee_.is_none()) return errc::busy;
  if (requested.joint() || !membership_problem(requested).empty()) return errc::invalid_argument;
  const bool overlapping = planted(bug_overlapping_changes);
  if (membership_change_pending() && !overlapping) return errc::busy;
  // The incarnations are the leader's to name: a voter kept keeps the one
  // in force; a member joining is the incarnation that answers for its id.
  Membership target = requested;
  target.incarnations.clear();
  for (NodeId id : members_of(target)) {
    const Progress* pr = progress_.find(id);
    if (std::find(membership_.voters.begin(), membership_.voters.end(), id) != membership_.voters.end()) {
      set_incarnation(target, id, incarnation_of(membership_, id));
    } else if (pr) {
      set_incarnation(target, id, pr->incarnation);
    }
  }
  target.generation = membership_.generation;  // the leader's, as the incarnations
  if (target == membership_) return {};
  // Learners, staging servers and addresses change no majority: one step.
  // A change of address only (Node::async_update_server) is the plainest
  // case: the same voters in the same incarnations decide before and after
  // the entry, so every quorum of the old configuration is one of the new
  // and no two leaders can be chosen by disjoint majorities. An address is
  // no part of the protocol's safety, only where the transport dials; a
  // member the old address no longer reaches is merely unreachable until
  // the entry is applied, which is what a crash would do.
  const bool one_step = same_voters(target, membership_) || overlapping;
  const Membership next = one_step ? target : enter_joint(membership_, target);
  // A change that leaves no quorum of voters that answer (in the
  // incarnation each side names) would leave the cluster unable to elect a
  // leader should this one fail: refused (etcd's strict reconfig check).
  Ballots able;
  for (NodeId v : members_of(next)) {
    const Progress* pr = progress_.find(v);
    able[v] = v == id_ ? Ballot{true, incarnation_} : Ballot{pr && reachable(*pr), pr ? pr->incarnation : 0};
  }
  if (quorum_vote(next, able) != VoteResult::won) return errc::unavailable;
  append_membership(next);
  if (where) *where = {log_.last_index(), term_};
  return {};
}

std::error_code Raft::replace_incarnation(NodeId id, Proposed* where) {
  if (where) *where = {};
  if (role_ != Role::leader) return errc::not_leader;
  if (!transferee_.is_none() || membership_change_pending()) return errc::busy;
  const Progress* pr = progress_.find(id);
  if (id == id_ || !pr || std::find(membership_.voters.begin(), membership_.voters.end(), id) == membership_.voters.end() ||
      counts(id, *pr))
    return errc::invalid_argument;
  if (!caught_up(*pr)) return errc::unavailable;
  append_membership(enter_joint(membership_, with_incarnation(id, pr->incarnation)));
  if (where) *where = {log_.last_index(), term_};
  return {};
}

bool Raft::has_unapplied_membership() const {
  for (Index lo = log_.applied() + 1, hi = log_.committed(); lo <= hi;) {
    std::vector<Entry> batch;
    if (log_.slice(lo, hi + 1, std::size_t{4} << 20, batch) || batch.empty()) return false;
    for (const Entry& e : batch)
      if (e.type == EntryType::membership) return true;
    lo = batch.back().index + 1;
  }
  return false;
}

bool Raft::membership_change_pending() const {
  return role_ == Role::leader && (pending_conf_index_ > log_.applied() || membership_.joint());
}

void Raft::append_membership(const Membership& m) {
  // A leader that is removing itself takes no more commands: entries after
  // the configuration that drops it would make its log longer than its
  // successor's, and it would refuse that successor its vote while the joint
  // configuration still needs it.
  leaving_ = leaving_ || std::find(m.voters.begin(), m.voters.end(), id_) == m.voters.end();
  append_to_log({Entry{term_, Index{}, EntryType::membership, encode_membership(m)}});
  pending_conf_index_ = log_.last_index();
  broadcast_pending_ = true;
}

void Raft::apply_membership(const Membership& m, Index index) {
  membership_ = m;
  config_index_ = index;
  if (role_ != Role::leader) return;
  rebuild_progress();
  if (!transferee_.is_none() && !is_voter(transferee_)) abort_transfer();
  if (!is_voter(id_)) {
    // This leader removed itself (thesis §4.2.2): it steps down now that the
    // configuration without it is applied, and hands leadership to a voter
    // that holds its whole log, so the cluster does not wait for a timeout.
    for (const auto& [id, pr] : progress_.map()) {
      if (id != id_ && counts(id, pr) && pr.match == log_.last_index() && reachable(pr)) {
        send_timeout_now(id);
        break;
      }
    }
    become_follower(term_, NodeId{});
  }
}

void Raft::rebuild_progress() {
  ProgressMap& map = progress_.map();
  for (auto it = map.begin(); it != map.end();) {
    it = (it->first == id_ || is_member(membership_, it->first)) ? std::next(it) : map.erase(it);
  }
  for (NodeId id : members_of(membership_)) {
    auto [it, added] = map.try_emplace(id, log_.last_index() + 1, options_.max_inflight_messages,
                                       options_.max_inflight_bytes);
    if (added) {
      it->second.incarnation = id == id_ ? incarnation_ : named_incarnation(id);
      if (id == id_) it->second.match = log_.persisted_last_index();
    }
    it->second.learner = !is_voter(id);
  }
}

void Raft::maybe_finish_membership_change() {
  if (role_ != Role::leader || pending_conf_index_ > log_.applied() || !transferee_.is_none()) return;
  if (membership_.joint()) {
    append_membership(leave_joint(membership_));
    return;
  }
  for (NodeId s : membership_.staging) {
    const Progress* pr = progress_.find(s);
    if (!pr || !caught_up(*pr)) continue;
    Membership target = with_incarnation(s, pr->incarnation);
    target.staging.erase(std::find(target.staging.begin(), target.staging.end(), s));
    target.voters.push_back(s);
    append_membership(enter_joint(membership_, target));
    return;
  }
  // A voter that came back as a new incarnation (it lost its log) and has
  // caught up is swapped in for the one the configuration names: to Raft
  // they are two servers, so the swap is an ordinary joint change.
  if (!options_.auto_replace) return;
  for (NodeId v : membership_.voters) {
    const Progress* pr = progress_.find(v);
    if (v == id_ || !pr || counts(v, *pr) || !caught_up(*pr)) continue;
    append_membership(enter_joint(membership_, with_incarnation(v, pr->incarnation)));
    return;
  }
}

Membership Raft::with_incarnation(NodeId id, std::uint64_t incarnation) const {
  Membership target = membership_;
  set_incarnation(target, id, incarnation);
  return target;
}

// Caught up: it holds every committed entry (so it knows every
// configuration in force) and is close enough to the leader's log that
// counting it will not stall commits for long.
bool Raft::caught_up(const Progress& pr) const {
  return pr.match >= log_.committed() && pr.match + options_.promote_within_entries >= log_.last_index() &&
         pr.match > Index{};
}

}  // namespace raftkit::core

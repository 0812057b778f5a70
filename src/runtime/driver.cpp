#include "runtime/driver.hpp"

#include <algorithm>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "raftkit/error.hpp"
#include "runtime/bootstrap_check.hpp"

namespace raftkit::runtime {

namespace {
// After this many missed ticks every timer of the core has fired anyway; a
// longer stall (a suspended machine) is not worth replaying tick by tick.
constexpr std::uint64_t kMaxTicksPerCall = 64;
}  // namespace

Driver::Driver(Options options, StateMachine& machine, LogStore& store, SnapshotStore& snapshots, DriverIo& io,
               std::uint64_t read_nonce)
    : options_(std::move(options)),
      sm_(machine),
      store_(store),
      snapshots_(snapshots),
      io_(io),
      pending_(metrics_, read_nonce),
      snapshot_(options_, machine, store, snapshots, io, metrics_, ids_) {}

#ifdef RAFTKIT_PLANTED_BUGS
void Driver::plant_bugs(const PlantedBugs& bugs) {
  bugs_ = bugs;
  if (raft_) raft_->plant_bugs(bugs.protocol);
}
#endif

// ---- lifecycle --------------------------------------------------------------

std::error_code Driver::start(TimePoint now, std::string& detail) {
  if (raft_ || stopped_) {
    detail = "already started";
    return errc::invalid_argument;
  }
  if (auto problem = options_.validate(); !problem.empty()) {
    detail = "invalid options: " + problem;
    return errc::invalid_argument;
  }
  if (auto ec = snapshot_.load(detail)) return ec;
  if (options_.force_new_cluster && store_.last_index() == Index{} && store_.snapshot_meta().index == Index{}) {
    detail = fmt::format("{} refused: this node's store is empty, there is nothing to recover from (start it on "
                         "the data directory of the surviving node)",
                         options_.force_new_cluster_name);
    return errc::invalid_argument;
  }
  if (auto ec = check_bootstrap(detail)) return ec;
  ProtocolOptions core = options_.core_options();
  core.bootstrap = may_bootstrap();
  core.incarnation = pending_.peek_read_context();  // drawn at random per start
  raft_ = std::make_unique<core::Raft>(core, store_);
  written_hs_ = store_.hard_state();
#ifdef RAFTKIT_PLANTED_BUGS
  raft_->plant_bugs(bugs_.protocol);
#endif
  now_ = last_tick_ = started_at_ = now;
  report_configuration();
  if (options_.force_new_cluster)
    options_.logger.warn(options_.id, raft_->term(),
                         "{} {}: recovered from a lost majority as generation {}, the only voter ({}), committing "
                         "its whole log up to {}; add the other nodes as new members, and restart this node "
                         "without these flags",
                         options_.force_new_cluster_name, options_.accept_data_loss_name, raft_->generation(),
                         core::describe(raft_->membership()), raft_->commit_index());
  observe_changes();
  return {};
}

// The bootstrap decision, once the snapshot store is loaded: whether a node
// whose store is empty starts a new cluster (ProtocolOptions::bootstrap).
// A snapshot proves the cluster existed: a node that has one never
// bootstraps, whatever its options say. The incarnation is born with the
// log, so a log lost beside surviving snapshots (recorded into the empty
// log by SnapshotLifecycle::load(), perhaps before a crash, with no
// incarnation written yet) comes back as a new incarnation.
bool Driver::may_bootstrap() const {
  const bool snapshot_found = snapshot_.recorded().index != Index{};
  if (planted(bug_snapshot_keeps_identity)) [[unlikely]]
    return options_.bootstrap;
  return options_.bootstrap && !snapshot_found;
}

// A node about to found a cluster on an empty store first asks its peers
// whether that cluster runs already (runtime/bootstrap_check.hpp). Nothing
// is written before the answer: a refused start leaves the store empty.
std::error_code Driver::check_bootstrap(std::string& detail) {
  const bool empty = store_.last_index() == Index{} && store_.snapshot_meta().index == Index{} &&
                     store_.hard_state().term == Term{};
  if (!empty || !may_bootstrap()) return {};
  const std::string& flag = options_.bootstrap_name;
  auto answers = io_.probe_peers(options_.peers, options_.bootstrap_probe_timeout);
  if (!answers) {
    if (options_.peers.size() > 1)
      options_.logger.info(options_.id, Term{}, "{}: the transport cannot ask the peers whether the cluster runs "
                           "already; founding it without asking", flag);
    return {};
  }
  std::size_t answered = 0;
  for (const PeerStanding& a : *answers) {
    if (a.reached) {
      ++answered;
      continue;
    }
    options_.logger.warn(options_.id, Term{}, "{}: node {} at {} did not answer ({}); going on without it: a new "
                         "cluster's first start may find its peers not started yet", flag, a.id, a.address, a.problem);
  }
  if (auto why = bootstrap_refusal(options_.id, options_.cluster_id, flag, *answers); !why.empty()) {
    detail = failure_ = why;
    return errc::invalid_argument;
  }
  options_.logger.info(options_.id, Term{}, "{}: {} of {} peers answered, none belongs to cluster '{}' yet: "
                       "founding it", flag, answered, answers->size(), options_.cluster_id);
  return {};
}

ClusterStanding Driver::standing() const {
  if (!raft_) return {};
  return standing_of(raft_->commit_index(), raft_->leader());
}

// One line at start saying where the configuration comes from, so an
// operator sees at once a peer list the log overrides or a node that waits.
// Whether the bootstrap flag was followed is said here too, naming the flag
// as the operator knows it (Options::bootstrap_name).
void Driver::report_configuration() {
  const Membership& m = raft_->membership();
  const Term term = raft_->term();
  const std::string& flag = options_.bootstrap_name;
  if (raft_->incarnation() != kBootstrapIncarnation && raft_->membership_index() == Index{} &&
      raft_->last_index() == Index{}) {
    if (options_.bootstrap) {
      // The core refused it: the store is not untouched (core::Raft's constructor).
      const std::string holds =
          snapshot_.recorded().index != Index{} ? "holds a snapshot" : fmt::format("has heard of term {}", term);
      options_.logger.warn(options_.id, term,
                           "{} ignored: this node's store {}, so it has taken part in a cluster; new log, "
                           "incarnation {:x}: waiting for that cluster's leader to give this node the log",
                           flag, holds, raft_->incarnation());
      return;
    }
    options_.logger.info(options_.id, term,
                         "new log, incarnation {:x}: waiting for a leader to give this node the log; it counts for "
                         "nothing until the leader swaps it into the configuration (to start a new cluster "
                         "instead, restart it with {}: a node no cluster has reached yet may still bootstrap)",
                         raft_->incarnation(), flag);
    return;
  }
  if (raft_->membership_index() == Index{}) return;  // bootstrapping from the options
  if (options_.bootstrap)
    options_.logger.info(options_.id, term, "{} ignored: the log already holds the configuration", flag);
  std::vector<NodeId> given;
  for (const auto& [id, address] : options_.peers) given.push_back(id);
  if (given != core::members_of(m))
    options_.logger.warn(options_.id, term, "the log's configuration ({}) differs from the peers in the options; "
                         "following the log", core::describe(m));
}

void Driver::stop(std::error_code why) {
  if (stopped_) return;
  stopped_ = true;
  if (!failure_code_) failure_code_ = why;
  if (lead_term_ != Term{}) sm_.on_leadership_lost(std::exchange(lead_term_, Term{}));
  pending_.fail_all(why);
  snapshot_.fail_waiters(why);
}

void Driver::fail(std::error_code ec, const std::string& what) {
  failure_ = fmt::format("{}: {}", what, ec.message());
  failure_code_ = ec;
  options_.logger.error(options_.id, raft_ ? raft_->term() : Term{}, "stops: {}", failure_);
  stop(ec);
}

std::error_code Driver::refusal() const {
  return failure_code_ ? failure_code_ : std::error_code(errc::shutting_down);
}

// ---- inputs -------------------------------------------------------------------

void Driver::tick(TimePoint now) {
  if (stopped_ || !raft_) return;
  advance_clock(now);
  check_disk_stall(now_);
  pending_.expire(now_);
  if (disk_full() && now_ >= disk_retry_at_) retry_refused_write();
  process();
}

void Driver::advance_clock(TimePoint now) {
  now_ = std::max(now_, now);
  const auto interval = std::chrono::duration_cast<TimePoint>(options_.tick_interval);
  std::uint64_t ticks = 0;
  if (now_ - last_tick_ >= interval) ticks = static_cast<std::uint64_t>((now_ - last_tick_) / interval);
  if (ticks == 0) return;
  // Every elapsed interval is a tick, missed ones included: the lease and
  // the election timers measure time, not how often this thread got to run.
  if (planted(bug_drop_missed_ticks)) [[unlikely]] {
    ticks = 1;
    last_tick_ = now_;
  } else if (ticks > kMaxTicksPerCall) {
    ticks = kMaxTicksPerCall;
    last_tick_ = now_;
  } else {
    last_tick_ += interval * static_cast<std::int64_t>(ticks);
  }
  for (std::uint64_t i = 0; i < ticks; ++i) raft_->tick();
}

void Driver::step(const Message& m, TimePoint now) {
  if (stopped_ || !raft_) return;
  metrics_.messages_received.add();
  advance_clock(now);
  if (!m.from.is_none() && m.from != options_.id) heard_[m.from] = now_;
  raft_->step(m);
  process();
}

void Driver::report_unreachable(NodeId peer) {
  if (stopped_ || !raft_) return;
  raft_->report_unreachable(peer);
  process();
}

void Driver::report_snapshot(NodeId peer, bool ok) {
  if (stopped_ || !raft_) return;
  snapshot_.send_reported(peer, ok);
  raft_->report_snapshot(peer, ok);
  process();
}

bool Driver::too_many_pending() const {
  return pending_.proposals_and_reads() >= options_.max_pending_requests;
}

core::Proposed Driver::propose(Bytes command, ResultHandler done, TimePoint now, bool defer) {
  metrics_.proposals_received.add();
  if (stopped_ || !raft_) {
    pending_.finish_proposal(done, refusal());
    return {};
  }
  advance_clock(now);
  if (disk_full()) {
    pending_.finish_proposal(done, errc::no_space);
    return {};
  }
  if (too_many_pending()) {
    pending_.finish_proposal(done, errc::busy);
    return {};
  }
  core::Proposed where;
  if (auto ec = raft_->propose(std::move(command), &where)) {
    pending_.finish_proposal(done, ec);
    return {};
  }
  if (planted(bug_proposals_by_index_only) || planted(bug_drop_on_collision)) [[unlikely]] {
    if (pending_.proposal_waits_at(where.index)) {
      if (planted(bug_proposals_by_index_only)) {
        process();
        return where;  // the new caller is forgotten
      }
      pending_.drop_proposal_at(where.index);
    }
  }
  pending_.add_proposal(where.index, where.term, std::move(done), now_ + options_.request_timeout);
  if (!defer) process();
  return where;
}

void Driver::read(Bytes query, ResultHandler done, TimePoint now) {
  metrics_.reads_received.add();
  done = pending_.counted_read(std::move(done));
  if (stopped_ || !raft_) return done(refusal(), {});
  advance_clock(now);  // a read must see the lease as of now, not as of the last timer
  if (too_many_pending()) return done(errc::busy, {});
  const std::uint64_t ctx = pending_.next_read_context();
  if (auto ec = raft_->read_index(ctx)) return done(ec, {});
  pending_.add_read(ctx, std::move(query), std::move(done), now_ + options_.request_timeout);
  process();
}

void Driver::read_stale(BytesView query, ResultHandler done) {
  if (stopped_ || !raft_) return done(refusal(), {});
  metrics_.reads_stale.add();
  done({}, sm_.query(query));
}

void Driver::transfer(NodeId to, DoneHandler done, TimePoint now) {
  if (stopped_ || !raft_) return done(refusal());
  advance_clock(now);
  if (auto ec = raft_->transfer_leader(to)) return done(ec);
  if (to.is_none()) to = raft_->transferee();
  if (to.is_none()) return done({});  // we were the best choice ourselves
  pending_.add_transfer(to, std::move(done), now_ + options_.request_timeout);
  process();
}

void Driver::add_server(NodeId id, std::string address, DoneHandler done, TimePoint now) {
  if (stopped_ || !raft_) return done(refusal());
  if (id.is_none()) return done(errc::invalid_argument);
  Membership target = raft_->membership();
  if (!core::is_member(target, id)) target.staging.push_back(id);
  if (!address.empty()) target.addresses[id] = std::move(address);
  auto reached = [id](const Membership& m) { return std::count(m.voters.begin(), m.voters.end(), id) > 0; };
  start_change(target, reached, std::move(done), now);
}

void Driver::remove_server(NodeId id, DoneHandler done, TimePoint now) {
  if (stopped_ || !raft_) return done(refusal());
  Membership target = raft_->membership();
  for (auto* v : {&target.voters, &target.learners, &target.staging}) std::erase(*v, id);
  target.addresses.erase(id);
  auto reached = [id](const Membership& m) { return !core::is_member(m, id); };
  start_change(target, reached, std::move(done), now);
}

void Driver::replace_server(NodeId id, DoneHandler done, TimePoint now) {
  if (stopped_ || !raft_) return done(refusal());
  advance_clock(now);
  if (pending_.changing_membership()) return done(errc::busy);
  const core::Progress* pr = raft_->progress().find(id);
  const std::uint64_t incarnation = pr ? pr->incarnation : 0;
  if (auto ec = raft_->replace_incarnation(id)) return done(ec);
  options_.logger.info(options_.id, raft_->term(), "replacing node {}'s incarnation by {:x}", id, incarnation);
  auto reached = [id, incarnation](const Membership& m) { return core::is_voter(m, id, incarnation); };
  pending_.add_change(std::move(reached), std::move(done), now_ + options_.membership_timeout);
  process();
}

void Driver::update_server(NodeId id, std::string address, DoneHandler done, TimePoint now) {
  if (stopped_ || !raft_) return done(refusal());
  Membership target = raft_->membership();
  if (address.empty() || !core::is_member(target, id)) return done(errc::invalid_argument);
  if (target.joint()) return done(errc::busy);  // a change is half done: this one waits for it
  target.addresses[id] = address;
  auto reached = [id, address = std::move(address)](const Membership& m) {
    auto it = m.addresses.find(id);
    return it != m.addresses.end() && it->second == address;
  };
  start_change(target, reached, std::move(done), now);
}

void Driver::change_membership(Membership target, DoneHandler done, TimePoint now) {
  if (stopped_ || !raft_) return done(refusal());
  auto set = [](std::vector<NodeId> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  auto reached = [want = target, set](const Membership& m) {
    return m.staging.empty() && set(m.voters) == set(want.voters) && set(m.learners) == set(want.learners);
  };
  start_change(target, reached, std::move(done), now);
}

void Driver::start_change(const Membership& target, PendingRequests::Goal reached, DoneHandler done, TimePoint now) {
  advance_clock(now);
  if (disk_full()) return done(errc::no_space);
  if (pending_.changing_membership() && !planted(core::bug_overlapping_changes)) return done(errc::busy);
  const Membership& current = raft_->membership();
  if (!current.joint() && reached(current) && target == current) return done({});
  if (auto ec = raft_->propose_membership(target)) return done(ec);
  options_.logger.info(options_.id, raft_->term(), "membership change: {} -> {}", core::describe(current),
                       core::describe(target));
  pending_.add_change(std::move(reached), std::move(done), now_ + options_.membership_timeout);
  process();
}

void Driver::write_done(std::uint64_t id, std::error_code ec, const std::string& what) {
  if (stopped_ || !raft_) return;
  if (ec == errc::no_space && planted(bug_ack_failed_write)) [[unlikely]]
    ec = {};
  if (ec == errc::no_space) return write_refused(id, what);  // see A FULL DISK in driver.hpp
  if (ec) return fail(ec, what);
  if (snapshot_.write_done(id, *raft_)) return process();  // a snapshot saved or recorded
  if (!persisting_ || id != persisting_id_) return;
  if (disk_full()) disk_space_back();
  persisting_write_.reset();
  auto rd = std::move(persisting_);
  snapshot_.set_receiving(false);
  persisting_id_ = 0;
  finish(*rd);
  process();
}

void Driver::snapshot_read_done(SnapshotRead& r) {
  if (stopped_ || !raft_) return;
  if (snapshot_.read_done(r, raft_->term())) process();
}

// Ticks go on while a write is in flight; a leader whose own write has not
// finished in time steps down, so a healthy node can take over.
void Driver::check_disk_stall(TimePoint now) {
  if (persisting_id_ == 0 || now - persist_started_ < options_.disk_stall_timeout) return;
  if (!stall_reported_) {
    options_.logger.warn(options_.id, raft_->term(), "log write stalled for more than {} ms{}",
                         options_.disk_stall_timeout.count(),
                         raft_->role() == core::Role::leader ? "; stepping down as leader" : "");
    stall_reported_ = true;
  }
  raft_->step_down();
}

// ---- the Ready cycle ----------------------------------------------------------

void Driver::process() {
  // While a write is in flight no Ready is taken, but what may leave at
  // once does: a leader's appends of new proposals reach the followers
  // during its own fsync, not after it.
  if (persisting_ && !stopped_)
    for (Message& m : raft_->take_messages()) send(std::move(m));
  while (!stopped_ && !persisting_ && raft_->has_ready()) {
    auto rd = std::make_shared<core::Ready>(raft_->ready());
    if (observer_) observer_->on_ready(*raft_, *rd);
    for (Message& m : rd->messages) send(std::move(m));
    // A hard state whose commit index alone changed holds nothing a crash
    // must keep (a restarted node learns its commit index again), so it is
    // not worth a write and an fsync of its own: it goes with the next write
    // (etcd's MustSync rule). Without this, every commit cost each node a
    // second fsync per round, and the next round waited behind it. Except
    // before a configuration is applied: a node must not restart into a
    // configuration older than one it acted on (an operator may already have
    // retired the server it removed; the simulator found a restarted
    // leader stuck in the joint configuration that still needed it).
    std::optional<HardState> hs = rd->hard_state;
    const bool applies_config =
        !planted(bug_config_on_unwritten_commit) &&
        std::any_of(rd->committed_entries.begin(), rd->committed_entries.end(),
                    [](const Entry& e) { return e.type == EntryType::membership; });
    const auto commit_only = [&](HardState h) {
      h.commit = written_hs_.commit;
      return h == written_hs_;  // every other field as written: nothing a crash must keep
    };
    if (hs && rd->entries.empty() && !rd->snapshot && commit_only(*hs) && !applies_config) {
      unwritten_commit_ = hs;
      finish(*rd);
      continue;
    }
    if (!rd->must_sync() && !(applies_config && unwritten_commit_)) {
      finish(*rd);
      continue;
    }
    if (!hs) hs = unwritten_commit_;  // older than any hard state this Ready carries
    unwritten_commit_.reset();
    persist_ready(std::move(rd), hs);
  }
  if (!stopped_) {
    pending_.complete_transfers(raft_->leader());
    pending_.complete_changes(raft_->membership());
  }
  observe_changes();
}

// Hands the Ready's durable part to the I/O side; no Ready is taken until
// write_done() reports it.
void Driver::persist_ready(std::shared_ptr<core::Ready> rd, std::optional<HardState> hs) {
  if (hs) written_hs_ = *hs;
  persisting_ = rd;
  snapshot_.set_receiving(rd->snapshot.has_value());
  persist_started_ = now_;
  stall_reported_ = false;
  auto w = ids_.new_write([this, rd, hs](std::string& what) -> std::error_code {
    if (rd->snapshot) {
      if (auto ec = snapshots_.save(*rd->snapshot, rd->snapshot_data, what)) {
        what = "saving a received snapshot: " + what;
        return ec;
      }
      if (auto ec = store_.install_snapshot(*rd->snapshot)) return what = "recording a snapshot", ec;
    }
    // A crash keeps a prefix of these writes. The term and vote go first,
    // so no prefix holds entries of a term the node has not recorded (it
    // could then vote in that term again). Their commit index may only
    // name entries that are in the store and stay there (not a tail these
    // entries replace), so the full commit is written last.
    std::optional<HardState> commit_after;
    if (hs) {
      HardState first = *hs;
      const Index settled = rd->entries.empty() ? store_.last_index() : rd->entries.front().index - 1;
      if (first.commit > settled) {
        commit_after = first;
        first.commit = std::max(store_.hard_state().commit, settled);
      }
      if (auto ec = store_.save_hard_state(first)) return what = "saving the hard state", ec;
    }
    if (!rd->entries.empty()) {
      if (auto ec = store_.append(rd->entries)) return what = "appending entries", ec;
    }
    if (commit_after) {
      if (auto ec = store_.save_hard_state(*commit_after)) return what = "saving the hard state", ec;
    }
    return {};
  });
  persisting_id_ = w->id;
  persisting_write_ = w;
  io_.persist(std::move(w));
}

// Tells the transport this node's generation when it changes, and logs
// once per sender and generation the messages refused for another one.
void Driver::observe_generation() {
  if (raft_->generation() != generation_seen_) {
    generation_seen_ = raft_->generation();
    io_.generation_changed(generation_seen_);
  }
  if (raft_->generation_refusals() == generation_refusals_seen_) return;
  generation_refusals_seen_ = raft_->generation_refusals();
  const auto refused = raft_->last_generation_refusal();
  if (!refusals_logged_.emplace(refused.from, refused.generation).second) return;
  const bool sender_old = refused.generation < generation_seen_;
  options_.logger.warn(options_.id, raft_->term(),
                       "refusing messages from node {} of generation {} (this node is at generation {}): {} is "
                       "from before a recovery from a lost majority; wipe it and add it as a new member",
                       refused.from, refused.generation, generation_seen_,
                       sender_old ? fmt::format("node {}", refused.from) : std::string("this node"));
}

// Keeps the gauges current and counts elections and leader changes.
void Driver::observe_changes() {
  metrics_.pending_requests.set(static_cast<std::int64_t>(pending_requests()));
  if (!raft_) return;
  if (raft_->membership_index() != members_seen_) {
    members_seen_ = raft_->membership_index();
    io_.members_changed(raft_->membership());
  }
  const core::Role role = raft_->role();
  if (role != last_role_) {
    if (role == core::Role::candidate) metrics_.elections_started.add();
    if (role == core::Role::leader) metrics_.elections_won.add();
    metrics_.is_leader.set(role == core::Role::leader ? 1 : 0);
    last_role_ = role;
  }
  // The state machine's leadership hooks: lost for the term it led, then
  // gained for the new one.
  const Term leads = role == core::Role::leader && !stopped_ ? raft_->term() : Term{};
  if (leads != lead_term_) {
    if (lead_term_ != Term{}) sm_.on_leadership_lost(lead_term_);
    lead_term_ = leads;
    if (leads != Term{}) sm_.on_leadership_gained(leads);
  }
  if (raft_->leader() != last_leader_) {
    if (!raft_->leader().is_none()) metrics_.leader_changes.add();
    last_leader_ = raft_->leader();
  }
  metrics_.term.set(static_cast<std::int64_t>(raft_->term().value));
  observe_generation();
  if (const std::uint64_t changes = raft_->incarnation_changes(); changes != incarnation_changes_seen_) {
    metrics_.incarnation_changes.add(changes - incarnation_changes_seen_);
    incarnation_changes_seen_ = changes;
  }
  const Index commit = raft_->commit_index();
  if (commit > last_commit_) {
    metrics_.entries_committed.add(distance(last_commit_, commit));
    metrics_.commit_index.set(static_cast<std::int64_t>(commit.value));
    last_commit_ = commit;
  }
}

void Driver::finish(core::Ready& rd) {
  for (Message& m : rd.persisted_messages) send(std::move(m));
  if (rd.snapshot) {
    std::string detail;
    if (auto ec = snapshot_.install_received(*rd.snapshot, std::move(rd.snapshot_data), detail))
      return fail(ec, "loading a received snapshot: " + detail);
  }
  apply_committed(rd.committed_entries);
  if (stopped_) return;  // the state machine broke apply_batch's contract
  for (const core::ReadState& rs : rd.read_states) pending_.read_confirmed(rs.context, rs.index);
  for (const core::FailedRead& fr : rd.failed_reads) pending_.read_failed(fr.context);
  raft_->advance(rd);
  // A configuration applied here may add members the next Ready sends to.
  observe_changes();
  pending_.serve_reads(raft_->applied_index(), sm_);
  snapshot_.maybe_take(*raft_);
}

// Runs of consecutive commands the state machine has not seen go to it as one
// apply_batch; every entry (other types too) is then accounted for by
// applied(), in log order, as the state machine reports it.
void Driver::apply_committed(std::span<const Entry> entries) {
  const auto to_machine = [&](const Entry& e) { return e.type == EntryType::normal && e.index > snapshot_.recorded().index; };
  for (std::size_t i = 0; i < entries.size();) {
    if (!to_machine(entries[i])) {
      applied(entries[i++], {});
      continue;
    }
    std::size_t end = i + 1;
    while (end < entries.size() && to_machine(entries[end])) ++end;
    const auto run = entries.subspan(i, end - i);
    std::size_t reported = 0;
    sm_.apply_batch(run, [&](Bytes result) {
      if (reported < run.size()) applied(run[reported], std::move(result));
      ++reported;
    });
    if (reported != run.size())
      return fail(errc::invalid_argument,
                  fmt::format("the state machine's apply_batch reported {} results for the {} entries {} to {}",
                              reported, run.size(), run.front().index, run.back().index));
    i = end;
  }
}

void Driver::applied(const Entry& e, Bytes result) {
  snapshot_.applied(e);
  metrics_.entries_applied.add();
  metrics_.applied_index.set(static_cast<std::int64_t>(e.index.value));
  if (observer_) observer_->on_applied(e);
  pending_.complete_proposals(e, result);
}

void Driver::snapshot_now(DoneHandler done) {
  if (stopped_ || !raft_) return done(refusal());
  snapshot_.snapshot_now(*raft_, std::move(done));
}

void Driver::send(Message m) {
  if (m.type == MessageType::snapshot && !snapshot_.attach_bytes(m, *raft_)) return;
  metrics_.messages_sent.add();
  io_.send(std::move(m));
}

// ---- status -------------------------------------------------------------------

// The one place that turns a leader's id into an address. The address comes
// from the options' peer list for now.
LeaderHint Driver::leader_hint() const {
  if (stopped_ || !raft_ || raft_->leader().is_none()) return {};
  LeaderHint hint{raft_->leader(), {}};
  // The configuration's address book first (it follows membership changes),
  // the options' for a cluster whose log holds no configuration yet.
  const auto& book = raft_->membership().addresses;
  if (auto it = book.find(hint.id); it != book.end()) {
    hint.address = it->second;
  } else if (auto p = options_.peers.find(hint.id); p != options_.peers.end()) {
    hint.address = p->second;
  }
  return hint;
}

NodeStatus Driver::status(bool lists) const {
  NodeStatus s;
  s.id = options_.id;
  if (raft_) {
    s.role = stopped_ ? NodeRole::stopped : raft_->role();
    s.term = raft_->term();
    s.leader = stopped_ ? NodeId{} : raft_->leader();
    s.commit = raft_->commit_index();
    s.applied = raft_->applied_index();
    s.last_index = raft_->last_index();
    if (lists && raft_->role() == core::Role::leader && !stopped_) {
      for (const auto& [id, pr] : raft_->progress().map()) {
        if (id == options_.id) continue;
        s.peers.push_back({id, pr.match, pr.next, std::string(core::to_string(pr.state)), raft_->reachable(id),
                           pr.incarnation, core::is_voter(raft_->membership(), id) &&
                                               !core::is_voter(raft_->membership(), id, pr.incarnation)});
      }
    }
  } else {
    s.role = stopped_ ? NodeRole::stopped : NodeRole::starting;
  }
  s.snapshot_index = snapshot_.newest_index();  // taken and durable, compacted behind or not yet
  if (raft_) {
    if (lists) s.membership = raft_->membership();
    s.incarnation = raft_->incarnation();
    s.generation = raft_->generation();
    s.replacing = raft_->replacing();
  }
  s.failure = failure_;
  s.now = now_;
  s.started_at = started_at_;
  if (persisting_id_ != 0) s.disk_write_since = persist_started_;
  s.disk_full_since = disk_full_since_;
  s.contact_timeout = std::chrono::duration_cast<TimePoint>(options_.tick_interval) * options_.protocol.election_ticks;
  s.disk_stall_timeout = options_.disk_stall_timeout;
  if (lists && raft_) s.contacts = contacts();
  return s;
}

// Every other node the configuration or the options name, with when it
// was last heard from.
std::vector<PeerContact> Driver::contacts() const {
  std::set<NodeId> ids;
  const Membership& m = raft_->membership();
  for (const auto* list : {&m.voters, &m.voters_outgoing, &m.learners, &m.staging})
    ids.insert(list->begin(), list->end());
  for (const auto& [id, address] : options_.peers) ids.insert(id);
  ids.erase(options_.id);
  std::vector<PeerContact> out;
  for (NodeId id : ids) {
    auto it = heard_.find(id);
    out.push_back({id, it == heard_.end() ? std::nullopt : std::optional<TimePoint>(it->second)});
  }
  return out;
}

}  // namespace raftkit::runtime

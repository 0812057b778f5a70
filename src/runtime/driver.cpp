#include "runtime/driver.hpp"

#include <algorithm>
#include <utility>

#include <fmt/format.h>

#include "raftkit/error.hpp"

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
      // Contexts of one incarnation start at a random point far from the
      // others': a delayed answer to an earlier incarnation's read cannot
      // match one of ours. The top bit stays clear, so they never wrap.
      next_read_context_((read_nonce & ~(std::uint64_t{1} << 63)) | 1) {}

void Driver::inject_bugs_for_testing(unsigned bugs) {
  bugs_ = bugs;
  if (raft_) raft_->inject_bugs_for_testing(bugs & 0xffffu);
}

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
  if (auto ec = load_snapshot(detail)) return ec;
  // A snapshot proves the cluster existed: a node that has one never
  // bootstraps, whatever its options say. The incarnation is born with the
  // log, so a log lost beside surviving snapshots (recorded into the empty
  // log by load_snapshot(), perhaps before a crash, with no incarnation
  // written yet) comes back as a new incarnation.
  const bool snapshot_found = snapshot_meta_.index != Index{};
  options_.protocol.bootstrap = options_.bootstrap && !snapshot_found;
  if (bugs_ & bug_snapshot_keeps_identity) [[unlikely]]
    options_.protocol.bootstrap = options_.bootstrap;
  options_.protocol.initial_addresses = options_.peers;
  options_.protocol.incarnation = next_read_context_;  // drawn at random per start
  raft_ = std::make_unique<core::Raft>(options_.protocol, store_);
  written_hs_ = store_.hard_state();
  if (bugs_) raft_->inject_bugs_for_testing(bugs_ & 0xffffu);
  now_ = last_tick_ = now;
  report_configuration();
  observe_changes();
  return {};
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
          snapshot_meta_.index != Index{} ? "holds a snapshot" : fmt::format("has heard of term {}", term);
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

namespace {
// Copies what the state machine reads into memory: the snapshot loaded at
// start is kept for the first follower that needs it.
class TeeReader final : public SnapshotReader {
 public:
  TeeReader(SnapshotReader& in, Bytes& copy) : in_(in), copy_(copy) {
    copy_.reserve(static_cast<std::size_t>(in.remaining()));
  }
  std::error_code read(std::span<std::uint8_t> out, std::size_t& got) override {
    if (auto ec = in_.read(out, got)) return ec;
    copy_.insert(copy_.end(), out.begin(), out.begin() + static_cast<std::ptrdiff_t>(got));
    return {};
  }
  std::uint64_t remaining() const override { return in_.remaining(); }

 private:
  SnapshotReader& in_;
  Bytes& copy_;
};

// Counts the bytes a capture writes (metrics).
class CountingWriter final : public SnapshotWriter {
 public:
  CountingWriter(SnapshotWriter& out, std::uint64_t& count) : out_(out), count_(count) {}
  std::error_code write(BytesView data) override {
    count_ += data.size();
    return out_.write(data);
  }

 private:
  SnapshotWriter& out_;
  std::uint64_t& count_;
};
}  // namespace

std::error_code Driver::restore(SnapshotReader& in, std::string& detail) {
  const auto started = std::chrono::steady_clock::now();  // metrics only
  if (auto ec = sm_.restore_snapshot(in)) {
    detail = "the state machine refused the snapshot: " + ec.message();
    return ec;
  }
  metrics_.snapshot_restore_us.record(std::chrono::steady_clock::now() - started);
  return {};
}

std::error_code Driver::load_snapshot(std::string& detail) {
  const SnapshotMeta in_store = store_.snapshot_meta();
  SnapshotMeta loaded;
  auto kept = std::make_shared<Bytes>();
  std::string problem;
  std::string why;
  auto ec = snapshots_.load(
      [&](const SnapshotMeta& meta, SnapshotReader& in) -> std::error_code {
        if (meta.index < in_store.index) {
          problem = fmt::format("the newest snapshot ({}) is older than the log store's snapshot ({})", meta.index,
                                in_store.index);
          return errc::corrupted;
        }
        if (meta.index > in_store.index) {
          // A crash came between saving the snapshot and recording it in the store.
          if (auto e = store_.install_snapshot(meta)) return problem = "recording the snapshot", e;
          if (auto e = store_.sync()) return problem = "syncing the log store", e;
        }
        TeeReader tee(in, *kept);
        if (auto e = restore(tee, problem)) return e;
        Bytes rest;  // what the state machine left unread is part of the snapshot sent on
        if (auto e = read_all(tee, rest)) return problem = "reading the snapshot", e;
        loaded = meta;
        return {};
      },
      why);
  if (ec == errc::unavailable && problem.empty()) {
    if (in_store.index == Index{}) return {};
    detail = fmt::format("the log store starts after a snapshot at {} but no snapshot is available{}", in_store.index,
                         options_.snapshot_dir.empty() ? " (no snapshot_dir is set)" : " in " + options_.snapshot_dir);
    return errc::corrupted;
  }
  if (ec) {
    detail = problem.empty() ? "cannot load snapshot: " + why : problem + " (" + why + ")";
    return ec;
  }
  snapshot_meta_ = loaded;
  snapshot_data_ = std::move(kept);
  if (observer_) observer_->on_snapshot_loaded(loaded);
  return {};
}

void Driver::stop(std::error_code why) {
  if (stopped_) return;
  stopped_ = true;
  if (!failure_code_) failure_code_ = why;
  if (lead_term_ != Term{}) sm_.on_leadership_lost(std::exchange(lead_term_, Term{}));
  for (auto& [where, done] : proposals_) finish_proposal(done, why);
  proposals_.clear();
  proposal_deadlines_.clear();
  for (auto& [ctx, r] : reads_) r.done(why, {});
  reads_.clear();
  for (auto& t : transfers_) t.done(why);
  transfers_.clear();
  for (auto& c : std::exchange(changes_, {})) c.done(why);
  for (auto& w : std::exchange(snapshot_waiters_, {})) w.second(why);
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
  expire(now_);
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
  if (bugs_ & bug_drop_missed_ticks) [[unlikely]] {
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

void Driver::step(const Message& m) {
  if (stopped_ || !raft_) return;
  metrics_.messages_received.add();
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
  if (auto it = snapshot_sends_.find(peer); it != snapshot_sends_.end()) {
    if (ok) {
      metrics_.snapshots_sent.add();
      metrics_.snapshot_send_us.record(std::chrono::steady_clock::now() - it->second);
    } else {
      metrics_.snapshots_send_failed.add();
    }
    snapshot_sends_.erase(it);
  }
  raft_->report_snapshot(peer, ok);
  process();
}

bool Driver::too_many_pending() const {
  return proposals_.size() + reads_.size() >= options_.max_pending_requests;
}

void Driver::finish_proposal(ResultHandler& done, std::error_code ec, Bytes result) {
  metrics_.proposal_completed(ec);
  done(ec, std::move(result));
}

core::Proposed Driver::propose(Bytes command, ResultHandler done, TimePoint now, bool defer) {
  metrics_.proposals_received.add();
  if (stopped_ || !raft_) {
    finish_proposal(done, refusal());
    return {};
  }
  advance_clock(now);
  if (too_many_pending()) {
    finish_proposal(done, errc::busy);
    return {};
  }
  core::Proposed where;
  if (auto ec = raft_->propose(std::move(command), &where)) {
    finish_proposal(done, ec);
    return {};
  }
  if (bugs_ & (bug_proposals_by_index_only | bug_drop_on_collision)) [[unlikely]] {
    const auto older = proposals_.lower_bound({where.index, Term{}});
    if (older != proposals_.end() && older->first.first == where.index) {
      if (bugs_ & bug_proposals_by_index_only) {
        process();
        return where;  // the new caller is forgotten
      }
      auto done_older = std::move(older->second);
      proposals_.erase(older);
      finish_proposal(done_older, errc::dropped);
    }
  }
  proposals_.emplace(std::pair{where.index, where.term}, std::move(done));
  proposal_deadlines_.push_back({now_ + options_.request_timeout, where.index, where.term});
  if (!defer) process();
  return where;
}

void Driver::read(Bytes query, ResultHandler done, TimePoint now) {
  metrics_.reads_received.add();
  done = [this, inner = std::move(done)](std::error_code ec, Bytes result) {
    if (ec) metrics_.reads_failed.add();
    inner(ec, std::move(result));
  };
  if (stopped_ || !raft_) return done(refusal(), {});
  advance_clock(now);  // a read must see the lease as of now, not as of the last timer
  if (too_many_pending()) return done(errc::busy, {});
  const std::uint64_t ctx = next_read_context_++;
  if (auto ec = raft_->read_index(ctx)) return done(ec, {});
  reads_.emplace(ctx, PendingRead{std::move(query), std::move(done), now_ + options_.request_timeout, {}});
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
  transfers_.push_back({to, std::move(done), now_ + options_.request_timeout});
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
  if (!changes_.empty()) return done(errc::busy);
  const core::Progress* pr = raft_->progress().find(id);
  const std::uint64_t incarnation = pr ? pr->incarnation : 0;
  if (auto ec = raft_->replace_incarnation(id)) return done(ec);
  options_.logger.info(options_.id, raft_->term(), "replacing node {}'s incarnation by {:x}", id, incarnation);
  auto reached = [id, incarnation](const Membership& m) { return core::is_voter(m, id, incarnation); };
  changes_.push_back(PendingChange{std::move(reached), std::move(done), now_ + options_.membership_timeout});
  process();
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

void Driver::start_change(const Membership& target, std::function<bool(const Membership&)> reached, DoneHandler done,
                          TimePoint now) {
  advance_clock(now);
  if (!changes_.empty() && !(bugs_ & core::bug_overlapping_changes)) return done(errc::busy);
  const Membership& current = raft_->membership();
  if (!current.joint() && reached(current) && target == current) return done({});
  if (auto ec = raft_->propose_membership(target)) return done(ec);
  options_.logger.info(options_.id, raft_->term(), "membership change: {} -> {}", core::describe(current),
                       core::describe(target));
  changes_.push_back(PendingChange{std::move(reached), std::move(done), now_ + options_.membership_timeout});
  process();
}

void Driver::complete_changes() {
  const Membership& m = raft_->membership();
  if (changes_.empty() || m.joint()) return;
  std::erase_if(changes_, [&](PendingChange& c) {
    if (!c.reached(m)) return false;
    c.done({});
    return true;
  });
}

void Driver::write_done(std::uint64_t id, std::error_code ec, const std::string& what) {
  if (stopped_ || !raft_) return;
  if (ec) return fail(ec, what);
  if (id == snapshot_write_id_) {
    snapshot_write_id_ = 0;
    // Durable in the snapshot store; recorded in the log store (which
    // compacts the log) once maybe_compact() allows.
    if (snapshot_in_flight_.index > newest_snapshot_index()) taken_meta_ = snapshot_in_flight_;
    if (observer_) observer_->on_snapshot_taken(snapshot_in_flight_);
    std::erase_if(snapshot_waiters_, [&](auto& w) {
      if (snapshot_in_flight_.index < w.first) return false;
      w.second({});
      return true;
    });
    if (!snapshot_waiters_.empty()) snapshot_for_waiters();  // they asked while an older one was being saved
    maybe_compact();
    process();
    return;
  }
  if (id == compaction_write_id_) {
    compaction_write_id_ = 0;
    force_compaction_ = false;
    if (compacting_meta_.index > snapshot_meta_.index) {
      snapshot_meta_ = compacting_meta_;
      snapshot_data_.reset();
    }
    if (taken_meta_ && taken_meta_->index <= snapshot_meta_.index) taken_meta_.reset();
    maybe_compact();
    process();
    return;
  }
  if (id == loading_write_id_) {
    loading_write_id_ = 0;
    if (loading_->ec) {
      options_.logger.warn(options_.id, raft_->term(), "cannot read snapshot {} to send it: {}", snapshot_meta_.index,
                           loading_->detail.empty() ? loading_->ec.message() : loading_->detail);
    } else if (loading_->meta.index == snapshot_meta_.index && loading_->meta.term == snapshot_meta_.term) {
      snapshot_data_ = std::make_shared<Bytes>(std::move(loading_->data));
    }
    loading_.reset();
    process();
    return;
  }
  if (!persisting_ || id != persisting_id_) return;
  auto rd = std::move(persisting_);
  persisting_id_ = 0;
  finish(*rd);
  process();
}

// Completes requests whose time ran out. Deadlines are queued in arrival
// order, which is deadline order; an entry whose proposal already completed
// is skipped.
void Driver::expire(TimePoint now) {
  while (!proposal_deadlines_.empty() && proposal_deadlines_.front().at <= now) {
    const Deadline d = proposal_deadlines_.front();
    proposal_deadlines_.pop_front();
    auto it = proposals_.find({d.index, d.term});
    if (it == proposals_.end()) continue;
    finish_proposal(it->second, errc::timeout);
    proposals_.erase(it);
  }
  for (auto it = reads_.begin(); it != reads_.end() && it->second.deadline <= now;) {
    it->second.done(errc::timeout, {});
    it = reads_.erase(it);
  }
  std::erase_if(transfers_, [&](PendingTransfer& t) {
    if (t.deadline > now) return false;
    t.done(errc::timeout);
    return true;
  });
  std::erase_if(changes_, [&](PendingChange& c) {
    if (c.deadline > now) return false;
    c.done(errc::timeout);
    return true;
  });
}

// Ticks go on while a write is in flight; a leader whose own write has not
// finished in time steps down, so a healthy node can take over.
void Driver::check_disk_stall(TimePoint now) {
  if (!persisting_ || now - persist_started_ < options_.disk_stall_timeout) return;
  if (!stall_reported_) {
    options_.logger.warn(options_.id, raft_->term(), "log write stalled for more than {} ms{}",
                         options_.disk_stall_timeout.count(),
                         raft_->role() == core::Role::leader ? "; stepping down as leader" : "");
    stall_reported_ = true;
  }
  raft_->step_down();
}

// ---- the Ready cycle ----------------------------------------------------------

std::shared_ptr<DiskWrite> Driver::new_write(std::function<std::error_code(std::string&)> apply) {
  auto w = std::make_shared<DiskWrite>();
  w->id = ++next_write_;
  w->apply = std::move(apply);
  return w;
}

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
        !(bugs_ & bug_config_on_unwritten_commit) &&
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
    if (hs) written_hs_ = *hs;
    persisting_ = rd;
    persist_started_ = now_;
    stall_reported_ = false;
    auto w = new_write([this, rd, hs](std::string& what) -> std::error_code {
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
    io_.persist(std::move(w));
  }
  if (!stopped_) {
    complete_transfers();
    complete_changes();
  }
  observe_changes();
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
    MemorySnapshotReader in(rd.snapshot_data);
    std::string detail;
    if (auto ec = restore(in, detail)) return fail(ec, "loading a received snapshot: " + detail);
    snapshot_meta_ = *rd.snapshot;
    snapshot_data_ = std::make_shared<Bytes>(std::move(rd.snapshot_data));
    bytes_since_snapshot_ = 0;
    if (taken_meta_ && taken_meta_->index <= snapshot_meta_.index) taken_meta_.reset();
    metrics_.snapshots_installed.add();
    if (observer_) observer_->on_snapshot_loaded(snapshot_meta_);
  }
  apply_committed(rd.committed_entries);
  if (stopped_) return;  // the state machine broke apply_batch's contract
  for (const core::ReadState& rs : rd.read_states) {
    auto it = reads_.find(rs.context);
    if (it != reads_.end()) it->second.index = rs.index;
  }
  for (const core::FailedRead& fr : rd.failed_reads) {
    auto it = reads_.find(fr.context);
    if (it == reads_.end()) continue;
    it->second.done(errc::not_leader, {});
    reads_.erase(it);
  }
  raft_->advance(rd);
  // A configuration applied here may add members the next Ready sends to.
  observe_changes();
  serve_reads();
  maybe_snapshot();
}

// Runs of consecutive commands the state machine has not seen go to it as one
// apply_batch; every entry (other types too) is then accounted for by
// applied(), in log order, as the state machine reports it.
void Driver::apply_committed(std::span<const Entry> entries) {
  const auto to_machine = [&](const Entry& e) { return e.type == EntryType::normal && e.index > snapshot_meta_.index; };
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
  bytes_since_snapshot_ += entry_bytes(e);
  metrics_.entries_applied.add();
  metrics_.applied_index.set(static_cast<std::int64_t>(e.index.value));
  if (observer_) observer_->on_applied(e);
  // Every proposal that landed at this index is decided now: the one of the
  // committed entry's term succeeded, the others never will.
  auto it = proposals_.lower_bound({e.index, Term{}});
  while (it != proposals_.end() && it->first.first == e.index) {
    if (it->first.second == e.term) {
      finish_proposal(it->second, {}, std::move(result));
    } else {
      finish_proposal(it->second, errc::dropped);  // another leader's entry took the slot
    }
    it = proposals_.erase(it);
  }
}

void Driver::serve_reads() {
  const Index applied = raft_->applied_index();
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index && *it->second.index <= applied) {
      it->second.done({}, sm_.query(it->second.query));
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void Driver::complete_transfers() {
  if (transfers_.empty()) return;
  const NodeId leader = raft_->leader();
  std::erase_if(transfers_, [&](PendingTransfer& t) {
    if (leader != t.to) return false;
    t.done({});
    return true;
  });
}

// The state machine captures its state here, on the driver's thread, and
// the capture is serialised inside the DiskWrite: on Node's disk thread while
// applies go on, synchronously in the simulator.
// One snapshot waits for compaction at a time: the next is taken once the
// log store recorded the previous one (so with snapshot_trailing_entries
// above snapshot_interval, snapshots come every trailing-window entries).
void Driver::maybe_snapshot() {
  maybe_compact();
  if (snapshot_write_id_ != 0 || taken_meta_) return;
  const Index applied = raft_->applied_index();
  const bool by_entries =
      options_.snapshot_interval != 0 && distance(newest_snapshot_index(), applied) >= options_.snapshot_interval;
  const bool by_bytes = options_.snapshot_interval_bytes != 0 && bytes_since_snapshot_ >= options_.snapshot_interval_bytes &&
                        applied > newest_snapshot_index();
  if (!by_entries && !by_bytes) return;
  take_snapshot();
}

void Driver::snapshot_now(DoneHandler done) {
  if (stopped_ || !raft_) return done(refusal());
  const Index applied = raft_->applied_index();
  if (newest_snapshot_index() >= applied && snapshot_write_id_ == 0) return done({});
  snapshot_waiters_.emplace_back(applied, std::move(done));
  if (snapshot_write_id_ == 0) snapshot_for_waiters();
}

// Starts a snapshot for the snapshot_now() callers; if none can be taken (the
// applied entry's term is gone from the log), they learn it now rather than
// wait for ever.
void Driver::snapshot_for_waiters() {
  take_snapshot();
  if (snapshot_write_id_ != 0) return;
  for (auto& w : std::exchange(snapshot_waiters_, {})) w.second(errc::unavailable);
}

void Driver::take_snapshot() {
  const Index applied = raft_->applied_index();
  const auto term = raft_->log().term(applied);
  if (!term) return;
  snapshot_in_flight_ = SnapshotMeta{applied, *term, raft_->membership()};
  bytes_since_snapshot_ = 0;
  const auto started = std::chrono::steady_clock::now();  // metrics only
  std::shared_ptr<SnapshotCapture> capture = sm_.capture_snapshot();
  metrics_.snapshot_capture_us.record(std::chrono::steady_clock::now() - started);
  auto w = new_write([this, meta = snapshot_in_flight_, capture = std::move(capture)](std::string& what) {
    const auto saving = std::chrono::steady_clock::now();
    std::uint64_t bytes = 0;
    auto ec = snapshots_.save(
        meta,
        [&](SnapshotWriter& out) {
          CountingWriter counted(out, bytes);
          return capture->write_to(counted);
        },
        what);
    if (ec) {
      what = "taking a snapshot: " + what;
      return ec;
    }
    metrics_.snapshot_save_us.record(std::chrono::steady_clock::now() - saving);
    metrics_.snapshot_bytes.record(bytes);
    return std::error_code{};
  });
  w->snapshot_only = true;
  snapshot_write_id_ = w->id;
  io_.persist(std::move(w));
}

// Records the newest taken snapshot in the log store, which discards the log
// up to it — once `snapshot_trailing_entries` entries follow it (a follower
// a little behind is served from the log), and, on a leader, not while a
// follower is receiving a snapshot: what it needs next is the log right
// after that snapshot.
void Driver::maybe_compact() {
  if (!taken_meta_ || compaction_write_id_ != 0) return;
  // A Ready that installs a received snapshot is being written: the store's
  // writes run in hand-out order, so recording ours after it could take the
  // store back to an older snapshot. finish() drops ours if it is covered.
  if (persisting_ && persisting_->snapshot) return;
  if (!force_compaction_ && distance(taken_meta_->index, raft_->applied_index()) < options_.snapshot_trailing_entries)
    return;
  if (raft_->role() == core::Role::leader) {
    for (const auto& [id, pr] : raft_->progress().map()) {
      if (id != options_.id && pr.state == core::ProgressState::snapshot && pr.pending_snapshot < taken_meta_->index)
        return;
    }
  }
  compacting_meta_ = *taken_meta_;
  auto w = new_write([this, meta = compacting_meta_](std::string& what) -> std::error_code {
    if (auto e = store_.install_snapshot(meta)) {
      what = "recording a snapshot";
      return e;
    }
    return {};
  });
  compaction_write_id_ = w->id;
  io_.persist(std::move(w));
}

// The bytes of the recorded snapshot are read from the snapshot store on the
// snapshot thread (a snapshot_only write), only when a follower needs them.
// The store holds the newest snapshot only: while a newer one waits for the
// trailing window, the recorded one's file is gone, so the newer one is
// recorded at once (the follower needs a snapshot anyway) and sent instead.
void Driver::fetch_snapshot_to_send() {
  if (loading_write_id_ != 0 || snapshot_meta_.index == Index{}) return;
  if (taken_meta_) {
    force_compaction_ = true;
    maybe_compact();
    return;
  }
  loading_ = std::make_shared<Loading>();
  auto w = new_write([this, loading = loading_](std::string&) -> std::error_code {
    loading->ec = snapshots_.load(loading->meta, loading->data, loading->detail);
    return {};  // a failed read is not a failed write: the node goes on, and logs it
  });
  w->snapshot_only = true;
  loading_write_id_ = w->id;
  io_.persist(std::move(w));
}

void Driver::send(Message m) {
  if (m.type == MessageType::snapshot) {
    // Only the snapshot the log store records can be sent, once its bytes
    // are in memory; meanwhile the core hears it failed and asks again later.
    if (!m.snapshot || !snapshot_data_ || m.snapshot->index != snapshot_meta_.index) {
      raft_->report_snapshot(m.to, false);
      if (m.snapshot && m.snapshot->index == snapshot_meta_.index) fetch_snapshot_to_send();
      return;
    }
    // Moved, not copied (a large snapshot would stall this thread): the next
    // follower that needs it has it read from the store again.
    m.snapshot_data = std::move(*snapshot_data_);
    snapshot_data_.reset();
    snapshot_sends_[m.to] = std::chrono::steady_clock::now();  // metrics only
  }
  metrics_.messages_sent.add();
  io_.send(std::move(m));
}

// ---- status -------------------------------------------------------------------

namespace {
NodeRole public_role(core::Role r) {
  switch (r) {
    case core::Role::follower: return NodeRole::follower;
    case core::Role::pre_candidate: return NodeRole::pre_candidate;
    case core::Role::candidate: return NodeRole::candidate;
    case core::Role::leader: return NodeRole::leader;
  }
  return NodeRole::follower;
}
}  // namespace

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
    s.role = stopped_ ? NodeRole::stopped : public_role(raft_->role());
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
  s.snapshot_index = newest_snapshot_index();  // taken and durable, compacted behind or not yet
  if (raft_) {
    if (lists) s.membership = raft_->membership();
    s.incarnation = raft_->incarnation();
    s.replacing = raft_->replacing();
  }
  s.failure = failure_;
  return s;
}

}  // namespace raftkit::runtime

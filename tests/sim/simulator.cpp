#include "sim/simulator.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "raftkit/error.hpp"

namespace raftkit::sim {

namespace {
// A healthy cluster keeps a few hundred events queued; a feedback loop of
// messages (each answer provoking more than one new message) grows without
// bound and would never finish.
constexpr std::size_t kMaxQueuedEvents = 100000;
constexpr int kRevertLoss = 0, kRevertDup = 1, kRevertSpike = 2, kRevertCut = 3, kRevertClock = 4;
}

Simulator::Simulator(SimConfig config, Tuning tuning)
    : config_(std::move(config)), tuning_(tuning), rng_(config_.seed * 0x2545F4914F6CDD1DULL + 7),
      checker_(static_cast<std::size_t>(config_.nodes)) {
  n_ = static_cast<std::size_t>(config_.nodes);
  loss_.assign(n_ * n_, 0.0);
  dup_.assign(n_ * n_, 0.0);
  spike_.assign(n_ * n_, 0.0);
  cut_.assign(n_ * n_, 0);
  base_delay_.assign(n_ * n_, 0);
  for (Time& d : base_delay_) d = rng_.range(tuning_.link_delay_min, tuning_.link_delay_max);

  std::vector<NodeId> voters;
  for (std::size_t i = 0; i < n_; ++i) voters.push_back(NodeId{i + 1});
  // Half the runs send appends of one or two entries: a new leader's no-op
  // then travels apart from the older entries before it, which is what
  // makes the Figure 8 window (an old-term entry on a majority, the no-op
  // not yet) reachable at all.
  const bool small_appends = rng_.below(2) == 0;
  for (std::size_t i = 0; i < n_; ++i) {
    auto node = std::make_unique<Node>();
    node->id = voters[i];
    ProtocolOptions& o = node->options;
    o.id = node->id;
    o.initial_voters = voters;
    o.election_ticks = tuning_.election_ticks;
    o.heartbeat_ticks = tuning_.heartbeat_ticks;
    o.max_entries_per_append = static_cast<std::size_t>(small_appends ? rng_.range(1, 2) : rng_.range(4, 64));
    o.max_inflight_messages = static_cast<std::size_t>(rng_.range(4, 64));
    o.seed = rng_.next();
    if (has(config_.faults, Fault::drift)) node->base_clock_rate = 0.95 + 0.1 * rng_.unit();
    node->clock_rate = node->base_clock_rate;
    nodes_.push_back(std::move(node));
  }
  for (int c = 0; c < config_.clients; ++c) {
    Client cl;
    cl.id = c;
    cl.target = rng_.below(n_);
    clients_.push_back(cl);
  }
}

// ---------------------------------------------------------------------------
// Events

void Simulator::schedule(Time at, Ev kind, std::uint32_t node, std::uint64_t gen, std::uint64_t arg) {
  queue_.push(Event{at, seq_++, kind, node, gen, arg});
}

void Simulator::trace(TraceEvent e) {
  e.at = now_;
  trace_.record(e);
  if (config_.verbose) config_.verbose(format_event(e));
}

void Simulator::trace_message(TraceKind kind, const Message& m) {
  TraceEvent e;
  e.kind = kind;
  e.node = static_cast<std::uint8_t>(kind == TraceKind::deliver ? m.to.value : m.from.value);
  e.peer = static_cast<std::uint8_t>(kind == TraceKind::deliver ? m.from.value : m.to.value);
  e.mtype = static_cast<std::uint8_t>(m.type);
  e.a = m.term.value;
  e.b = m.index.value;
  e.c = m.entries.size() | (std::uint64_t{m.reject} << 32);
  e.d = m.commit.value;
  trace(e);
}

RunResult Simulator::run() {
  const Time T = tuning_.election_timeout();
  final_heal_by_ = config_.duration - T * tuning_.liveness_election_timeouts - 2 * kSeconds;
  clients_stop_at_ = config_.duration - 2 * kSeconds;
  for (std::size_t n = 0; n < n_; ++n) start_node(n);
  // The cluster starts healthy: the first leader must appear as after a heal.
  heal_all(false);
  for (auto& c : clients_) schedule(rng_.range(0, 200 * kMillis), Ev::client_next, static_cast<std::uint32_t>(c.id));

  while (!queue_.empty() && !violation_) {
    const Event e = queue_.top();
    if (e.at > config_.duration) break;
    queue_.pop();
    now_ = e.at;
    ++stats_.events;
    dispatch(e);
    if (!violation_ && checker_.failed()) violation(checker_.kind(), checker_.what());
    if (queue_.size() > kMaxQueuedEvents && !violation_)
      violation("message storm", fmt::format("{} events pending: the cluster is flooding itself", queue_.size()));
  }
  if (!violation_) {
    now_ = config_.duration;
    final_checks();
  }

  RunResult r;
  r.config = config_;
  r.config.verbose = nullptr;
  stats_.runs = 1;
  stats_.simulated = now_;
  stats_.elections = checker_.elections();
  stats_.commits = checker_.committed().value;
  stats_.violations = violation_ ? 1 : 0;
  r.stats = stats_;
  r.violation = violation_;
  r.trace_hash = trace_.hash();
  return r;
}

void Simulator::violation(std::string kind, std::string what) {
  if (violation_) return;
  Violation v;
  v.kind = std::move(kind);
  v.what = std::move(what);
  v.at = now_;
  v.recent_events = trace_.recent(30);
  violation_ = std::move(v);
}

void Simulator::dispatch(const Event& e) {
  switch (e.kind) {
    case Ev::tick: {
      Node& nd = *nodes_[e.node];
      if (!nd.up || nd.gen != e.gen) return;
      nd.raft->tick();
      trace({.kind = TraceKind::tick, .node = static_cast<std::uint8_t>(e.node + 1), .a = nd.raft->term().value,
             .b = static_cast<std::uint64_t>(nd.raft->role())});
      drive(e.node);
      after_step(e.node);
      if (nd.up && nd.gen == e.gen) schedule_tick(e.node);
      return;
    }
    case Ev::deliver: {
      const auto slot = static_cast<std::uint32_t>(e.arg);
      Message m = std::move(msg_pool_[slot]);
      msg_free_.push_back(slot);
      const std::size_t from = m.from.value - 1, to = m.to.value - 1;
      Node& nd = *nodes_[to];
      if (!nd.up || cut_[from * n_ + to] > 0) {
        trace_message(TraceKind::drop, m);
        return;
      }
      trace_message(TraceKind::deliver, m);
      nd.raft->step(m);
      drive(to);
      after_step(to);
      return;
    }
    case Ev::sync_done: {
      Node& nd = *nodes_[e.node];
      if (!nd.up || nd.gen != e.gen) return;
      complete_sync(e.node);
      after_step(e.node);
      return;
    }
    case Ev::client_arrive: {
      const auto slot = static_cast<std::uint32_t>(e.arg);
      const ClientPacket p = packet_pool_[slot];
      packet_free_.push_back(slot);
      client_arrive(e.node, p);
      return;
    }
    case Ev::client_reply: {
      const auto slot = static_cast<std::uint32_t>(e.arg);
      const ClientPacket p = packet_pool_[slot];
      packet_free_.push_back(slot);
      client_reply(p);
      return;
    }
    case Ev::client_timeout: {
      Client& c = clients_[e.node];
      if (!c.op || *c.op != e.arg) return;
      ops_[e.arg].status = OpStatus::unknown;
      trace({.kind = TraceKind::client_timeout, .peer = static_cast<std::uint8_t>(c.id), .a = e.arg});
      c.op.reset();
      retarget(c, NodeId{});
      schedule(now_ + rng_.range(kMillis, 20 * kMillis), Ev::client_next, e.node);
      return;
    }
    case Ev::client_next: client_next(clients_[e.node]); return;
    case Ev::phase_start: phase_start(); return;
    case Ev::phase_end: phase_end(); return;
    case Ev::nemesis:
      if (!chaos_) return;
      inject_fault();
      schedule(now_ + std::max<Time>(20 * kMillis, rng_.exponential(static_cast<double>(tuning_.fault_interval_mean))),
               Ev::nemesis);
      return;
    case Ev::revert: {
      auto it = reverts_.find(e.arg);
      if (it == reverts_.end()) return;
      for (auto [a, b] : it->second.links) {
        switch (it->second.what) {
          case kRevertLoss: loss_[a * n_ + b] = 0; break;
          case kRevertDup: dup_[a * n_ + b] = 0; break;
          case kRevertSpike: spike_[a * n_ + b] = 0; break;
          case kRevertCut: cut_[a * n_ + b] = std::max(0, cut_[a * n_ + b] - 1); break;
          case kRevertClock: nodes_[a]->clock_rate = nodes_[a]->base_clock_rate; break;
        }
      }
      reverts_.erase(it);
      trace({.kind = TraceKind::heal, .a = 0});
      return;
    }
    case Ev::restart: {
      Node& nd = *nodes_[e.node];
      if (nd.up || nd.gen != e.gen) return;
      start_node(e.node);
      return;
    }
    case Ev::probe: {
      if (!liveness_pending_) return;
      // Offer a write wherever a node believes it leads.
      for (std::size_t n = 0; n < n_; ++n) {
        Node& nd = *nodes_[n];
        if (!nd.up || nd.raft->role() != core::Role::leader) continue;
        Command cmd;
        cmd.kind = OpKind::probe;
        (void)nd.raft->propose(encode(cmd));
        drive(n);
        after_step(n);
      }
      schedule(now_ + tuning_.tick * 2, Ev::probe);
      return;
    }
    case Ev::liveness_deadline:
      if (liveness_pending_ && e.arg == static_cast<std::uint64_t>(healed_at_)) {
        violation("liveness",
                  fmt::format("no new entry committed within {} election timeouts ({}) after the heal at {}",
                              tuning_.liveness_election_timeouts, format_time(now_ - healed_at_),
                              format_time(healed_at_)));
      }
      return;
  }
}

// ---------------------------------------------------------------------------
// Nodes

void Simulator::schedule_tick(std::size_t n) {
  Node& nd = *nodes_[n];
  const auto period = static_cast<Time>(static_cast<double>(tuning_.tick) * nd.clock_rate);
  schedule(now_ + std::max<Time>(1, period), Ev::tick, static_cast<std::uint32_t>(n), nd.gen);
}

void Simulator::start_node(std::size_t n) {
  Node& nd = *nodes_[n];
  nd.raft = std::make_unique<core::Raft>(nd.options, nd.store);
  if (config_.bugs) nd.raft->inject_bugs_for_testing(config_.bugs);
  nd.up = true;
  ++nd.gen;
  nd.syncing = false;
  nd.in_flight.reset();
  nd.sm = StateMachine{};
  nd.sm.applied = nd.raft->applied_index();
  nd.proposals.clear();
  nd.reads.clear();
  nd.last_role = nd.raft->role();
  nd.last_term = nd.raft->term();
  trace({.kind = TraceKind::restart, .node = static_cast<std::uint8_t>(n + 1), .a = nd.raft->term().value,
         .b = nd.raft->last_index().value, .c = nd.raft->commit_index().value});
  checker_.on_start(n, *nd.raft, nd.store.hard_state().commit);
  // The first tick comes at a random phase of the node's period.
  schedule(now_ + rng_.range(1, tuning_.tick), Ev::tick, static_cast<std::uint32_t>(n), nd.gen);
  drive(n);
}

void Simulator::crash_node(std::size_t n, bool storage_error) {
  Node& nd = *nodes_[n];
  if (!nd.up) return;
  const std::size_t unsynced = nd.store.unsynced_writes();
  const std::size_t keep = rng_.chance(0.5) ? 0 : static_cast<std::size_t>(rng_.below(unsynced + 1));
  trace({.kind = TraceKind::crash, .node = static_cast<std::uint8_t>(n + 1), .a = keep, .b = unsynced - keep});
  nd.raft.reset();
  nd.store.crash(keep);
  nd.up = false;
  nd.power_cut_armed = false;
  ++nd.gen;
  nd.syncing = false;
  nd.in_flight.reset();
  nd.proposals.clear();
  nd.reads.clear();
  checker_.on_crash(n);
  const Time down = storage_error ? rng_.range(300 * kMillis, 3 * kSeconds) : rng_.range(10 * kMillis, 3 * kSeconds);
  schedule(now_ + down, Ev::restart, static_cast<std::uint32_t>(n), nd.gen);
}

void Simulator::drive(std::size_t n) {
  Node& nd = *nodes_[n];
  while (nd.up && !nd.syncing && nd.raft->has_ready()) {
    core::Ready rd = nd.raft->ready();
    checker_.on_ready(n, *nd.raft, rd);
    trace({.kind = TraceKind::ready, .node = static_cast<std::uint8_t>(n + 1), .a = rd.entries.size(),
           .b = rd.messages.size() + rd.persisted_messages.size(), .c = rd.committed_entries.size(),
           .d = rd.hard_state ? rd.hard_state->commit.value : 0});
    for (const Message& m : rd.messages) send(m);
    if (!rd.must_sync()) {
      finish_ready(n, rd);
      continue;
    }
    std::error_code ec;
    if (rd.snapshot) ec = nd.store.install_snapshot(*rd.snapshot);
    if (!ec && !rd.entries.empty()) ec = nd.store.append(rd.entries);
    if (!ec && rd.hard_state) ec = nd.store.save_hard_state(*rd.hard_state);
    if (ec) {
      trace({.kind = TraceKind::storage_error, .node = static_cast<std::uint8_t>(n + 1), .a = 0});
      crash_node(n, true);
      return;
    }
    if (nd.power_cut_armed) {
      crash_node(n, false);  // power lost while the sync was in flight
      return;
    }
    nd.syncing = true;
    nd.in_flight = std::move(rd);
    Time latency = rng_.range(tuning_.sync_min, tuning_.sync_max);
    if (rng_.chance(tuning_.slow_sync_chance)) latency += rng_.range(10 * kMillis, 60 * kMillis);
    schedule(now_ + latency, Ev::sync_done, static_cast<std::uint32_t>(n), nd.gen);
    return;
  }
}

void Simulator::complete_sync(std::size_t n) {
  Node& nd = *nodes_[n];
  if (nd.store.sync()) {
    trace({.kind = TraceKind::storage_error, .node = static_cast<std::uint8_t>(n + 1), .a = 1});
    crash_node(n, true);  // a failed sync is fatal: stop, never ack
    return;
  }
  checker_.on_synced(n, nd.store.durable().hard_state());
  trace({.kind = TraceKind::sync_done, .node = static_cast<std::uint8_t>(n + 1),
         .a = nd.store.last_index().value, .b = nd.store.hard_state().commit.value});
  nd.syncing = false;
  core::Ready rd = std::move(*nd.in_flight);
  nd.in_flight.reset();
  finish_ready(n, rd);
  drive(n);
}

void Simulator::finish_ready(std::size_t n, core::Ready& rd) {
  Node& nd = *nodes_[n];
  for (const Message& m : rd.persisted_messages) send(m);
  for (const Entry& e : rd.committed_entries) apply(n, e);
  for (const core::ReadState& rs : rd.read_states) {
    auto it = nd.reads.find(rs.context);
    if (it != nd.reads.end()) it->second.index = std::max(rs.index, Index{1});
  }
  for (const core::FailedRead& fr : rd.failed_reads) {
    auto it = nd.reads.find(fr.context);
    if (it == nd.reads.end()) continue;
    reply(n, it->second.client, it->second.op, OpStatus::failed, {}, fr.leader_hint);
    nd.reads.erase(it);
  }
  nd.raft->advance(rd);
  serve_reads(n);
}

void Simulator::apply(std::size_t n, const Entry& e) {
  Node& nd = *nodes_[n];
  const OpOutput out = nd.sm.apply(e);
  checker_.on_apply(n, e, nd.sm.hash);
  auto it = nd.proposals.find(e.index.value);
  if (it == nd.proposals.end()) return;
  const Proposal p = it->second;
  nd.proposals.erase(it);
  // Same index, same term: it is our entry. Another term at an applied
  // (committed) index: ours can never commit.
  reply(n, p.client, p.op, e.term == p.term ? OpStatus::ok : OpStatus::failed, out);
}

void Simulator::serve_reads(std::size_t n) {
  Node& nd = *nodes_[n];
  for (auto it = nd.reads.begin(); it != nd.reads.end();) {
    const PendingRead& r = it->second;
    if (r.index == Index{} || r.index > nd.sm.applied) {
      ++it;
      continue;
    }
    reply(n, r.client, r.op, OpStatus::ok, nd.sm.read(r.kind));
    it = nd.reads.erase(it);
  }
}

void Simulator::after_step(std::size_t n) {
  Node& nd = *nodes_[n];
  if (!nd.up) return;
  const core::Raft& r = *nd.raft;
  if (r.role() != nd.last_role || r.term() != nd.last_term) {
    nd.last_role = r.role();
    nd.last_term = r.term();
    trace({.kind = TraceKind::role, .node = static_cast<std::uint8_t>(n + 1), .a = r.term().value,
           .b = static_cast<std::uint64_t>(r.role()), .c = r.last_index().value, .d = r.commit_index().value});
    if (r.role() == core::Role::leader && cut_next_leader_ > 0) {
      // A leader elected just as its outgoing links fail: its first appends
      // never arrive, so the voters' logs stay behind its own.
      std::vector<std::pair<std::size_t, std::size_t>> links;
      for (std::size_t o = 0; o < n_; ++o)
        if (o != n) links.emplace_back(n, o);
      for (auto [a, b] : links) ++cut_[a * n_ + b];
      trace({.kind = TraceKind::fault, .a = static_cast<std::uint64_t>(Fault::oneway), .b = n + 1, .c = 3});
      add_revert(std::move(links), kRevertCut, cut_next_leader_);
      cut_next_leader_ = 0;
    }
  }
  checker_.after_step(n, r);
  if (r.role() == core::Role::leader) {
    for (std::size_t f = 0; f < n_; ++f)
      if (f != n && nodes_[f]->up) checker_.check_match(n, r, f, *nodes_[f]->raft);
  } else if (!r.leader().is_none() && r.leader().value <= n_) {
    const std::size_t l = r.leader().value - 1;
    if (l != n && nodes_[l]->up) checker_.check_match(l, *nodes_[l]->raft, n, r);
  }
  if (checker_.committed() > safety_checked_commit_) check_commit_safety();
  if (liveness_pending_ && r.commit_index() > liveness_target_) {
    liveness_pending_ = false;
    trace({.kind = TraceKind::liveness, .a = 1});
  }
}

void Simulator::check_commit_safety() {
  // The Raft proof (leader completeness) shows that in a correct cluster a
  // node lacking a committed entry is strictly less up to date than every
  // node of the majority that committed it, so it cannot collect a majority
  // of votes. Judge the newest committed index against each node's current
  // log (as a candidate) and every node's durable log (as a voter).
  const Index i = checker_.committed();
  safety_checked_commit_ = i;
  std::optional<Term> committed_term;
  for (auto& nd : nodes_)
    if (nd->up && nd->raft->commit_index() >= i) committed_term = nd->raft->log().term(i);
  if (!committed_term) return;
  struct Last {
    Term term;
    Index index;
    auto operator<=>(const Last&) const = default;
  };
  std::vector<Last> voters;
  for (auto& nd : nodes_) {
    const LogStore& d = nd->store.durable();
    voters.push_back({d.term(d.last_index()).value_or(Term{}), d.last_index()});
  }
  for (std::size_t n = 0; n < n_; ++n) {
    Node& nd = *nodes_[n];
    const LogStore& d = nd.store.durable();
    const std::optional<Term> have = nd.up ? nd.raft->log().term(i) : d.term(i);
    if (have == committed_term) continue;
    const Last mine = nd.up ? Last{nd.raft->log().last_term(), nd.raft->last_index()}
                            : Last{d.term(d.last_index()).value_or(Term{}), d.last_index()};
    std::size_t would_vote = 0;
    for (std::size_t v = 0; v < n_; ++v)
      if (v == n || voters[v] <= mine) ++would_vote;
    if (would_vote * 2 > n_) {
      violation("leader completeness",
                fmt::format("index {} (term {}) is committed, but n{} lacks it and its log (last {}/term {}) is at "
                            "least as up to date as {} of {} nodes' durable logs: it could be elected and erase it",
                            i, *committed_term, n + 1, mine.index, mine.term, would_vote, n_));
      return;
    }
  }
}

std::optional<std::size_t> Simulator::leader() const {
  std::optional<std::size_t> best;
  for (std::size_t n = 0; n < n_; ++n) {
    const Node& nd = *nodes_[n];
    if (!nd.up || nd.raft->role() != core::Role::leader) continue;
    if (!best || nd.raft->term() > nodes_[*best]->raft->term()) best = n;
  }
  return best;
}

// ---------------------------------------------------------------------------
// Network

std::uint32_t Simulator::pool_message(const Message& m) {
  if (!msg_free_.empty()) {
    const std::uint32_t slot = msg_free_.back();
    msg_free_.pop_back();
    msg_pool_[slot] = m;
    return slot;
  }
  msg_pool_.push_back(m);
  return static_cast<std::uint32_t>(msg_pool_.size() - 1);
}

Time Simulator::link_delay(std::size_t from, std::size_t to) {
  const std::size_t link = from * n_ + to;
  const Time base = base_delay_[link];
  Time d = base + rng_.exponential(static_cast<double>(base) / 2);
  if (spike_[link] > 0 && rng_.chance(spike_[link])) d += rng_.range(20 * kMillis, 800 * kMillis);
  return d;
}

Time Simulator::client_delay() {
  return rng_.range(tuning_.client_delay_min, tuning_.client_delay_max);
}

void Simulator::send(const Message& m) {
  const std::size_t from = m.from.value - 1, to = m.to.value - 1;
  if (from >= n_ || to >= n_) return;
  const std::size_t link = from * n_ + to;
  if (cut_[link] > 0 || (loss_[link] > 0 && rng_.chance(loss_[link]))) {
    trace_message(TraceKind::drop, m);
    return;
  }
  const int copies = dup_[link] > 0 && rng_.chance(dup_[link]) ? 2 : 1;
  for (int k = 0; k < copies; ++k) {
    schedule(now_ + link_delay(from, to), Ev::deliver, static_cast<std::uint32_t>(to), 0, pool_message(m));
  }
}

// ---------------------------------------------------------------------------
// Clients

void Simulator::retarget(Client& c, NodeId hint) {
  if (!hint.is_none() && hint.value <= n_ && hint.value - 1 != c.target) {
    c.target = hint.value - 1;
    return;
  }
  if (n_ > 1) c.target = (c.target + 1 + rng_.below(n_ - 1)) % n_;
}

void Simulator::client_next(Client& c) {
  if (now_ >= clients_stop_at_ || c.op) return;
  OpRecord op;
  op.client = c.id;
  op.call = now_;
  const std::uint64_t roll = rng_.below(100);
  if (roll < 30) {
    op.kind = OpKind::counter_add;
    op.a = rng_.range(1, 5);
  } else if (roll < 50) {
    op.kind = OpKind::counter_get;
    op.via_log = rng_.chance(0.3);
  } else if (roll < 65) {
    op.kind = OpKind::reg_write;
    op.a = static_cast<std::int64_t>((c.id + 1) * 1000000 + static_cast<int>(++c.seq));
  } else if (roll < 85) {
    op.kind = OpKind::reg_read;
    op.via_log = rng_.chance(0.3);
  } else {
    op.kind = OpKind::reg_cas;
    op.a = rng_.chance(0.8) ? c.last_reg : 0;
    op.b = static_cast<std::int64_t>((c.id + 1) * 1000000 + static_cast<int>(++c.seq));
  }
  const std::uint64_t id = ops_.size();
  ops_.push_back(op);
  c.op = id;
  trace({.kind = TraceKind::client_call, .node = static_cast<std::uint8_t>(c.target + 1),
         .peer = static_cast<std::uint8_t>(c.id), .a = id, .b = static_cast<std::uint64_t>(op.kind),
         .c = static_cast<std::uint64_t>(op.a), .d = op.via_log});
  ClientPacket p;
  p.client = c.id;
  p.op = id;
  std::uint32_t slot;
  if (!packet_free_.empty()) {
    slot = packet_free_.back();
    packet_free_.pop_back();
    packet_pool_[slot] = p;
  } else {
    packet_pool_.push_back(p);
    slot = static_cast<std::uint32_t>(packet_pool_.size() - 1);
  }
  schedule(now_ + client_delay(), Ev::client_arrive, static_cast<std::uint32_t>(c.target), 0, slot);
  schedule(now_ + tuning_.client_timeout, Ev::client_timeout, static_cast<std::uint32_t>(c.id), 0, id);
}

void Simulator::client_arrive(std::size_t n, const ClientPacket& p) {
  Node& nd = *nodes_[n];
  if (!nd.up) return;  // the client will time out
  const OpRecord& op = ops_[p.op];
  if (op.via_log) {
    Command cmd;
    cmd.kind = op.kind;
    cmd.client = static_cast<std::uint32_t>(p.client);
    cmd.request = p.op;
    cmd.a = op.a;
    cmd.b = op.b;
    core::Proposed where;
    if (auto ec = nd.raft->propose(encode(cmd), &where)) {
      reply(n, p.client, p.op, OpStatus::failed, {}, nd.raft->leader());
    } else {
      nd.proposals[where.index.value] = Proposal{where.term, p.client, p.op};
    }
  } else {
    const std::uint64_t ctx = ++read_context_;
    if (auto ec = nd.raft->read_index(ctx)) {
      reply(n, p.client, p.op, OpStatus::failed, {}, nd.raft->leader());
    } else {
      nd.reads[ctx] = PendingRead{p.client, p.op, op.kind, Index{}};
    }
  }
  drive(n);
  after_step(n);
}

void Simulator::reply(std::size_t n, int client, std::uint64_t op, OpStatus status, OpOutput out, NodeId hint) {
  ClientPacket p;
  p.client = client;
  p.op = op;
  p.status = status;
  p.output = out;
  p.hint = hint;
  (void)n;
  std::uint32_t slot;
  if (!packet_free_.empty()) {
    slot = packet_free_.back();
    packet_free_.pop_back();
    packet_pool_[slot] = p;
  } else {
    packet_pool_.push_back(p);
    slot = static_cast<std::uint32_t>(packet_pool_.size() - 1);
  }
  schedule(now_ + client_delay(), Ev::client_reply, static_cast<std::uint32_t>(n), 0, slot);
}

void Simulator::client_reply(const ClientPacket& p) {
  Client& c = clients_[static_cast<std::size_t>(p.client)];
  if (!c.op || *c.op != p.op) return;  // an answer to an attempt already given up
  OpRecord& op = ops_[p.op];
  op.status = p.status;
  op.ret = now_;
  op.output = p.output;
  trace({.kind = TraceKind::client_done, .node = static_cast<std::uint8_t>(c.target + 1),
         .peer = static_cast<std::uint8_t>(c.id), .a = p.op, .b = static_cast<std::uint64_t>(p.status),
         .c = static_cast<std::uint64_t>(p.output.value), .d = p.output.ok});
  c.op.reset();
  if (p.status == OpStatus::ok) {
    if (op.kind == OpKind::reg_read) c.last_reg = p.output.value;
    if (op.kind == OpKind::reg_write) c.last_reg = op.a;
    if (op.kind == OpKind::reg_cas && p.output.ok) c.last_reg = op.b;
    schedule(now_ + rng_.exponential(static_cast<double>(tuning_.client_think_mean)), Ev::client_next,
             static_cast<std::uint32_t>(c.id));
    return;
  }
  // Refused or failed: go where the hint points (soon), or elsewhere (later).
  const bool hinted = !p.hint.is_none() && p.hint.value - 1 != c.target;
  retarget(c, p.hint);
  schedule(now_ + (hinted ? rng_.range(100, 2 * kMillis) : rng_.range(20 * kMillis, 200 * kMillis)),
           Ev::client_next, static_cast<std::uint32_t>(c.id));
}

// ---------------------------------------------------------------------------
// Nemesis

void Simulator::phase_start() {
  if (now_ >= final_heal_by_ || config_.faults == 0) return;
  if (liveness_pending_) {  // the last heal has not yet been shown to work
    schedule(now_ + tuning_.election_timeout(), Ev::phase_start);
    return;
  }
  chaos_ = true;
  const Time len = rng_.range(tuning_.chaos_min, tuning_.chaos_max);
  schedule(std::min(now_ + len, final_heal_by_), Ev::phase_end);
  schedule(now_ + rng_.range(0, tuning_.fault_interval_mean), Ev::nemesis);
}

void Simulator::phase_end() {
  chaos_ = false;
  heal_all(now_ + tuning_.chaos_min >= final_heal_by_);
}

void Simulator::heal_all(bool final) {
  std::fill(loss_.begin(), loss_.end(), 0.0);
  std::fill(dup_.begin(), dup_.end(), 0.0);
  std::fill(spike_.begin(), spike_.end(), 0.0);
  std::fill(cut_.begin(), cut_.end(), 0);
  reverts_.clear();
  cut_next_leader_ = 0;
  for (auto& nd : nodes_) {
    nd->clock_rate = nd->base_clock_rate;
    nd->power_cut_armed = false;
    nd->store.disarm();
  }
  trace({.kind = TraceKind::heal, .a = 1});
  for (std::size_t n = 0; n < n_; ++n)
    if (!nodes_[n]->up) start_node(n);
  // Liveness: some node must commit an entry beyond every log's end now.
  Index target;
  for (auto& nd : nodes_) target = std::max(target, nd->raft->last_index());
  liveness_target_ = target;
  liveness_pending_ = true;
  healed_at_ = now_;
  schedule(now_ + tuning_.election_timeout() * tuning_.liveness_election_timeouts, Ev::liveness_deadline, 0, 0,
           static_cast<std::uint64_t>(now_));
  schedule(now_ + tuning_.tick, Ev::probe);
  if (!final) schedule(now_ + rng_.range(tuning_.election_timeout(), 4 * tuning_.election_timeout()), Ev::phase_start);
}

std::uint64_t Simulator::add_revert(std::vector<std::pair<std::size_t, std::size_t>> links, int what,
                                    Time duration) {
  const std::uint64_t id = next_revert_++;
  reverts_[id] = Revert{std::move(links), what};
  schedule(now_ + duration, Ev::revert, 0, 0, id);
  return id;
}

void Simulator::inject_fault() {
  std::vector<Fault> enabled;
  for (std::size_t k = 0; k < kFaultKinds; ++k)
    if ((config_.faults >> k) & 1u) enabled.push_back(static_cast<Fault>(k));
  if (enabled.empty()) return;
  const Fault f = enabled[rng_.below(enabled.size())];
  ++stats_.faults[static_cast<std::size_t>(f)];
  const Time duration = rng_.range(200 * kMillis, 4 * kSeconds);
  const auto lead = leader();
  // A node to hurt: the leader half the time, since that is where it counts.
  const std::size_t victim = lead && rng_.chance(0.5) ? *lead : rng_.below(n_);
  TraceEvent te{.kind = TraceKind::fault, .a = static_cast<std::uint64_t>(f), .b = victim + 1};

  auto all_links = [&] {
    std::vector<std::pair<std::size_t, std::size_t>> links;
    for (std::size_t a = 0; a < n_; ++a)
      for (std::size_t b = 0; b < n_; ++b)
        if (a != b) links.emplace_back(a, b);
    return links;
  };
  auto links_of = [&](std::size_t x, bool out, bool in) {
    std::vector<std::pair<std::size_t, std::size_t>> links;
    for (std::size_t o = 0; o < n_; ++o) {
      if (o == x) continue;
      if (out) links.emplace_back(x, o);
      if (in) links.emplace_back(o, x);
    }
    return links;
  };

  switch (f) {
    case Fault::loss:
    case Fault::duplicate:
    case Fault::reorder: {
      auto links = rng_.chance(0.5) ? all_links() : links_of(victim, true, true);
      const double p = f == Fault::loss ? 0.05 + 0.45 * rng_.unit() : 0.05 + 0.25 * rng_.unit();
      std::vector<double>& table = f == Fault::loss ? loss_ : f == Fault::duplicate ? dup_ : spike_;
      for (auto [a, b] : links) table[a * n_ + b] = p;
      te.c = static_cast<std::uint64_t>(p * 100);
      te.d = links.size();
      add_revert(std::move(links), f == Fault::loss ? kRevertLoss : f == Fault::duplicate ? kRevertDup : kRevertSpike,
                 duration);
      break;
    }
    case Fault::partition: {
      // One side: the victim alone, or a random minority including it.
      std::vector<bool> side(n_, false);
      side[victim] = true;
      if (n_ > 3 && rng_.chance(0.5)) side[(victim + 1 + rng_.below(n_ - 1)) % n_] = true;
      std::vector<std::pair<std::size_t, std::size_t>> links;
      for (std::size_t a = 0; a < n_; ++a)
        for (std::size_t b = 0; b < n_; ++b)
          if (side[a] != side[b]) links.emplace_back(a, b);
      for (auto [a, b] : links) ++cut_[a * n_ + b];
      te.c = links.size();
      add_revert(std::move(links), kRevertCut, duration);
      break;
    }
    case Fault::oneway: {
      std::vector<std::pair<std::size_t, std::size_t>> links;
      const std::uint64_t shape = rng_.below(4);
      if (shape == 3) {
        cut_next_leader_ = duration;  // see after_step()
        te.c = shape;
        break;
      }
      if (shape == 0) {
        links = links_of(victim, true, false);  // nobody hears the victim
      } else if (shape == 1) {
        links = links_of(victim, false, true);  // the victim hears nobody
      } else {
        const std::size_t other = (victim + 1 + rng_.below(n_ - 1)) % n_;
        links.emplace_back(victim, other);
      }
      for (auto [a, b] : links) ++cut_[a * n_ + b];
      te.c = shape;
      add_revert(std::move(links), kRevertCut, duration);
      break;
    }
    case Fault::crash: {
      const std::uint64_t shape = rng_.below(10);
      if (shape < 4) {
        crash_node(victim, false);
      } else if (shape < 8) {
        nodes_[victim]->power_cut_armed = true;  // dies during its next sync
      } else {
        // Several nodes at once, each at its next sync: durability across a
        // majority is what a cluster-wide power cut tests.
        for (std::size_t n = 0; n < n_; ++n)
          if (rng_.chance(0.7)) nodes_[n]->power_cut_armed = true;
      }
      te.c = shape;
      break;
    }
    case Fault::disk: {
      const bool sync = rng_.chance(0.5);
      if (sync)
        nodes_[victim]->store.fail_next_sync();
      else
        nodes_[victim]->store.fail_next_write();
      te.c = sync;
      break;
    }
    case Fault::drift: {
      Node& nd = *nodes_[victim];
      nd.clock_rate = 0.7 + 0.7 * rng_.unit();
      te.c = static_cast<std::uint64_t>(nd.clock_rate * 100);
      add_revert({{victim, victim}}, kRevertClock, duration);
      break;
    }
    case Fault::transfer: {
      if (!lead) break;
      const std::size_t to = (*lead + 1 + rng_.below(n_ - 1)) % n_;
      (void)nodes_[*lead]->raft->transfer_leader(NodeId{to + 1});
      te.c = to + 1;
      trace(te);
      drive(*lead);
      after_step(*lead);
      return;
    }
  }
  trace(te);
}

// ---------------------------------------------------------------------------
// End of run

void Simulator::final_checks() {
  if (liveness_pending_ && now_ - healed_at_ >= tuning_.election_timeout() * tuning_.liveness_election_timeouts) {
    violation("liveness", fmt::format("no new entry committed after the heal at {}", format_time(healed_at_)));
    return;
  }
  // Convergence: every replica has caught up with the cluster's commit, and
  // replicas at equal applied indexes have equal state.
  Index commit;
  for (auto& nd : nodes_)
    if (nd->up) commit = std::max(commit, nd->raft->commit_index());
  for (std::size_t n = 0; n < n_; ++n) {
    const Node& nd = *nodes_[n];
    if (!nd.up) continue;
    if (nd.sm.applied + 0 < commit && now_ - healed_at_ > 5 * kSeconds) {
      std::string progress = "no leader";
      if (const auto lead = leader()) {
        const core::Progress* pr = nodes_[*lead]->raft->progress().find(nd.id);
        if (pr)
          progress = fmt::format("leader n{} tracks it as {} match={} next={} probe_sent={} inflight={} paused={}",
                                 *lead + 1, core::to_string(pr->state), pr->match, pr->next, pr->probe_sent,
                                 pr->inflights.count(), pr->paused());
      }
      violation("convergence", fmt::format("n{} applied only up to {} of {} committed, {} after the final heal; {}",
                                           n + 1, nd.sm.applied, commit, format_time(now_ - healed_at_), progress));
      return;
    }
    for (std::size_t m = n + 1; m < n_; ++m) {
      const Node& other = *nodes_[m];
      if (other.up && other.sm.applied == nd.sm.applied && other.sm.hash != nd.sm.hash) {
        violation("state machine safety", fmt::format("n{} and n{} both applied up to {} but their states differ",
                                                      n + 1, m + 1, nd.sm.applied));
        return;
      }
    }
  }

  // Linearizability of what the clients saw.
  for (OpRecord& op : ops_)
    if (op.status == OpStatus::pending) op.status = OpStatus::unknown;
  for (const OpRecord& op : ops_) {
    if (op.status == OpStatus::failed) continue;
    if (op.status == OpStatus::unknown && is_read(op.kind)) continue;
    ++stats_.ops_checked;
    if (op.status == OpStatus::unknown) ++stats_.ops_unknown;
  }
  if (!config_.check_linearizability) return;
  Histories h = build_histories(ops_);
  CheckOptions opts;
  opts.timeout = std::chrono::milliseconds(20000);
  const CheckResult rc = check(h.counter, opts);
  if (rc.verdict == Verdict::not_linearizable) {
    violation("linearizability", "counter history: " + rc.explanation);
    return;
  }
  const CheckResult rr = check(h.reg, opts);
  if (rr.verdict == Verdict::not_linearizable) {
    violation("linearizability", "register history: " + rr.explanation);
    return;
  }
  stats_.lin_gave_up += (rc.verdict == Verdict::gave_up) + (rr.verdict == Verdict::gave_up);
}

RunResult run_simulation(const SimConfig& config) {
  Simulator sim(config);
  return sim.run();
}

}  // namespace raftkit::sim

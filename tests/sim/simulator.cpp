#include "sim/simulator.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "core/quorum.hpp"
#include "raftkit/error.hpp"
#include "transport/codec.hpp"

namespace raftkit::sim {

namespace {
// A healthy cluster keeps a few hundred events queued; a feedback loop of
// messages (each answer provoking more than one new message) grows without
// bound and would never finish.
constexpr std::size_t kMaxQueuedEvents = 100000;
constexpr int kRevertLoss = 0, kRevertDup = 1, kRevertSpike = 2, kRevertCut = 3, kRevertClock = 4, kRevertHold = 5;
}

namespace {
runtime::TimePoint as_time_point(Time t) { return std::chrono::microseconds(t); }

// `--nodes 0` draws the size from the seed, 1 to 7, with its own generator so
// that the rest of the run does not depend on how the size was chosen.
std::size_t cluster_size(const SimConfig& c) {
  if (c.nodes > 0) return static_cast<std::size_t>(c.nodes);
  Rng r(c.seed * 0x9E3779B97F4A7C15ULL + 3);
  return 1 + static_cast<std::size_t>(r.below(7));
}

// With membership faults, most seeds also have one or two spare nodes (up
// to 7 in all), started empty without bootstrap: servers waiting to be added.
std::size_t spare_nodes(const SimConfig& c) {
  const std::size_t voters = cluster_size(c);
  if (!has(c.faults, Fault::membership) || voters >= 7) return 0;
  Rng r(c.seed * 0x9E3779B97F4A7C15ULL + 11);
  if (!r.chance(0.7)) return 0;
  return 1 + static_cast<std::size_t>(r.below(std::min<std::uint64_t>(2, 7 - voters)));
}
std::size_t total_nodes(const SimConfig& c) { return cluster_size(c) + spare_nodes(c); }
}  // namespace

Simulator::Simulator(SimConfig config, Tuning tuning)
    : config_(std::move(config)), tuning_(tuning), rng_(config_.seed * 0x2545F4914F6CDD1DULL + 7),
      checker_(total_nodes(config_)) {
  initial_ = cluster_size(config_);
  n_ = total_nodes(config_);
  loss_.assign(n_ * n_, 0.0);
  dup_.assign(n_ * n_, 0.0);
  spike_.assign(n_ * n_, 0.0);
  hold_.assign(n_ * n_, 0.0);
  cut_.assign(n_ * n_, 0);
  base_delay_.assign(n_ * n_, 0);
  for (Time& d : base_delay_) d = rng_.range(tuning_.link_delay_min, tuning_.link_delay_max);

  std::vector<NodeId> voters;
  std::map<NodeId, std::string> peers;  // the new cluster's
  for (std::size_t i = 0; i < initial_; ++i) {
    voters.push_back(NodeId{i + 1});
    peers[NodeId{i + 1}] = fmt::format("sim:{}", i + 1);
  }
  // Per-seed variety. Half the runs send appends of one or two entries: a
  // new leader's no-op then travels apart from the older entries before it,
  // which is what makes the Figure 8 window (an old-term entry on a
  // majority, the no-op not yet) reachable at all. Half encode every message
  // through the wire codec; half snapshot every few entries; a quarter serve
  // reads from the leader's lease; some run without pre-vote or check-quorum.
  const bool small_appends = rng_.below(2) == 0;
  use_codec_ = rng_.chance(0.5);
  const bool use_wal = rng_.chance(0.3);
  const std::uint64_t snapshot_interval = rng_.chance(0.5) ? static_cast<std::uint64_t>(rng_.range(5, 200)) : 0;
  lease_seed_ = rng_.chance(0.25);
  const bool pre_vote = lease_seed_ || !rng_.chance(0.15);
  // Without pre-vote a node that cannot win still raises the term each
  // time its timer fires, and the node that can win must beat it to the
  // next timeout, a coin toss per round: give it more rounds.
  liveness_timeouts_ = tuning_.liveness_election_timeouts * (pre_vote ? 1 : 3);
  const bool check_quorum = lease_seed_ || !rng_.chance(0.15);
  const auto disk_stall = std::chrono::milliseconds(rng_.chance(0.5) ? rng_.range(200, 1000) : 2000);
  // Lease safety needs the leader's (E - m) ticks to last no longer in real
  // time than a follower's E ticks: rates within ±max_drift_ keep
  // (1 + d) / (1 - d) below E / (E - m).
  const int margin = 2;
  const double bound = static_cast<double>(tuning_.election_ticks) / (tuning_.election_ticks - margin);
  max_drift_ = 0.9 * (bound - 1) / (bound + 1);
  for (std::size_t i = 0; i < n_; ++i) {
    auto node = std::make_unique<Node>();
    node->id = NodeId{i + 1};
    Options& opt = node->options;
    auto known = peers;
    known[node->id] = fmt::format("sim:{}", i + 1);
    opt = Options::from_peers(node->id, known);
    opt.tick_interval = std::chrono::milliseconds(tuning_.tick / kMillis);
    opt.request_timeout = std::chrono::milliseconds(tuning_.request_timeout / kMillis);
    opt.disk_stall_timeout = disk_stall;
    opt.snapshot_interval = snapshot_interval;
    // A quarter of the interval of log kept behind each snapshot (0..50 entries):
    // lagging followers meet both appends and snapshots. Derived, not drawn,
    // so the seeds' random streams are unchanged.
    opt.snapshot_trailing_entries = snapshot_interval / 4;
    opt.logger = Logger::discard();  // the trace says what happened
    opt.bootstrap = i < initial_;    // spares wait to be added; a wiped node restarts without it
    opt.membership_timeout = opt.request_timeout;
    ProtocolOptions& o = opt.protocol;
    o.election_ticks = tuning_.election_ticks;
    o.heartbeat_ticks = tuning_.heartbeat_ticks;
    o.pre_vote = pre_vote;
    o.check_quorum = check_quorum;
    o.lease_reads = lease_seed_;
    o.lease_margin_ticks = margin;
    o.max_entries_per_append = static_cast<std::size_t>(small_appends ? rng_.range(1, 2) : rng_.range(4, 64));
    o.max_inflight_messages = static_cast<std::size_t>(rng_.range(4, 64));
    o.seed = rng_.next();
    o.batch_appends = (o.seed & 3) != 0;  // derived, not drawn: 3 leaders in 4 batch, the rest send at once
    if (has(config_.faults, Fault::drift))
      node->base_clock_rate = lease_seed_ ? 1.0 + max_drift_ * (2 * rng_.unit() - 1) : 0.95 + 0.1 * rng_.unit();
    node->clock_rate = node->base_clock_rate;
    if (use_wal) {
      std::string detail;
      if (auto ec = node->store.use_wal(detail)) violation("wal", fmt::format("cannot open: {}", detail));
    }
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
  final_heal_by_ = config_.duration - T * liveness_timeouts_ - 2 * kSeconds;
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
  stats_.requests = requests_.size();
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
      if (!nd.up || nd.gen != e.gen || defer_if_stalled(e)) return;
      nd.driver->tick(as_time_point(local_now(e.node)));
      trace({.kind = TraceKind::tick, .node = static_cast<std::uint8_t>(e.node + 1), .a = nd.raft().term().value,
             .b = static_cast<std::uint64_t>(nd.raft().role())});
      after_step(e.node);
      if (nd.up && nd.gen == e.gen) schedule_tick(e.node);
      return;
    }
    case Ev::deliver: {
      if (nodes_[e.node]->up && defer_if_stalled(e)) return;
      const auto slot = static_cast<std::uint32_t>(e.arg);
      Message m = std::move(msg_pool_[slot]);
      msg_free_.push_back(slot);
      const std::size_t from = m.from.value - 1, to = m.to.value - 1;
      Node& nd = *nodes_[to];
      if (!nd.up || cut_[from * n_ + to] > 0) {
        trace_message(TraceKind::drop, m);
        report_snapshot_fate(m, false);
        return;
      }
      trace_message(TraceKind::deliver, m);
      report_snapshot_fate(m, true);
      if (m.type == MessageType::timeout_now && chaos_ && rng_.chance(0.5)) {
        // The worst moment: as the target starts its election, the old
        // leader stops hearing anyone. It learns of the new term late, and
        // only its lease stands between it and a stale read.
        auto links = links_of_node(from, false, true);
        for (auto [a, b] : links) ++cut_[a * n_ + b];
        trace({.kind = TraceKind::fault, .a = static_cast<std::uint64_t>(Fault::oneway), .b = from + 1, .c = 4});
        add_revert(std::move(links), kRevertCut, rng_.range(300 * kMillis, 2 * kSeconds));
      }
      nd.driver->step(m);
      after_step(to);
      return;
    }
    case Ev::sync_done: {
      Node& nd = *nodes_[e.node];
      if (!nd.up || nd.gen != e.gen || defer_if_stalled(e)) return;
      complete_sync(e.node);
      if (nd.up) after_step(e.node);
      return;
    }
    case Ev::client_arrive: {
      if (nodes_[e.node]->up && defer_if_stalled(e)) return;
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
          case kRevertHold: hold_[a * n_ + b] = 0; break;
          case kRevertCut: cut_[a * n_ + b] = std::max(0, cut_[a * n_ + b] - 1); break;
          case kRevertClock: set_clock_rate(a, nodes_[a]->base_clock_rate); break;
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
        if (!nd.up || nd.raft().role() != core::Role::leader || nd.stalled_until > now_) continue;
        Command cmd;
        cmd.kind = OpKind::probe;
        const std::uint64_t id = track(Request::Kind::propose, n);
        const core::Proposed where = nd.driver->propose(
            encode(cmd), [this, id](std::error_code ec, Bytes) { completed(id, ec); }, as_time_point(local_now(n)));
        requests_[id].index = where.index;
        requests_[id].term = where.term;
        after_step(n);
      }
      schedule(now_ + tuning_.tick * 2, Ev::probe);
      return;
    }
    case Ev::poll: {
      Node& nd = *nodes_[e.node];
      if (!nd.up || nd.gen != e.gen || defer_if_stalled(e)) return;
      nd.poll_pending = false;
      nd.driver->poll();
      after_step(e.node);
      return;
    }
    case Ev::power_cut: {
      Node& nd = *nodes_[e.node];
      if (nd.up && nd.gen == e.gen) crash_node(e.node, false);
      return;
    }
    case Ev::unreachable: {
      Node& nd = *nodes_[e.node];
      if (!nd.up || nd.gen != e.gen || defer_if_stalled(e)) return;
      nd.driver->report_unreachable(NodeId{e.arg});
      after_step(e.node);
      return;
    }
    case Ev::snapshot_report: {
      Node& nd = *nodes_[e.node];
      if (!nd.up || nd.gen != e.gen || defer_if_stalled(e)) return;
      nd.driver->report_snapshot(NodeId{e.arg & 0xffffffffu}, (e.arg >> 32) != 0);
      after_step(e.node);
      return;
    }
    case Ev::liveness_deadline:
      if (liveness_pending_ && e.arg == static_cast<std::uint64_t>(healed_at_)) {
        std::string nodes;
        for (std::size_t k = 0; k < n_; ++k) {
          const Node& nd = *nodes_[k];
          if (!nd.up) {
            nodes += fmt::format("; n{} down", k + 1);
            continue;
          }
          const core::Raft& r = nd.raft();
          nodes += fmt::format("; n{} {} term {} last {} commit {} applied {}{} config {}", k + 1,
                               core::to_string(r.role()), r.term(), r.last_index(), r.commit_index(),
                               r.applied_index(), r.replacing() ? " replacing" : "", core::describe(r.membership()));
        }
        violation("liveness",
                  fmt::format("no new entry committed within {} election timeouts ({}) after the heal at {}{}",
                              liveness_timeouts_, format_time(now_ - healed_at_), format_time(healed_at_), nodes));
      }
      return;
  }
}

// ---------------------------------------------------------------------------
// Nodes: the runtime's Driver, with simulated I/O around it

class Simulator::NodeIo final : public runtime::DriverIo {
 public:
  NodeIo(Simulator& sim, std::size_t n) : sim_(sim), n_(n) {}
  void send(Message m) override { sim_.send(m); }
  void persist(std::shared_ptr<runtime::DiskWrite> w) override { sim_.persist(n_, std::move(w)); }

 private:
  Simulator& sim_;
  std::size_t n_;
};

namespace {
Bytes encode_output(const OpOutput& o) {
  Bytes b(9);
  std::memcpy(b.data(), &o.value, 8);
  b[8] = o.ok ? 1 : 0;
  return b;
}
OpOutput decode_output(BytesView b) {
  OpOutput o;
  if (b.size() != 9) return o;
  std::memcpy(&o.value, b.data(), 8);
  o.ok = b[8] != 0;
  return o;
}
}  // namespace

// The workload's state machine behind the interface users implement.
class Simulator::SimMachine final : public raftkit::StateMachine {
 public:
  sim::StateMachine state;
  Bytes apply(const Entry& e) override { return encode_output(state.apply(e)); }
  Bytes query(BytesView q) const override {
    return encode_output(state.read(q.empty() ? OpKind::counter_get : static_cast<OpKind>(q[0])));
  }
  std::unique_ptr<raftkit::SnapshotCapture> capture_snapshot() const override {
    Bytes b(32);
    std::memcpy(b.data(), &state.counter, 8);
    std::memcpy(b.data() + 8, &state.reg, 8);
    std::memcpy(b.data() + 16, &state.hash, 8);
    std::memcpy(b.data() + 24, &state.applied.value, 8);
    return std::make_unique<raftkit::CopiedSnapshot>(std::move(b));
  }
  std::error_code restore_snapshot(raftkit::SnapshotReader& in) override {
    Bytes b;
    if (auto ec = raftkit::read_all(in, b)) return ec;
    if (b.size() != 32) std::abort();  // the driver hands back what capture_snapshot made
    std::memcpy(&state.counter, b.data(), 8);
    std::memcpy(&state.reg, b.data() + 8, 8);
    std::memcpy(&state.hash, b.data() + 16, 8);
    std::memcpy(&state.applied.value, b.data() + 24, 8);
    return {};
  }
};

// Feeds what the driver does to the checkers.
class Simulator::Observer final : public runtime::DriverObserver {
 public:
  Observer(Simulator& sim, std::size_t n) : sim_(sim), n_(n) {}
  void on_ready(const core::Raft& raft, const core::Ready& rd) override {
    sim_.checker_.on_ready(n_, raft, rd);
    sim_.trace({.kind = TraceKind::ready, .node = static_cast<std::uint8_t>(n_ + 1), .a = rd.entries.size(),
                .b = rd.messages.size() + rd.persisted_messages.size(), .c = rd.committed_entries.size(),
                .d = rd.hard_state ? rd.hard_state->commit.value : 0});
  }
  void on_applied(const Entry& e) override {
    sim::StateMachine& st = sim_.nodes_[n_]->sm->state;
    // The driver hands only commands to the state machine; the hash covers
    // every entry, so the others are folded in here.
    if (e.type != EntryType::normal && e.index > st.applied) st.apply(e);
    sim_.checker_.on_apply(n_, e, st.hash);
  }
  void on_snapshot_loaded(const SnapshotMeta& meta) override {
    Node& nd = *sim_.nodes_[n_];
    if (nd.up) ++sim_.stats_.snapshots_installed;
    sim_.checker_.on_snapshot_loaded(n_, meta.index, nd.sm->state.hash);
    sim_.trace({.kind = TraceKind::snapshot, .node = static_cast<std::uint8_t>(n_ + 1), .a = meta.index.value, .b = 1});
  }
  void on_snapshot_taken(const SnapshotMeta& meta) override {
    ++sim_.stats_.snapshots_taken;
    sim_.trace({.kind = TraceKind::snapshot, .node = static_cast<std::uint8_t>(n_ + 1), .a = meta.index.value, .b = 0});
  }

 private:
  Simulator& sim_;
  std::size_t n_;
};

Simulator::Node::Node() : snapshots(runtime::make_memory_snapshot_store()) {}
Simulator::Node::~Node() = default;

Time Simulator::local_now(std::size_t n) const {
  const Node& nd = *nodes_[n];
  return nd.local_base + static_cast<Time>(static_cast<double>(now_ - nd.real_base) / nd.clock_rate);
}

void Simulator::set_clock_rate(std::size_t n, double rate) {
  Node& nd = *nodes_[n];
  nd.local_base = local_now(n);
  nd.real_base = now_;
  nd.clock_rate = rate;
}

void Simulator::schedule_tick(std::size_t n) {
  Node& nd = *nodes_[n];
  const auto period = static_cast<Time>(static_cast<double>(tuning_.tick) * nd.clock_rate);
  schedule(now_ + std::max<Time>(1, period), Ev::tick, static_cast<std::uint32_t>(n), nd.gen);
}

// A node whose thread is stalled handles nothing until the stall ends; its
// events queue up in arrival order, as handlers queue behind a busy strand.
bool Simulator::defer_if_stalled(const Event& e) {
  const Node& nd = *nodes_[e.node];
  if (nd.stalled_until <= now_) return false;
  schedule(nd.stalled_until, e.kind, e.node, e.gen, e.arg);
  return true;
}

void Simulator::start_node(std::size_t n) {
  Node& nd = *nodes_[n];
  nd.sm = std::make_unique<SimMachine>();
  nd.io = std::make_unique<NodeIo>(*this, n);
  nd.observer = std::make_unique<Observer>(*this, n);
  nd.driver = std::make_unique<runtime::Driver>(nd.options, *nd.sm, nd.store, *nd.snapshots, *nd.io, rng_.next());
  nd.driver->set_observer(nd.observer.get());
#ifdef RAFTKIT_PLANTED_BUGS
  if (!config_.bugs.empty()) nd.driver->plant_bugs(config_.bugs);
#endif
  ++nd.gen;
  nd.writes.clear();
  nd.last_sync_at = now_;
  nd.stalled_until = 0;
  nd.poll_pending = false;
  std::string detail;
  if (auto ec = nd.driver->start(as_time_point(local_now(n)), detail)) {
    if (ec != errc::io_error && ec != errc::no_space) {
      violation("restart", fmt::format("n{} cannot start: {} ({})", n + 1, detail, ec.message()));
      return;
    }
    // The disk failed during start-up: the process exits and is restarted.
    trace({.kind = TraceKind::storage_error, .node = static_cast<std::uint8_t>(n + 1), .a = 2});
    nd.driver.reset();
    cut_power(n, 0);
    ++nd.gen;
    schedule(now_ + rng_.range(300 * kMillis, 3 * kSeconds), Ev::restart, static_cast<std::uint32_t>(n), nd.gen);
    return;
  }
  nd.up = true;
  nd.last_role = nd.raft().role();
  nd.last_term = nd.raft().term();
  trace({.kind = TraceKind::restart, .node = static_cast<std::uint8_t>(n + 1), .a = nd.raft().term().value,
         .b = nd.raft().last_index().value, .c = nd.raft().commit_index().value});
  checker_.on_start(n, nd.raft(), nd.store.hard_state().commit);
  // The first tick comes at a random phase of the node's period.
  schedule(now_ + rng_.range(1, tuning_.tick), Ev::tick, static_cast<std::uint32_t>(n), nd.gen);
}

void Simulator::crash_node(std::size_t n, bool storage_error) {
  Node& nd = *nodes_[n];
  if (!nd.up) return;
  const std::size_t unsynced = nd.store.unsynced_writes();
  const std::size_t keep = rng_.chance(0.5) ? 0 : static_cast<std::size_t>(rng_.below(unsynced + 1));
  trace({.kind = TraceKind::crash, .node = static_cast<std::uint8_t>(n + 1), .a = keep, .b = unsynced - keep});
  // The process dies: nobody answers its waiting callers.
  for (Request& r : requests_)
    if (r.node == n && r.gen == nd.gen && r.completions == 0) r.abandoned = true;
  nd.driver.reset();
  cut_power(n, keep);
  nd.up = false;
  nd.power_cut_armed = false;
  nd.slow_next_sync = false;
  ++nd.gen;
  nd.writes.clear();
  checker_.on_crash(n);
  // On lease seeds half the restarts are quick, well inside an election
  // timeout: a lease the node acknowledged before it crashed still runs.
  const bool quick = !storage_error && lease_seed_ && rng_.chance(0.5);
  const Time down = storage_error ? rng_.range(300 * kMillis, 3 * kSeconds)
                    : quick       ? rng_.range(5 * kMillis, 100 * kMillis)
                                  : rng_.range(10 * kMillis, 3 * kSeconds);
  schedule(now_ + down, Ev::restart, static_cast<std::uint32_t>(n), nd.gen);
}

// The operator wipes the node's data directory and restarts it under its old
// id, without bootstrap: it must not vote before a leader caught it up.
void Simulator::wipe_node(std::size_t n) {
  Node& nd = *nodes_[n];
  if (nd.up) crash_node(n, false);  // schedules the restart
  std::string detail;
  if (nd.store.wipe(detail)) violation("wipe", fmt::format("n{}: {}", n + 1, detail));
  // Half the time only the log's directory is lost and the snapshots
  // survive beside it, and the operator's command line keeps --bootstrap:
  // the node must still come back as a new incarnation. (With no snapshot
  // either, --bootstrap on an empty disk starts a new cluster: the operator
  // error that a bootstrap cannot tell from a first start, never simulated.)
  SnapshotMeta kept;
  Bytes kept_data;
  std::string ignored;
  const bool log_only = rng_.chance(0.5) && !nd.snapshots->load(kept, kept_data, ignored);
  if (!log_only) nd.snapshots = runtime::make_memory_snapshot_store();
  if (!log_only) nd.options.bootstrap = false;
  nd.lost_disk = true;
  checker_.on_wipe(n);
  trace({.kind = TraceKind::crash, .node = static_cast<std::uint8_t>(n + 1), .a = 0, .b = log_only, .c = 2});
}

// Whether any node, up or down, holds a configuration entry it has not
// applied, or has applied a joint one.
bool Simulator::membership_in_flight() const {
  for (const auto& nd : nodes_) {
    if (nd->membership.joint()) return true;
    const LogStore& d = nd->store.durable();
    Index lo = std::max(nd->membership_index + 1, d.first_index());
    const Index hi = nd->up ? nd->raft().last_index() : d.last_index();
    while (lo <= hi) {
      std::vector<Entry> batch;
      const std::error_code ec = nd->up ? nd->raft().log().slice(lo, hi + 1, 1 << 20, batch)
                                        : d.entries(lo, hi + 1, 1 << 20, batch);
      if (ec || batch.empty()) break;
      for (const Entry& e : batch)
        if (e.type == EntryType::membership) return true;
      lo = batch.back().index + 1;
    }
  }
  return false;
}

// The configuration applied at the highest index by any node, up or down.
const Membership& Simulator::newest_membership() const {
  const Node* best = nullptr;
  for (const auto& nd : nodes_)
    if (!best || nd->membership_index > best->membership_index) best = nd.get();
  return best->membership;
}

// The leader grows or shrinks the cluster: adds a node that is not a member
// (a spare, or one removed earlier), removes a member (the leader itself a
// quarter of the time), or swaps a learner in or out. One change at a time;
// a refusal (busy, not leader) is an answer like any other.
void Simulator::change_membership() {
  const auto lead = leader();
  if (!lead) return;
  runtime::Driver& d = *nodes_[*lead]->driver;
  const Membership& m = nodes_[*lead]->raft().membership();
  std::vector<std::size_t> outside, members;
  for (std::size_t k = 0; k < n_; ++k) (core::is_member(m, NodeId{k + 1}) ? members : outside).push_back(k);
  // Operators do not shrink a cluster while one of its nodes is recovering
  // from a lost disk (the library refuses what it can see, but a node that
  // just went down still looks reachable): only additions then.
  bool recovering = false;
  for (const auto& nd : nodes_) recovering = recovering || nd->lost_disk;
  if (recovering && outside.empty()) return;
  const std::uint64_t id = track(Request::Kind::membership, *lead);
  auto done = [this, id](std::error_code ec) { completed(id, ec); };
  const auto now = as_time_point(local_now(*lead));
  const std::uint64_t shape = recovering ? rng_.below(4) : rng_.below(8);
  TraceEvent te{.kind = TraceKind::fault, .a = static_cast<std::uint64_t>(Fault::membership), .b = *lead + 1,
                .c = shape};
  if (!outside.empty() && (shape < 3 || m.voters.size() <= 1)) {
    const std::size_t k = outside[rng_.below(outside.size())];
    te.d = k + 1;
    trace(te);
    d.add_server(NodeId{k + 1}, fmt::format("sim:{}", k + 1), done, now);
  } else if (!outside.empty() && shape == 3) {
    const std::size_t k = outside[rng_.below(outside.size())];
    Membership target = m;
    target.learners.push_back(NodeId{k + 1});
    target.addresses[NodeId{k + 1}] = fmt::format("sim:{}", k + 1);
    te.d = k + 1;
    trace(te);
    d.change_membership(target, done, now);
  } else if (!outside.empty() && shape == 4) {
    // Replace a member: add the new server and, as an impatient operator
    // would, ask at once to remove the old one (refused while the first
    // change is in flight, unless overlapping changes are let through).
    const std::size_t k = outside[rng_.below(outside.size())];
    const std::size_t old = members[rng_.below(members.size())];
    te.d = k + 1;
    trace(te);
    d.add_server(NodeId{k + 1}, fmt::format("sim:{}", k + 1), done, now);
    const std::uint64_t id2 = track(Request::Kind::membership, *lead);
    d.remove_server(NodeId{old + 1}, [this, id2](std::error_code ec) { completed(id2, ec); }, now);
  } else {
    const std::size_t k = shape == 7 ? *lead : members[rng_.below(members.size())];
    te.d = k + 1;
    trace(te);
    d.remove_server(NodeId{k + 1}, done, now);
  }
  after_step(*lead);
}

// The disk keeps what was synced and part of the rest; with the WAL its
// recovery runs here, and must give back everything that was synced.
void Simulator::cut_power(std::size_t n, std::size_t keep) {
  std::string detail;
  if (nodes_[n]->store.crash(keep, rng_.next(), detail)) violation("wal recovery", fmt::format("n{}: {}", n + 1, detail));
}

// A clean shutdown (Node::stop): every waiting caller is answered, the write
// in flight completes, then the process exits and restarts later.
void Simulator::stop_node(std::size_t n) {
  Node& nd = *nodes_[n];
  if (!nd.up) return;
  nd.driver->stop(errc::shutting_down);
  while (!nd.writes.empty()) {
    if (!nd.writes.front().ec && !nd.store.sync()) checker_.on_synced(n, nd.store.durable().hard_state());
    nd.writes.pop_front();
  }
  trace({.kind = TraceKind::crash, .node = static_cast<std::uint8_t>(n + 1), .a = 0, .b = 0, .c = 1});
  nd.driver.reset();
  cut_power(n, nd.store.unsynced_writes());
  nd.up = false;
  nd.power_cut_armed = false;
  ++nd.gen;
  checker_.on_crash(n);
  schedule(now_ + rng_.range(10 * kMillis, 2 * kSeconds), Ev::restart, static_cast<std::uint32_t>(n), nd.gen);
}

// DriverIo::persist: the writes reach the store (unsynced) now; the sync
// completes after a random latency, after every earlier write's.
void Simulator::persist(std::size_t n, std::shared_ptr<runtime::DiskWrite> w) {
  Node& nd = *nodes_[n];
  PendingWrite pw;
  pw.ec = w->apply(pw.what);
  pw.write = std::move(w);
  const bool failed = static_cast<bool>(pw.ec);
  nd.writes.push_back(std::move(pw));
  if (nd.power_cut_armed) {
    nd.power_cut_armed = false;  // power lost while the sync is in flight
    schedule(now_, Ev::power_cut, static_cast<std::uint32_t>(n), nd.gen);
  }
  Time latency = rng_.range(tuning_.sync_min, tuning_.sync_max);
  if (rng_.chance(tuning_.slow_sync_chance)) latency += rng_.range(10 * kMillis, 60 * kMillis);
  if (nd.slow_next_sync && !failed) {
    nd.slow_next_sync = false;  // a disk that hangs for a while
    latency += rng_.range(300 * kMillis, 4 * kSeconds);
  }
  if (failed) latency = 0;  // a failed write returns at once; there is nothing to sync
  nd.last_sync_at = std::max(nd.last_sync_at, now_ + latency);
  schedule(nd.last_sync_at, Ev::sync_done, static_cast<std::uint32_t>(n), nd.gen);
}

void Simulator::complete_sync(std::size_t n) {
  Node& nd = *nodes_[n];
  PendingWrite pw = std::move(nd.writes.front());
  nd.writes.pop_front();
  std::error_code ec = pw.ec;
  if (!ec && (ec = nd.store.sync())) pw.what = "syncing the log";
  if (!ec) checker_.on_synced(n, nd.store.durable().hard_state());
  trace({.kind = TraceKind::sync_done, .node = static_cast<std::uint8_t>(n + 1), .a = nd.store.last_index().value,
         .b = nd.store.hard_state().commit.value, .c = ec ? 1u : 0u});
  nd.driver->write_done(pw.write->id, ec, pw.what);
  if (nd.driver->stopped()) {
    // A failed write or sync stops the node for good: it never acks after
    // it. The process is restarted later on what the disk kept.
    trace({.kind = TraceKind::storage_error, .node = static_cast<std::uint8_t>(n + 1), .a = pw.write->id});
    crash_node(n, true);
  }
}

std::uint64_t Simulator::track(Request::Kind kind, std::size_t n) {
  Request r;
  r.kind = kind;
  r.node = n;
  r.gen = nodes_[n]->gen;
  r.issued = now_;
  requests_.push_back(r);
  return requests_.size() - 1;
}

// The caller checker: every request completes exactly once, and a proposal
// that succeeded is committed at the index and term it was given.
void Simulator::completed(std::uint64_t id, std::error_code ec) {
  Request& r = requests_[id];
  if (++r.completions > 1) {
    violation("callers", fmt::format("request {} at n{} completed {} times (last with '{}')", id, r.node + 1,
                                     r.completions, ec ? ec.message() : "success"));
    return;
  }
  if (r.kind == Request::Kind::membership && !ec) ++stats_.membership_changes;
  if (r.kind != Request::Kind::propose) return;
  if (ec == errc::dropped) r.dropped = true;
  if (ec) return;
  r.succeeded = true;
  const core::Raft& raft = nodes_[r.node]->raft();
  if (r.index == Index{} || raft.commit_index() < r.index || raft.log().term(r.index) != r.term)
    violation("callers", fmt::format("proposal {} at n{} succeeded, but ({}, {}) is not committed there", id,
                                     r.node + 1, r.index, r.term));
}

void Simulator::check_callers() {
  // Answers are owed within request_timeout of the node's clock (drift and
  // stalls included, well under 5 s) unless the node crashed.
  for (std::size_t id = 0; id < requests_.size(); ++id) {
    const Request& r = requests_[id];
    if (r.abandoned) continue;
    if (r.completions == 0 && r.issued + 5 * kSeconds < now_) {
      violation("callers", fmt::format("{} {} issued at n{} at {} was never completed",
                                       r.kind == Request::Kind::propose    ? "proposal"
                                       : r.kind == Request::Kind::read     ? "read"
                                       : r.kind == Request::Kind::transfer ? "transfer"
                                                                           : "membership change",
                                       id, r.node + 1, format_time(r.issued)));
      return;
    }
    if (r.kind != Request::Kind::propose || r.index == Index{}) continue;
    const std::optional<Term> committed = checker_.committed_term(r.index);
    if (r.succeeded && committed && *committed != r.term) {
      violation("callers", fmt::format("proposal {} succeeded at ({}, {}), but term {} committed there", id, r.index,
                                       r.term, *committed));
      return;
    }
    if (r.dropped && committed && *committed == r.term) {
      violation("callers", fmt::format("proposal {} was reported dropped, but ({}, {}) committed", id, r.index,
                                       r.term));
      return;
    }
  }
}

void Simulator::after_step(std::size_t n) {

  Node& nd = *nodes_[n];
  if (!nd.up) return;
  const core::Raft& r = nd.raft();
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
  // Swapped in by a leader (or no longer a voter at all).
  if (nd.lost_disk && r.membership_index() != Index{} && !r.replacing()) nd.lost_disk = false;
  if (r.membership_index() > nd.membership_index) {
    nd.membership_index = r.membership_index();
    nd.membership = r.membership();
  }
  checker_.after_step(n, r);
  if (r.role() == core::Role::leader) {
    for (std::size_t f = 0; f < n_; ++f)
      if (f != n && nodes_[f]->up) checker_.check_match(n, r, f, nodes_[f]->raft());
  } else if (!r.leader().is_none() && r.leader().value <= n_) {
    const std::size_t l = r.leader().value - 1;
    if (l != n && nodes_[l]->up) checker_.check_match(l, nodes_[l]->raft(), n, r);
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
  // of votes. Judge the newest committed index against each running node's
  // current log (as a candidate, in the configuration it would count votes
  // in) and every node's durable log (as a voter; a node that lost its disk
  // and has not caught up refuses to vote).
  const Index i = checker_.committed();
  safety_checked_commit_ = i;
  std::optional<Term> committed_term;
  for (auto& nd : nodes_)
    if (nd->up && nd->raft().commit_index() >= i) committed_term = nd->raft().log().term(i);
  if (!committed_term) return;
  struct Last {
    Term term;
    Index index;
    auto operator<=>(const Last&) const = default;
  };
  std::vector<Last> voters;
  std::vector<std::uint64_t> incarnations;
  for (auto& nd : nodes_) {
    const LogStore& d = nd->store.durable();
    voters.push_back({d.term(d.last_index()).value_or(Term{}), d.last_index()});
    // A vote counts only from the incarnation a configuration names; a
    // wiped node that has not restarted yet has none (0) and counts nowhere.
    incarnations.push_back(d.hard_state().incarnation);
  }
  for (std::size_t n = 0; n < n_; ++n) {
    Node& nd = *nodes_[n];
    if (!nd.up) continue;
    const core::Raft& r = nd.raft();
    if (r.log().term(i) == committed_term || !r.counted()) continue;  // a node not counted never campaigns
    if (r.has_unapplied_membership()) continue;  // campaigns only once it applied them
    const Last mine{r.log().last_term(), r.last_index()};
    core::Ballots votes;
    for (std::size_t v = 0; v < n_; ++v)
      if (v == n || voters[v] <= mine) votes[NodeId{v + 1}] = core::Ballot{true, incarnations[v]};
    if (core::quorum_vote(r.membership(), votes) == core::VoteResult::won) {
      violation("leader completeness",
                fmt::format("index {} (term {}) is committed, but n{} lacks it and its log (last {}/term {}) is at "
                            "least as up to date as the durable logs of a quorum of its configuration ({}): it "
                            "could be elected and erase it",
                            i, *committed_term, n + 1, mine.index, mine.term, core::describe(r.membership())));
      return;
    }
  }
}

std::optional<std::size_t> Simulator::leader() const {
  std::optional<std::size_t> best;
  for (std::size_t n = 0; n < n_; ++n) {
    const Node& nd = *nodes_[n];
    if (!nd.up || nd.raft().role() != core::Role::leader) continue;
    if (!best || nd.raft().term() > nodes_[*best]->raft().term()) best = n;
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
  if (hold_[link] > 0 && rng_.chance(hold_[link])) {
    const Time election = tuning_.tick * tuning_.election_ticks;
    d += rng_.range(election, 4 * election);
  }
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
    report_snapshot_fate(m, false);
    // A transport notices a dead link now and then and says so.
    if (cut_[link] > 0 && rng_.chance(0.05))
      schedule(now_ + kMillis, Ev::unreachable, static_cast<std::uint32_t>(from), nodes_[from]->gen, to + 1);
    return;
  }
  const Message* out = &m;
  Message decoded;
  if (use_codec_) {
    // Through the wire format, as the TCP transport sends it.
    const Bytes frame = transport::encode_to_bytes(m);
    if (auto ec = transport::decode(frame, decoded)) {
      violation("codec", fmt::format("a {} message does not survive encode/decode: {}", to_string(m.type), ec.message()));
      return;
    }
    if (!(decoded == m)) {
      violation("codec", fmt::format("a {} message changed on the wire", to_string(m.type)));
      return;
    }
    out = &decoded;
  }
  // During chaos a leadership transfer's messages are often held up (a
  // queue behind a snapshot, a congested link): a TimeoutNow that arrives
  // after the leader gave up on the transfer, and a transfer vote that
  // reaches the old leader last, are what a lease must survive.
  Time extra = 0;
  const bool transfer_message =
      m.type == MessageType::timeout_now || (m.type == MessageType::vote && m.context == kTransferContext);
  if (chaos_ && transfer_message && rng_.chance(0.5)) extra = rng_.range(100 * kMillis, 1500 * kMillis);
  const int copies = dup_[link] > 0 && rng_.chance(dup_[link]) ? 2 : 1;
  for (int k = 0; k < copies; ++k) {
    schedule(now_ + link_delay(from, to) + extra, Ev::deliver, static_cast<std::uint32_t>(to), 0, pool_message(*out));
  }
}

// The links out of (`out`) and into (`in`) node x.
std::vector<std::pair<std::size_t, std::size_t>> Simulator::links_of_node(std::size_t x, bool out, bool in) const {
  std::vector<std::pair<std::size_t, std::size_t>> links;
  for (std::size_t o = 0; o < n_; ++o) {
    if (o == x) continue;
    if (out) links.emplace_back(x, o);
    if (in) links.emplace_back(o, x);
  }
  return links;
}

// The transport tells the sender what became of a snapshot (a stream that
// finished or broke); now and then the report itself is lost.
void Simulator::report_snapshot_fate(const Message& m, bool delivered) {
  if (m.type != MessageType::snapshot || rng_.chance(0.2)) return;
  const std::size_t from = m.from.value - 1;
  schedule(now_ + kMillis, Ev::snapshot_report, static_cast<std::uint32_t>(from), nodes_[from]->gen,
           m.to.value | (std::uint64_t{delivered} << 32));
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
  // Reads may go to any node (a follower asks the leader): half of them
  // pick one at random, which is how a client meets a deposed leader that
  // has not noticed yet.
  if (is_read(op.kind) && !op.via_log && rng_.chance(0.5)) c.target = rng_.below(n_);
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
  const auto kind = op.via_log ? Request::Kind::propose : Request::Kind::read;
  const std::uint64_t id = track(kind, n);
  auto done = [this, id, n, client = p.client, op_id = p.op](std::error_code ec, Bytes out) {
    completed(id, ec);
    // The library's one rule (raftkit::outcome): refusals did nothing;
    // timeouts, shutdown and store failures leave the outcome unknown.
    const RequestOutcome o = outcome(ec);
    const OpStatus status = o == RequestOutcome::done       ? OpStatus::ok
                            : o == RequestOutcome::not_done ? OpStatus::failed
                                                            : OpStatus::unknown;
    const NodeId hint = ec == errc::not_leader ? nodes_[n]->raft().leader() : NodeId{};
    reply(n, client, op_id, status, decode_output(out), hint);
  };
  const runtime::TimePoint now = as_time_point(local_now(n));
  if (op.via_log) {
    Command cmd;
    cmd.kind = op.kind;
    cmd.client = static_cast<std::uint32_t>(p.client);
    cmd.request = p.op;
    cmd.a = op.a;
    cmd.b = op.b;
    // As Node does: proposals wait for one poll, which replicates together
    // whatever arrived at the same moment.
    const core::Proposed where = nd.driver->propose(encode(cmd), std::move(done), now, /*defer=*/true);
    requests_[id].index = where.index;
    requests_[id].term = where.term;
    if (!nd.poll_pending) {
      nd.poll_pending = true;
      schedule(now_, Ev::poll, static_cast<std::uint32_t>(n), nd.gen);
    }
  } else {
    nd.driver->read(Bytes{static_cast<std::uint8_t>(op.kind)}, std::move(done), now);
  }
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
  std::fill(hold_.begin(), hold_.end(), 0.0);
  std::fill(cut_.begin(), cut_.end(), 0);
  reverts_.clear();
  cut_next_leader_ = 0;
  for (std::size_t n = 0; n < n_; ++n) {
    Node& nd = *nodes_[n];
    set_clock_rate(n, nd.base_clock_rate);
    nd.power_cut_armed = false;
    nd.slow_next_sync = false;
    nd.store.disarm();
  }
  trace({.kind = TraceKind::heal, .a = 1});
  for (std::size_t n = 0; n < n_; ++n)
    if (!nodes_[n]->up) start_node(n);
  // Liveness: some node must commit an entry beyond every log's end now.
  Index target;
  for (auto& nd : nodes_)
    if (nd->up) target = std::max(target, nd->raft().last_index());
  liveness_target_ = target;
  liveness_pending_ = true;
  // A disk that hangs finishes its write first: the heal is complete when
  // every write already in flight has completed.
  healed_at_ = now_;
  for (auto& nd : nodes_)
    if (nd->up && !nd->writes.empty()) healed_at_ = std::max(healed_at_, nd->last_sync_at);
  schedule(healed_at_ + tuning_.election_timeout() * liveness_timeouts_, Ev::liveness_deadline, 0, 0,
           static_cast<std::uint64_t>(healed_at_));
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
  auto links_of = [&](std::size_t x, bool out, bool in) { return links_of_node(x, out, in); };

  switch (f) {
    case Fault::loss:
    case Fault::duplicate:
    case Fault::reorder:
    case Fault::hold: {
      auto links = rng_.chance(0.5) ? all_links() : links_of(victim, true, true);
      const double p = f == Fault::loss   ? 0.05 + 0.45 * rng_.unit()
                       : f == Fault::hold ? 0.02 + 0.18 * rng_.unit()
                                          : 0.05 + 0.25 * rng_.unit();
      std::vector<double>& table = f == Fault::loss        ? loss_
                                   : f == Fault::duplicate ? dup_
                                   : f == Fault::hold      ? hold_
                                                           : spike_;
      for (auto [a, b] : links) table[a * n_ + b] = p;
      te.c = static_cast<std::uint64_t>(p * 100);
      te.d = links.size();
      const int revert = f == Fault::loss        ? kRevertLoss
                         : f == Fault::duplicate ? kRevertDup
                         : f == Fault::hold      ? kRevertHold
                                                 : kRevertSpike;
      add_revert(std::move(links), revert, duration);
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
      } else if (n_ > 1) {
        const std::size_t other = (victim + 1 + rng_.below(n_ - 1)) % n_;
        links.emplace_back(victim, other);
      }
      for (auto [a, b] : links) ++cut_[a * n_ + b];
      te.c = shape;
      add_revert(std::move(links), kRevertCut, duration);
      break;
    }
    case Fault::crash: {
      const std::uint64_t shape = rng_.below(12);
      if (shape < 4) {
        crash_node(victim, false);
      } else if (shape >= 10) {
        stop_node(victim);  // Node::stop(): callers answered, then restart
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
      const std::uint64_t shape = rng_.below(3);
      if (shape == 0)
        nodes_[victim]->store.fail_next_write();
      else if (shape == 1)
        nodes_[victim]->store.fail_next_sync();
      else
        nodes_[victim]->slow_next_sync = true;  // the leader must step down, not hold the cluster
      te.c = shape;
      break;
    }
    case Fault::stall: {
      // The node's thread is busy (a long apply, a snapshot capture, a loaded
      // machine): it handles nothing for a while, its clock runs on.
      // Half the time its network is gone for as long (a frozen VM): what
      // the others send meanwhile is lost, not queued.
      Node& nd = *nodes_[victim];
      const Time len = rng_.range(50 * kMillis, 3 * kSeconds);
      nd.stalled_until = std::max(nd.stalled_until, now_ + len);
      te.c = static_cast<std::uint64_t>(len / kMillis);
      if (rng_.chance(0.5)) {
        auto links = links_of(victim, true, true);
        for (auto [a, b] : links) ++cut_[a * n_ + b];
        te.d = links.size();
        add_revert(std::move(links), kRevertCut, len);
      }
      break;
    }
    case Fault::drift: {
      // With lease reads the clocks must keep their promise (rates within
      // the configured bound, see ProtocolOptions::lease_reads); without,
      // anything goes.
      const double rate = lease_seed_ ? 1.0 + max_drift_ * (2 * rng_.unit() - 1) : 0.7 + 0.7 * rng_.unit();
      set_clock_rate(victim, rate);
      te.c = static_cast<std::uint64_t>(rate * 100);
      add_revert({{victim, victim}}, kRevertClock, duration);
      break;
    }
    case Fault::membership:
      trace(te);
      change_membership();
      return;
    case Fault::wipe:
      // Only a node the others can elect a leader without: a node that lost
      // its disk does not vote until it is caught up, so a cluster that needs
      // its vote stays without a leader (as it must: nobody can tell what
      // it had). Several nodes may be recovering at once.
      {
        core::Ballots votes;
        for (std::size_t k = 0; k < n_; ++k)
          votes[NodeId{k + 1}] = core::Ballot{k != victim && !nodes_[k]->lost_disk,
                                              nodes_[k]->store.durable().hard_state().incarnation};
        if (core::quorum_vote(newest_membership(), votes) != core::VoteResult::won) break;
        // Nor while a change is in flight anywhere: the next configuration
        // counts too (a joint configuration whose new half needs the wiped
        // node could never complete).
        if (membership_in_flight()) break;
      }
      trace(te);
      wipe_node(victim);
      return;
    case Fault::transfer: {
      if (!lead || n_ < 2) break;
      const std::size_t to = (*lead + 1 + rng_.below(n_ - 1)) % n_;
      const std::uint64_t id = track(Request::Kind::transfer, *lead);
      nodes_[*lead]->driver->transfer(NodeId{to + 1}, [this, id](std::error_code ec) { completed(id, ec); },
                                      as_time_point(local_now(*lead)));
      te.c = to + 1;
      trace(te);
      after_step(*lead);
      return;
    }
  }
  trace(te);
}

// ---------------------------------------------------------------------------
// End of run

void Simulator::final_checks() {
  if (liveness_pending_ && now_ - healed_at_ >= tuning_.election_timeout() * liveness_timeouts_) {
    violation("liveness", fmt::format("no new entry committed after the heal at {}", format_time(healed_at_)));
    return;
  }
  // Convergence: every replica has caught up with the cluster's commit, and
  // replicas at equal applied indexes have equal state.
  Index commit;
  for (auto& nd : nodes_)
    if (nd->up) commit = std::max(commit, nd->raft().commit_index());
  const Membership members = newest_membership();
  for (std::size_t n = 0; n < n_; ++n) {
    const Node& nd = *nodes_[n];
    if (!nd.up) continue;
    if (!core::is_member(members, nd.id)) continue;  // removed, or never added: it hears nothing more
    if (nd.sm->state.applied + 0 < commit && now_ - healed_at_ > 5 * kSeconds) {
      std::string progress = "no leader";
      if (const auto lead = leader()) {
        const core::Progress* pr = nodes_[*lead]->raft().progress().find(nd.id);
        if (pr)
          progress = fmt::format("leader n{} tracks it as {} match={} next={} probe_sent={} inflight={} paused={}",
                                 *lead + 1, core::to_string(pr->state), pr->match, pr->next, pr->probe_sent,
                                 pr->inflights.count(), pr->paused());
      }
      violation("convergence", fmt::format("n{} applied only up to {} of {} committed, {} after the final heal; {}",
                                           n + 1, nd.sm->state.applied, commit, format_time(now_ - healed_at_), progress));
      return;
    }
    for (std::size_t m = n + 1; m < n_; ++m) {
      const Node& other = *nodes_[m];
      if (other.up && other.sm->state.applied == nd.sm->state.applied && other.sm->state.hash != nd.sm->state.hash) {
        violation("state machine safety", fmt::format("n{} and n{} both applied up to {} but their states differ",
                                                      n + 1, m + 1, nd.sm->state.applied));
        return;
      }
    }
  }

  check_callers();
  if (violation_) return;

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

#include "sim/simulator.hpp"

#include <fmt/format.h>

namespace raftkit::sim {

namespace {
// A healthy cluster keeps a few hundred events queued; a feedback loop of
// messages (each answer provoking more than one new message) grows without
// bound and would never finish.
constexpr std::size_t kMaxQueuedEvents = 100000;

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

// A quarter of the seeds have patient callers: proposals wait 8 s instead of
// the tuning's 1 s, so a leader deposed with proposals in flight can lead
// again while they wait, and a new proposal lands at the index an old one
// holds (issue 20, hole B). Drawn with its own generator, like the size.
Time proposal_timeout(const SimConfig& c, const Tuning& tuning) {
  Rng r(c.seed * 0x9E3779B97F4A7C15ULL + 17);
  return r.chance(0.25) ? 8 * kSeconds : tuning.request_timeout;
}
}  // namespace

// What every node of one seed shares.
struct Simulator::SeedSetup {
  std::size_t initial = 0;               // the voters of the new cluster: nodes 1..initial
  std::map<NodeId, std::string> peers;   // the new cluster's
  bool small_appends = false, use_wal = false, pre_vote = true, check_quorum = true;
  std::uint64_t snapshot_interval = 0;
  std::chrono::milliseconds disk_stall{};
  int lease_margin = 2;
};

Simulator::Simulator(SimConfig config, Tuning tuning)
    : world_(config, tuning, total_nodes(config)),
      network_(world_, total_nodes(world_.config)),
      cluster_(world_, network_),
      callers_(world_, cluster_),
      checks_(world_, cluster_, callers_),
      nemesis_(world_, network_, cluster_, callers_, checks_),
      clients_(world_, cluster_, callers_),
      streams_(world_, network_, cluster_) {
  network_.attach(cluster_, streams_);
  cluster_.attach(nemesis_, callers_, checks_, streams_);
  Rng& rng = world_.rng;
  SeedProfile& profile = world_.profile;
  SeedSetup s;
  s.initial = cluster_size(world_.config);
  for (std::size_t i = 0; i < s.initial; ++i) s.peers[NodeId{i + 1}] = fmt::format("sim:{}", i + 1);
  // Per-seed variety. Half the runs send appends of one or two entries: a
  // new leader's no-op then travels apart from the older entries before it,
  // which is what makes the Figure 8 window (an old-term entry on a
  // majority, the no-op not yet) reachable at all. Half encode every message
  // through the wire codec; half snapshot every few entries; a quarter serve
  // reads from the leader's lease; some run without pre-vote or check-quorum.
  s.small_appends = rng.below(2) == 0;
  profile.use_codec = rng.chance(0.5);
  s.use_wal = rng.chance(0.3);
  s.snapshot_interval = rng.chance(0.5) ? static_cast<std::uint64_t>(rng.range(5, 200)) : 0;
  profile.lease_reads = rng.chance(0.25);
  s.pre_vote = profile.lease_reads || !rng.chance(0.15);
  // Without pre-vote a node that cannot win still raises the term each
  // time its timer fires, and the node that can win must beat it to the
  // next timeout, a coin toss per round: give it more rounds.
  profile.liveness_timeouts = tuning.liveness_election_timeouts * (s.pre_vote ? 1 : 3);
  s.check_quorum = profile.lease_reads || !rng.chance(0.15);
  s.disk_stall = std::chrono::milliseconds(rng.chance(0.5) ? rng.range(200, 1000) : 2000);
  // Lease safety needs the leader's (E - m) ticks to last no longer in real
  // time than a follower's E ticks: rates within ±max_drift keep
  // (1 + d) / (1 - d) below E / (E - m).
  const double bound = static_cast<double>(tuning.election_ticks) / (tuning.election_ticks - s.lease_margin);
  profile.max_drift = 0.9 * (bound - 1) / (bound + 1);
  for (std::size_t i = 0; i < network_.size(); ++i) cluster_.add(make_node(i, s));
  clients_.create(world_.config.clients, world_.config.duration - 2 * kSeconds);
}

std::unique_ptr<SimNode> Simulator::make_node(std::size_t i, const SeedSetup& s) {
  Rng& rng = world_.rng;
  const Tuning& tuning = world_.tuning;
  auto node = std::make_unique<SimNode>();
  node->id = NodeId{i + 1};
  Options& opt = node->options;
  auto known = s.peers;
  known[node->id] = fmt::format("sim:{}", i + 1);
  opt = Options::from_peers(node->id, known);
  opt.tick_interval = std::chrono::milliseconds(tuning.tick / kMillis);
  opt.request_timeout = std::chrono::milliseconds(proposal_timeout(world_.config, tuning) / kMillis);
  opt.disk_stall_timeout = s.disk_stall;
  opt.snapshot_interval = s.snapshot_interval;
  // A quarter of the interval of log kept behind each snapshot (0..50 entries):
  // lagging followers meet both appends and snapshots. Derived, not drawn,
  // so the seeds' random streams are unchanged.
  opt.snapshot_trailing_entries = s.snapshot_interval / 4;
  opt.logger = Logger::discard();  // the trace says what happened
  opt.bootstrap = i < s.initial;   // spares wait to be added; a wiped node restarts without it
  opt.membership_timeout = std::chrono::milliseconds(tuning.request_timeout / kMillis);
  ProtocolOptions& o = opt.protocol;
  o.election_ticks = tuning.election_ticks;
  o.heartbeat_ticks = tuning.heartbeat_ticks;
  o.pre_vote = s.pre_vote;
  o.check_quorum = s.check_quorum;
  o.lease_reads = world_.profile.lease_reads;
  o.lease_margin_ticks = s.lease_margin;
  o.max_entries_per_append = static_cast<std::size_t>(s.small_appends ? rng.range(1, 2) : rng.range(4, 64));
  o.max_inflight_messages = static_cast<std::size_t>(rng.range(4, 64));
  o.seed = rng.next();
  o.batch_appends = (o.seed & 3) != 0;  // derived, not drawn: 3 leaders in 4 batch, the rest send at once
  if (has(world_.config.faults, Fault::drift)) {
    const double d = world_.profile.max_drift;
    node->base_clock_rate = world_.profile.lease_reads ? 1.0 + d * (2 * rng.unit() - 1) : 0.95 + 0.1 * rng.unit();
  }
  node->clock_rate = node->base_clock_rate;
  if (s.use_wal) {
    std::string detail;
    if (auto ec = node->store.use_wal(detail, world_.config.shared_log, world_.config.shared_log_bugs)) world_.fail("wal", fmt::format("cannot open: {}", detail));
  }
  return node;
}

// Each event goes to the part it is for.
struct Simulator::Dispatch {
  Simulator& s;
  void operator()(const ev::Tick& e) const { s.cluster_.on(e); }
  void operator()(const ev::Deliver& e) const { s.cluster_.on(e); }
  void operator()(const ev::SyncDone& e) const { s.cluster_.on(e); }
  void operator()(const ev::PowerCut& e) const { s.cluster_.on(e); }
  void operator()(const ev::Restart& e) const { s.cluster_.on(e); }
  void operator()(const ev::Poll& e) const { s.cluster_.on(e); }
  void operator()(const ev::Unreachable& e) const { s.cluster_.on(e); }
  void operator()(const ev::StreamDeliver& e) const { s.cluster_.on(e); }
  void operator()(const ev::StreamStallCheck& e) const { s.streams_.on(e); }
  void operator()(const ev::StreamExpire& e) const { s.streams_.on(e); }
  void operator()(const ev::ClientArrive& e) const { s.clients_.on(e); }
  void operator()(const ev::ClientReply& e) const { s.clients_.on(e); }
  void operator()(const ev::ClientTimeout& e) const { s.clients_.on(e); }
  void operator()(const ev::ClientNext& e) const { s.clients_.on(e); }
  void operator()(const ev::PhaseStart& e) const { s.nemesis_.on(e); }
  void operator()(const ev::PhaseEnd& e) const { s.nemesis_.on(e); }
  void operator()(const ev::Nemesis& e) const { s.nemesis_.on(e); }
  void operator()(const ev::Revert& e) const { s.nemesis_.on(e); }
  void operator()(const ev::Probe& e) const { s.checks_.on(e); }
  void operator()(const ev::LivenessDeadline& e) const { s.checks_.on(e); }
};

void Simulator::loop() {
  World& w = world_;
  while (w.has_events() && !w.failed()) {
    const Event e = w.next_event();
    if (e.at > w.config.duration) break;
    w.pop_event();
    w.now = e.at;
    ++w.stats.events;
    std::visit(Dispatch{*this}, e.body);
    if (!w.failed() && w.checker.failed()) w.fail(w.checker.kind(), w.checker.what());
    if (w.queued() > kMaxQueuedEvents && !w.failed())
      w.fail("message storm", fmt::format("{} events pending: the cluster is flooding itself", w.queued()));
  }
}

RunResult Simulator::run() {
  World& w = world_;
  const Time T = w.tuning.election_timeout();
  nemesis_.set_final_heal_by(w.config.duration - T * w.profile.liveness_timeouts - 2 * kSeconds);
  for (std::size_t n = 0; n < cluster_.size(); ++n) cluster_.start(n);
  // The cluster starts healthy: the first leader must appear as after a heal.
  nemesis_.heal_all(false);
  clients_.begin();
  loop();
  if (!w.failed()) {
    w.now = w.config.duration;
    checks_.final_checks(clients_.history());
  }

  RunResult r;
  r.config = w.config;
  r.config.verbose = nullptr;
  w.stats.runs = 1;
  w.stats.simulated = w.now;
  w.stats.elections = w.checker.elections();
  w.stats.commits = w.checker.committed().value;
  w.stats.requests = callers_.count();
  w.stats.violations = w.violation ? 1 : 0;
  r.stats = w.stats;
  r.violation = w.violation;
  r.trace_hash = w.trace_hash();
  return r;
}

RunResult run_simulation(const SimConfig& config) {
  Simulator sim(config);
  return sim.run();
}

}  // namespace raftkit::sim

#include "sim/cluster.hpp"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "raftkit/error.hpp"
#include "raftkit/tcp_transport.hpp"
#include "sim/callers.hpp"
#include "sim/cluster_checks.hpp"
#include "sim/nemesis.hpp"
#include "sim/network.hpp"
#include "sim/snapshot_streams.hpp"

namespace raftkit::sim {

runtime::TimePoint as_time_point(Time t) { return std::chrono::microseconds(t); }

// ---------------------------------------------------------------------------
// The driver's surroundings: its I/O, its state machine, its observer

class NodeIo final : public runtime::DriverIo {
 public:
  NodeIo(Cluster& cluster, Network& network, std::size_t n) : cluster_(cluster), net_(network), n_(n) {}
  void send(Message m) override { net_.send(m); }
  void persist(std::shared_ptr<runtime::DiskWrite> w) override { cluster_.persist(n_, std::move(w)); }
  void read_snapshot(std::shared_ptr<runtime::SnapshotRead> r) override { cluster_.read_snapshot(n_, std::move(r)); }
  void members_changed(const Membership& m) override { cluster_.set_dialled(n_, m.addresses); }

 private:
  Cluster& cluster_;
  Network& net_;
  std::size_t n_;
};

// The workload's state machine behind the interface users implement. An
// output travels as 9 bytes: the value, then whether a CAS swapped.
class SimMachine final : public raftkit::StateMachine {
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

 private:
  static Bytes encode_output(const OpOutput& o) {
    Bytes b(9);
    std::memcpy(b.data(), &o.value, 8);
    b[8] = o.ok ? 1 : 0;
    return b;
  }
};

// Feeds what the driver does to the checkers.
class NodeObserver final : public runtime::DriverObserver {
 public:
  NodeObserver(Cluster& cluster, World& world, std::size_t n) : cluster_(cluster), w_(world), n_(n) {}
  void on_ready(const core::Raft& raft, const core::Ready& rd) override {
    w_.checker.on_ready(n_, raft, rd);
    w_.trace(traced::Ready{n_, rd.entries.size(), rd.messages.size() + rd.persisted_messages.size(),
                           rd.committed_entries.size(), rd.hard_state ? rd.hard_state->commit : Index{}});
  }
  void on_applied(const Entry& e) override {
    sim::StateMachine& st = cluster_.node(n_).sm->state;
    // The driver hands only commands to the state machine; the hash covers
    // every entry, so the others are folded in here.
    if (e.type != EntryType::normal && e.index > st.applied) st.apply(e);
    w_.checker.on_apply(n_, e, st.hash);
  }
  void on_snapshot_loaded(const SnapshotMeta& meta) override {
    SimNode& nd = cluster_.node(n_);
    if (nd.up) ++w_.stats.snapshots_installed;
    w_.checker.on_snapshot_loaded(n_, meta.index, nd.sm->state.hash);
    w_.trace(traced::SnapshotLoaded{n_, meta.index});
  }
  void on_snapshot_taken(const SnapshotMeta& meta) override {
    ++w_.stats.snapshots_taken;
    w_.trace(traced::SnapshotTaken{n_, meta.index});
  }

 private:
  Cluster& cluster_;
  World& w_;
  std::size_t n_;
};

SimNode::SimNode() : snapshots(runtime::make_memory_snapshot_store()) {}
SimNode::~SimNode() = default;
const sim::StateMachine& SimNode::state() const { return sm->state; }

void Cluster::attach(Nemesis& nemesis, Callers& callers, ClusterChecks& checks, SnapshotStreams& streams) {
  streams_ = &streams;
  nemesis_ = &nemesis;
  callers_ = &callers;
  checks_ = &checks;
}

// ---------------------------------------------------------------------------
// Clocks

Time Cluster::local_now(std::size_t n) const {
  const SimNode& nd = *nodes_[n];
  return nd.local_base + static_cast<Time>(static_cast<double>(w_.now - nd.real_base) / nd.clock_rate);
}

void Cluster::set_clock_rate(std::size_t n, double rate) {
  SimNode& nd = *nodes_[n];
  nd.local_base = local_now(n);
  nd.real_base = w_.now;
  nd.clock_rate = rate;
}

void Cluster::schedule_tick(std::size_t n) {
  SimNode& nd = *nodes_[n];
  const auto period = static_cast<Time>(static_cast<double>(w_.tuning.tick) * nd.clock_rate);
  w_.schedule(w_.now + std::max<Time>(1, period), ev::Tick{n, nd.gen});
}

// Its events queue up in arrival order, as handlers queue behind a busy strand.
bool Cluster::defer_if_stalled(std::size_t n, const EventBody& e) {
  const SimNode& nd = *nodes_[n];
  if (nd.stalled_until <= w_.now) return false;
  w_.schedule(nd.stalled_until, e);
  return true;
}

// ---------------------------------------------------------------------------
// Events

void Cluster::on(const ev::Tick& e) {
  SimNode& nd = *nodes_[e.node];
  if (!current(nd, e.gen) || defer_if_stalled(e.node, e)) return;
  nd.driver->tick(driver_now(e.node));
  w_.trace(traced::Tick{e.node, nd.raft().term(), nd.raft().role()});
  after_step(e.node);
  if (current(nd, e.gen)) schedule_tick(e.node);
}

void Cluster::on(const ev::Deliver& e) {
  if (nodes_[e.to]->up && defer_if_stalled(e.to, e)) return;
  Message m = net_.take(e.slot);
  const std::size_t from = m.from.value - 1, to = m.to.value - 1;
  SimNode& nd = *nodes_[to];
  if (!nd.up || net_.is_cut(from, to)) {
    w_.trace(traced::Dropped{traced::summarize(m)});
    return;
  }
  w_.trace(traced::Delivered{traced::summarize(m)});
  if (m.type == MessageType::timeout_now) nemesis_->on_timeout_now_delivered(from);
  nd.driver->step(m, driver_now(to));
  if (m.type == MessageType::read_index) check_lease_read(to);
  after_step(to);
}

void Cluster::check_lease_read(std::size_t n) {
  const core::Raft& r = nodes_[n]->raft();
  if (r.role() == core::Role::leader && r.lease_valid()) w_.checker.on_lease_read(n, r);
}

void Cluster::receive(std::size_t n, const Message& m) {
  w_.trace(traced::Delivered{traced::summarize(m)});
  nodes_[n]->driver->step(m, driver_now(n));
  after_step(n);
}

void Cluster::on(const ev::StreamDeliver& e) {
  if (nodes_[e.to]->up && defer_if_stalled(e.to, e)) return;
  const Network::StreamPacket p = net_.take_stream(e.slot);
  const bool dropped = !nodes_[e.to]->up || net_.is_cut(p.from, p.to);
  w_.trace(traced::summarize(p.from, p.to, p.body, dropped));
  if (dropped) return;
  if (const auto* chunk = std::get_if<transport::SnapshotChunk>(&p.body))
    streams_->on_chunk(p.to, p.from, *chunk);
  else
    streams_->on_ack(p.to, std::get<transport::SnapshotAck>(p.body));
}

void Cluster::on(const ev::SyncDone& e) {
  SimNode& nd = *nodes_[e.node];
  if (!current(nd, e.gen) || defer_if_stalled(e.node, e)) return;
  complete_sync(e.node);
  if (nd.up) after_step(e.node);
}

void Cluster::on(const ev::PowerCut& e) {
  if (current(*nodes_[e.node], e.gen)) crash(e.node, false, e.quick_restart);
}

void Cluster::on(const ev::Restart& e) {
  const SimNode& nd = *nodes_[e.node];
  if (nd.up || nd.gen != e.gen) return;
  start(e.node);
}

void Cluster::on(const ev::Poll& e) {
  SimNode& nd = *nodes_[e.node];
  if (!current(nd, e.gen) || defer_if_stalled(e.node, e)) return;
  nd.poll_pending = false;
  nd.driver->poll();
  after_step(e.node);
}

void Cluster::on(const ev::Unreachable& e) {
  SimNode& nd = *nodes_[e.node];
  if (!current(nd, e.gen) || defer_if_stalled(e.node, e)) return;
  nd.driver->report_unreachable(NodeId{e.peer});
  after_step(e.node);
}

// ---------------------------------------------------------------------------
// Disk: DriverIo::persist and the completion of its sync

// The writes reach the store (unsynced) now; the sync completes after a
// random latency, after every earlier write's.
void Cluster::persist(std::size_t n, std::shared_ptr<runtime::DiskWrite> w) {
  PendingWrite pw;
  nodes_[n]->store.set_full(w_.now < nodes_[n]->disk_full_until);
  pw.ec = w->apply(pw.what);
  pw.id = w->id;
  queue_io(n, std::move(pw));
}

// DriverIo::read_snapshot: read now, reported in the writes' queue.
void Cluster::read_snapshot(std::size_t n, std::shared_ptr<runtime::SnapshotRead> r) {
  PendingWrite pw;
  r->run();
  pw.id = r->id;
  pw.read = std::move(r);
  queue_io(n, std::move(pw));
}

void Cluster::queue_io(std::size_t n, PendingWrite pw) {
  SimNode& nd = *nodes_[n];
  const bool failed = static_cast<bool>(pw.ec);
  nd.writes.push_back(std::move(pw));
  if (nd.power_cut_armed) {
    nd.power_cut_armed = false;  // power lost while the sync is in flight
    w_.schedule(w_.now, ev::PowerCut{static_cast<std::uint32_t>(n), false, nd.gen});
  }
  Time latency = w_.rng.range(w_.tuning.sync_min, w_.tuning.sync_max);
  if (w_.rng.chance(w_.tuning.slow_sync_chance)) latency += w_.rng.range(10 * kMillis, 60 * kMillis);
  if (nd.slow_next_sync && !failed) {
    nd.slow_next_sync = false;  // a disk that hangs for a while
    latency += w_.rng.range(300 * kMillis, 4 * kSeconds);
  }
  if (failed) latency = 0;  // a failed write returns at once; there is nothing to sync
  nd.last_sync_at = std::max(nd.last_sync_at, w_.now + latency);
  w_.schedule(nd.last_sync_at, ev::SyncDone{n, nd.gen});
}

void Cluster::complete_sync(std::size_t n) {
  SimNode& nd = *nodes_[n];
  PendingWrite pw = std::move(nd.writes.front());
  nd.writes.pop_front();
  std::error_code ec = pw.ec;
  if (!ec && (ec = nd.store.sync())) pw.what = "syncing the log";
  if (!ec) w_.checker.on_synced(n, nd.store.durable().hard_state());
  w_.trace(traced::Synced{n, nd.store.last_index(), nd.store.hard_state().commit, static_cast<bool>(ec)});
  if (pw.read && !ec) {
    nd.driver->snapshot_read_done(*pw.read);
  } else {
    nd.driver->write_done(pw.id, ec, pw.what);  // a failed sync fails the driver, whichever work it ended
  }
  if (nd.driver->stopped()) {
    // A failed write or sync stops the node for good: it never acks after
    // it. The process is restarted later on what the disk kept.
    w_.trace(traced::WriteFailed{n, pw.id});
    crash(n, true);
  }
}

// The disk keeps what was synced and part of the rest; with the WAL its
// recovery runs here, and must give back everything that was synced.
void Cluster::cut_power(std::size_t n, std::size_t keep) {
  links_break(n);
  std::string detail;
  if (nodes_[n]->store.crash(keep, w_.rng.next(), detail))
    w_.fail("wal recovery", fmt::format("n{}: {}", n + 1, detail));
}

// ---------------------------------------------------------------------------
// Lifecycle

void Cluster::start(std::size_t n) {
  SimNode& nd = *nodes_[n];
  nd.dials = 0;
  set_dialled(n, nd.options.peers);  // a new process's transport knows its --peers
  nd.sm = std::make_unique<SimMachine>();
  nd.io = std::make_unique<NodeIo>(*this, net_, n);
  nd.observer = std::make_unique<NodeObserver>(*this, w_, n);
  nd.driver =
      std::make_unique<runtime::Driver>(nd.options, *nd.sm, nd.store, *nd.snapshots, *nd.io, w_.rng.next());
  nd.driver->set_observer(nd.observer.get());
#ifdef RAFTKIT_PLANTED_BUGS
  if (!w_.config.bugs.empty()) nd.driver->plant_bugs(w_.config.bugs);
#endif
  ++nd.gen;
  nd.writes.clear();
  nd.last_sync_at = w_.now;
  nd.stalled_until = 0;
  nd.poll_pending = false;
  std::string detail;
  if (auto ec = nd.driver->start(driver_now(n), detail)) {
    if (ec != errc::io_error && ec != errc::no_space) {
      w_.fail("restart", fmt::format("n{} cannot start: {} ({})", n + 1, detail, ec.message()));
      return;
    }
    // The disk failed during start-up: the process exits and is restarted.
    w_.trace(traced::StartFailed{n});
    nd.driver.reset();
    cut_power(n, 0);
    ++nd.gen;
    w_.schedule(w_.now + w_.rng.range(300 * kMillis, 3 * kSeconds), ev::Restart{n, nd.gen});
    return;
  }
  nd.up = true;
  links_redial(n);
  nd.last_role = nd.raft().role();
  nd.last_term = nd.raft().term();
  w_.trace(traced::Restarted{n, nd.raft().term(), nd.raft().last_index(), nd.raft().commit_index()});
  w_.checker.on_start(n, nd.raft(), nd.store.hard_state().commit);
  // The first tick comes at a random phase of the node's period.
  w_.schedule(w_.now + w_.rng.range(1, w_.tuning.tick), ev::Tick{n, nd.gen});
}

void Cluster::crash(std::size_t n, bool storage_error, bool quick_restart) {
  SimNode& nd = *nodes_[n];
  if (!nd.up) return;
  const std::size_t unsynced = nd.store.unsynced_writes();
  const std::size_t keep = w_.rng.chance(0.5) ? 0 : static_cast<std::size_t>(w_.rng.below(unsynced + 1));
  w_.trace(traced::Crash{n, keep, unsynced - keep});
  // The process dies: nobody answers its waiting callers.
  callers_->abandon(n, nd.gen);
  nd.driver.reset();
  cut_power(n, keep);
  nd.up = false;
  nd.power_cut_armed = false;
  nd.slow_next_sync = false;
  ++nd.gen;
  nd.writes.clear();
  w_.checker.on_crash(n);
  // On lease seeds half the restarts are quick, well inside an election
  // timeout: a lease the node acknowledged before it crashed still runs.
  const bool quick = quick_restart || (!storage_error && w_.profile.lease_reads && w_.rng.chance(0.5));
  const Time down = storage_error ? w_.rng.range(300 * kMillis, 3 * kSeconds)
                    : quick       ? w_.rng.range(5 * kMillis, 100 * kMillis)
                                  : w_.rng.range(10 * kMillis, 3 * kSeconds);
  w_.schedule(w_.now + down, ev::Restart{n, nd.gen});
}

// A clean shutdown (Node::stop): every waiting caller is answered, the write
// in flight completes, then the process exits and restarts later.
void Cluster::stop(std::size_t n) {
  SimNode& nd = *nodes_[n];
  if (!nd.up) return;
  nd.driver->stop(errc::shutting_down);
  while (!nd.writes.empty()) {
    if (!nd.writes.front().ec && !nd.store.sync()) w_.checker.on_synced(n, nd.store.durable().hard_state());
    nd.writes.pop_front();
  }
  w_.trace(traced::Stopped{n});
  nd.driver.reset();
  cut_power(n, nd.store.unsynced_writes());
  nd.up = false;
  nd.power_cut_armed = false;
  ++nd.gen;
  w_.checker.on_crash(n);
  w_.schedule(w_.now + w_.rng.range(10 * kMillis, 2 * kSeconds), ev::Restart{n, nd.gen});
}

// The operator wipes the node's data directory and restarts it under its old
// id, without bootstrap: it must not vote before a leader caught it up.
void Cluster::wipe(std::size_t n) {
  SimNode& nd = *nodes_[n];
  if (nd.up) crash(n, false);  // schedules the restart
  std::string detail;
  if (nd.store.wipe(detail)) w_.fail("wipe", fmt::format("n{}: {}", n + 1, detail));
  // Half the time only the log's directory is lost and the snapshots
  // survive beside it, and the operator's command line keeps --bootstrap:
  // the node must still come back as a new incarnation. (With no snapshot
  // either, --bootstrap on an empty disk starts a new cluster: the operator
  // error that a bootstrap cannot tell from a first start, never simulated.)
  SnapshotMeta kept;
  Bytes kept_data;
  std::string ignored;
  const bool log_only = w_.rng.chance(0.5) && !nd.snapshots->load(kept, kept_data, ignored);
  if (!log_only) nd.snapshots = runtime::make_memory_snapshot_store();
  if (!log_only) nd.options.bootstrap = false;
  nd.lost_disk = true;
  w_.checker.on_wipe(n);
  w_.trace(traced::Wiped{n, log_only});
}

// ---------------------------------------------------------------------------
// Connections

// The address book replaces the last one; an empty book (a node that has not
// learned its configuration yet) changes nothing, as in the TCP transport.
void Cluster::set_dialled(std::size_t n, const std::map<NodeId, std::string>& addresses) {
  if (addresses.empty()) return;
  std::uint32_t dials = 0;
  for (const auto& [id, address] : addresses)
    if (id.value >= 1 && id.value <= nodes_.size()) dials |= 1u << (id.value - 1);
  nodes_[n]->dials = dials;
}

// A process that exits closes its connections; every transport that dialled
// it sees its link fail and dials again after the TCP transport's backoff
// (reconnect_initial, doubling per failed dial up to reconnect_max, jittered
// down to half). Until the first dial after the node is back, what they send
// it over that link is lost: a restarted node can spend a few hundred
// milliseconds without hearing its leader, the window hole E needs.
void Cluster::links_break(std::size_t n) {
  for (std::size_t p = 0; p < nodes_.size(); ++p)
    if (p != n && nodes_[p]->lost_since[n] == 0) nodes_[p]->lost_since[n] = std::max<Time>(w_.now, 1);
}

void Cluster::links_redial(std::size_t n) {
  static const TcpTransportOptions tcp;
  const Time initial = tcp.reconnect_initial.count() * kMillis, most = tcp.reconnect_max.count() * kMillis;
  SimNode& nd = *nodes_[n];
  nd.up_at.fill(0);  // a new process: its links dial at once, and fail to the nodes that are down
  for (std::size_t p = 0; p < nodes_.size(); ++p) nd.lost_since[p] = nodes_[p]->up ? 0 : std::max<Time>(w_.now, 1);
  for (std::size_t p = 0; p < nodes_.size(); ++p) {
    SimNode& other = *nodes_[p];
    if (p == n || other.lost_since[n] == 0) continue;
    Time at = other.lost_since[n];
    for (Time backoff = initial; at < w_.now; backoff = std::min(2 * backoff, most))
      at += w_.rng.range(backoff / 2, backoff);
    other.up_at[n] = at;
    other.lost_since[n] = 0;
  }
}

// A message passes over the connection `from` dials, or over the one `to`
// dialled in on. The planted hole G is the old rule: a transport heard only
// the nodes its configuration named and sent only to them, so both ends had
// to name each other.
bool Cluster::connected(std::size_t from, std::size_t to) const {
  const bool out = (nodes_[from]->dials >> to) & 1u;
  const bool in = (nodes_[to]->dials >> from) & 1u;
  if (w_.config.bugs.driver.has(runtime::bug_hear_only_members)) [[unlikely]]
    return out && in && w_.now >= nodes_[from]->up_at[to];
  if (out) return w_.now >= nodes_[from]->up_at[to];
  return in && w_.now >= nodes_[to]->up_at[from];
}

// ---------------------------------------------------------------------------
// After a step

void Cluster::after_step(std::size_t n) {
  SimNode& nd = *nodes_[n];
  if (!nd.up) return;
  const core::Raft& r = nd.raft();
  if (r.role() != nd.last_role || r.term() != nd.last_term) {
    nd.last_role = r.role();
    nd.last_term = r.term();
    w_.trace(traced::RoleChanged{n, r.term(), r.role(), r.last_index(), r.commit_index()});
    if (r.role() == core::Role::leader) nemesis_->on_new_leader(n);
  }
  // Swapped in by a leader (or no longer a voter at all).
  if (nd.lost_disk && r.membership_index() != Index{} && !r.replacing()) nd.lost_disk = false;
  if (r.membership_index() > nd.membership_index) {
    nd.membership_index = r.membership_index();
    nd.membership = r.membership();
  }
  w_.checker.after_step(n, r);
  callers_->after_step();
  const std::size_t size = nodes_.size();
  if (r.role() == core::Role::leader) {
    for (std::size_t f = 0; f < size; ++f)
      if (f != n && nodes_[f]->up) w_.checker.check_match(n, r, f, nodes_[f]->raft());
  } else if (!r.leader().is_none() && r.leader().value <= size) {
    const std::size_t l = r.leader().value - 1;
    if (l != n && nodes_[l]->up) w_.checker.check_match(l, nodes_[l]->raft(), n, r);
  }
  checks_->after_step(r);
}

// ---------------------------------------------------------------------------
// Questions about the whole cluster

std::optional<std::size_t> Cluster::leader() const {
  std::optional<std::size_t> best;
  for (std::size_t n = 0; n < nodes_.size(); ++n) {
    const SimNode& nd = *nodes_[n];
    if (!nd.up || nd.raft().role() != core::Role::leader) continue;
    if (!best || nd.raft().term() > nodes_[*best]->raft().term()) best = n;
  }
  return best;
}

// Whether any node, up or down, holds a configuration entry it has not
// applied, or has applied a joint one.
bool Cluster::membership_in_flight() const {
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
const Membership& Cluster::newest_membership() const {
  const SimNode* best = nullptr;
  for (const auto& nd : nodes_)
    if (!best || nd->membership_index > best->membership_index) best = nd.get();
  return best->membership;
}

}  // namespace raftkit::sim

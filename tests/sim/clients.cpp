#include "sim/clients.hpp"

#include <cstring>

#include "raftkit/error.hpp"
#include "sim/callers.hpp"
#include "sim/cluster.hpp"

namespace raftkit::sim {

namespace {
// The state machine's answer (see SimMachine in cluster.cpp).
OpOutput decode_output(BytesView b) {
  OpOutput o;
  if (b.size() != 9) return o;
  std::memcpy(&o.value, b.data(), 8);
  o.ok = b[8] != 0;
  return o;
}
}  // namespace

void Clients::create(int count, Time stop_at) {
  stop_at_ = stop_at;
  for (int c = 0; c < count; ++c) {
    Client cl;
    cl.id = c;
    cl.target = w_.rng.below(cluster_.size());
    clients_.push_back(cl);
  }
}

void Clients::begin() {
  for (auto& c : clients_) w_.schedule(w_.rng.range(0, 200 * kMillis), ev::ClientNext{c.id});
}

Time Clients::delay() { return w_.rng.range(w_.tuning.client_delay_min, w_.tuning.client_delay_max); }

std::uint32_t Clients::pool(const Packet& p) {
  if (!packet_free_.empty()) {
    const std::uint32_t slot = packet_free_.back();
    packet_free_.pop_back();
    packet_pool_[slot] = p;
    return slot;
  }
  packet_pool_.push_back(p);
  return static_cast<std::uint32_t>(packet_pool_.size() - 1);
}

Clients::Packet Clients::take(std::uint32_t slot) {
  const Packet p = packet_pool_[slot];
  packet_free_.push_back(slot);
  return p;
}

void Clients::retarget(Client& c, NodeId hint) {
  const std::size_t n = cluster_.size();
  if (!hint.is_none() && hint.value <= n && hint.value - 1 != c.target) {
    c.target = hint.value - 1;
    return;
  }
  if (n > 1) c.target = (c.target + 1 + w_.rng.below(n - 1)) % n;
}

OpRecord Clients::draw_operation(Client& c) {
  OpRecord op;
  op.client = c.id;
  op.call = w_.now;
  // On lease seeds the workload now and then only reads, for one to three
  // seconds: a node cut off from the leader keeps a log as new as anyone's
  // and can win an election, which is what a lease has to hold against.
  if (w_.profile.lease_reads && w_.now >= next_read_only_at_) {
    read_only_until_ = w_.now + w_.rng.range(1 * kSeconds, 3 * kSeconds);
    next_read_only_at_ = read_only_until_ + w_.rng.range(2 * kSeconds, 8 * kSeconds);
  }
  if (w_.now < read_only_until_) {
    op.kind = w_.rng.chance(0.5) ? OpKind::counter_get : OpKind::reg_read;
    op.via_log = false;
    return op;
  }
  const std::uint64_t roll = w_.rng.below(100);
  if (roll < 30) {
    op.kind = OpKind::counter_add;
    op.a = w_.rng.range(1, 5);
  } else if (roll < 50) {
    op.kind = OpKind::counter_get;
    op.via_log = w_.rng.chance(0.3);
  } else if (roll < 65) {
    op.kind = OpKind::reg_write;
    op.a = static_cast<std::int64_t>((c.id + 1) * 1000000 + static_cast<int>(++c.seq));
  } else if (roll < 85) {
    op.kind = OpKind::reg_read;
    op.via_log = w_.rng.chance(0.3);
  } else {
    op.kind = OpKind::reg_cas;
    op.a = w_.rng.chance(0.8) ? c.last_reg : 0;
    op.b = static_cast<std::int64_t>((c.id + 1) * 1000000 + static_cast<int>(++c.seq));
  }
  return op;
}

void Clients::next(Client& c) {
  if (w_.now >= stop_at_ || c.op) return;
  const OpRecord op = draw_operation(c);
  // Reads may go to any node (a follower asks the leader): half of them
  // pick one at random, which is how a client meets a deposed leader that
  // has not noticed yet.
  if (is_read(op.kind) && !op.via_log && w_.rng.chance(0.5)) c.target = w_.rng.below(cluster_.size());
  const std::uint64_t id = ops_.size();
  ops_.push_back(op);
  c.op = id;
  w_.trace(traced::ClientCall{c.id, c.target, id, op.kind, op.a, op.via_log});
  Packet p;
  p.client = c.id;
  p.op = id;
  const std::uint32_t slot = pool(p);
  w_.schedule(w_.now + delay(), ev::ClientArrive{c.target, slot});
  w_.schedule(w_.now + w_.tuning.client_timeout, ev::ClientTimeout{c.id, id});
}

void Clients::on(const ev::ClientArrive& e) {
  if (cluster_.node(e.node).up && cluster_.defer_if_stalled(e.node, e)) return;
  arrive(e.node, take(e.slot));
}

void Clients::arrive(std::size_t n, const Packet& p) {
  SimNode& nd = cluster_.node(n);
  if (!nd.up) return;  // the client will time out
  const OpRecord& op = ops_[p.op];
  const auto kind = op.via_log ? RequestKind::propose : RequestKind::read;
  const std::uint64_t id = callers_.track(kind, n);
  auto done = [this, id, n, client = p.client, op_id = p.op](std::error_code ec, Bytes out) {
    callers_.completed(id, ec);
    // The library's one rule (raftkit::outcome): refusals did nothing;
    // timeouts, shutdown and store failures leave the outcome unknown.
    const RequestOutcome o = outcome(ec);
    Packet answer;
    answer.client = client;
    answer.op = op_id;
    answer.status = o == RequestOutcome::done       ? OpStatus::ok
                    : o == RequestOutcome::not_done ? OpStatus::failed
                                                    : OpStatus::unknown;
    answer.output = decode_output(out);
    answer.hint = ec == errc::not_leader ? cluster_.node(n).raft().leader() : NodeId{};
    reply(n, answer);
  };
  const runtime::TimePoint now = cluster_.driver_now(n);
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
    callers_.landed(id, where.index, where.term);
    if (!nd.poll_pending) {
      nd.poll_pending = true;
      w_.schedule(w_.now, ev::Poll{n, nd.gen});
    }
  } else {
    nd.driver->read(Bytes{static_cast<std::uint8_t>(op.kind)}, std::move(done), now);
    cluster_.check_lease_read(n);
  }
  cluster_.after_step(n);
}

// The node answers; the answer travels back to the client.
void Clients::reply(std::size_t /*n*/, const Packet& p) {
  const std::uint32_t slot = pool(p);
  w_.schedule(w_.now + delay(), ev::ClientReply{slot});
}

void Clients::on(const ev::ClientReply& e) {
  const Packet p = take(e.slot);
  Client& c = clients_[static_cast<std::size_t>(p.client)];
  if (!c.op || *c.op != p.op) return;  // an answer to an attempt already given up
  OpRecord& op = ops_[p.op];
  op.status = p.status;
  op.ret = w_.now;
  op.output = p.output;
  w_.trace(traced::ClientDone{c.id, c.target, p.op, p.status, p.output});
  c.op.reset();
  if (p.status == OpStatus::ok) {
    if (op.kind == OpKind::reg_read) c.last_reg = p.output.value;
    if (op.kind == OpKind::reg_write) c.last_reg = op.a;
    if (op.kind == OpKind::reg_cas && p.output.ok) c.last_reg = op.b;
    w_.schedule(w_.now + w_.rng.exponential(static_cast<double>(w_.tuning.client_think_mean)), ev::ClientNext{c.id});
    return;
  }
  // Refused or failed: go where the hint points (soon), or elsewhere (later).
  const bool hinted = !p.hint.is_none() && p.hint.value - 1 != c.target;
  retarget(c, p.hint);
  w_.schedule(w_.now + (hinted ? w_.rng.range(100, 2 * kMillis) : w_.rng.range(20 * kMillis, 200 * kMillis)),
              ev::ClientNext{c.id});
}

void Clients::on(const ev::ClientTimeout& e) {
  Client& c = clients_[static_cast<std::size_t>(e.client)];
  if (!c.op || *c.op != e.op) return;
  ops_[e.op].status = OpStatus::unknown;
  w_.trace(traced::ClientTimeout{c.id, e.op});
  c.op.reset();
  retarget(c, NodeId{});
  w_.schedule(w_.now + w_.rng.range(kMillis, 20 * kMillis), ev::ClientNext{e.client});
}

}  // namespace raftkit::sim

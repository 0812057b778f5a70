#include "sim/nemesis.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/quorum.hpp"
#include "sim/callers.hpp"
#include "sim/cluster.hpp"
#include "sim/cluster_checks.hpp"

namespace raftkit::sim {

// ---------------------------------------------------------------------------
// Phases

void Nemesis::on(const ev::PhaseStart&) {
  if (w_.now >= final_heal_by_ || w_.config.faults == 0) return;
  if (checks_.progress_pending()) {  // the last heal has not yet been shown to work
    w_.schedule(w_.now + w_.tuning.election_timeout(), ev::PhaseStart{});
    return;
  }
  net_.set_chaos(true);
  const Time len = w_.rng.range(w_.tuning.chaos_min, w_.tuning.chaos_max);
  w_.schedule(std::min(w_.now + len, final_heal_by_), ev::PhaseEnd{});
  w_.schedule(w_.now + w_.rng.range(0, w_.tuning.fault_interval_mean), ev::Nemesis{});
}

void Nemesis::on(const ev::PhaseEnd&) {
  net_.set_chaos(false);
  heal_all(w_.now + w_.tuning.chaos_min >= final_heal_by_);
}

void Nemesis::on(const ev::Nemesis&) {
  if (!net_.chaos()) return;
  inject_fault();
  const Time next = std::max<Time>(20 * kMillis, w_.rng.exponential(static_cast<double>(w_.tuning.fault_interval_mean)));
  w_.schedule(w_.now + next, ev::Nemesis{});
}

void Nemesis::heal_all(bool final) {
  net_.heal();
  reverts_.clear();
  cut_next_leader_ = 0;
  for (std::size_t n = 0; n < cluster_.size(); ++n) {
    SimNode& nd = cluster_.node(n);
    cluster_.set_clock_rate(n, nd.base_clock_rate);
    nd.power_cut_armed = false;
    nd.slow_next_sync = false;
    nd.disk_full_until = 0;
    nd.store.disarm();
  }
  w_.trace(traced::Healed{true});
  for (std::size_t n = 0; n < cluster_.size(); ++n)
    if (!cluster_.node(n).up) cluster_.start(n);
  checks_.expect_progress();
  const Time T = w_.tuning.election_timeout();
  if (!final) w_.schedule(w_.now + w_.rng.range(T, 4 * T), ev::PhaseStart{});
}

// ---------------------------------------------------------------------------
// Undoing a fault

void Nemesis::revert_after(Links links, Undo undo, Time duration) {
  const std::uint64_t id = next_revert_++;
  reverts_[id] = Revert{std::move(links), undo};
  w_.schedule(w_.now + duration, ev::Revert{id});
}

void Nemesis::cut_for(Links links, Time duration) {
  net_.cut(links);
  revert_after(std::move(links), Undo::cut, duration);
}

void Nemesis::on(const ev::Revert& e) {
  auto it = reverts_.find(e.id);
  if (it == reverts_.end()) return;
  const Links& links = it->second.links;
  switch (it->second.undo) {
    case Undo::loss: net_.clear_fault(LinkFaultKind::loss, links); break;
    case Undo::duplicate: net_.clear_fault(LinkFaultKind::duplicate, links); break;
    case Undo::spike: net_.clear_fault(LinkFaultKind::spike, links); break;
    case Undo::hold: net_.clear_fault(LinkFaultKind::hold, links); break;
    case Undo::cut: net_.uncut(links); break;
    case Undo::clock_rate:
      for (auto [a, b] : links) cluster_.set_clock_rate(a, cluster_.node(a).base_clock_rate);
      break;
  }
  reverts_.erase(it);
  w_.trace(traced::Healed{false});
}

// A leader elected just as its outgoing links fail: its first appends never
// arrive, so the voters' logs stay behind its own.
void Nemesis::on_new_leader(std::size_t n) {
  if (cut_next_leader_ <= 0) return;
  Links links = net_.links_of_node(n, true, false);
  net_.cut(links);
  w_.trace(traced::OneWayCut{n, traced::OneWay::next_leader});
  revert_after(std::move(links), Undo::cut, cut_next_leader_);
  cut_next_leader_ = 0;
}

// The worst moment: as the target starts its election, the old leader stops
// hearing anyone. It learns of the new term late, and only its lease stands
// between it and a stale read.
void Nemesis::on_timeout_now_delivered(std::size_t from) {
  if (!net_.chaos() || !w_.rng.chance(0.5)) return;
  Links links = net_.links_of_node(from, false, true);
  net_.cut(links);
  w_.trace(traced::OneWayCut{from, traced::OneWay::after_timeout_now});
  revert_after(std::move(links), Undo::cut, w_.rng.range(300 * kMillis, 2 * kSeconds));
}

// ---------------------------------------------------------------------------
// Faults

void Nemesis::inject_fault() {
  std::vector<Fault> enabled;
  for (std::size_t k = 0; k < kFaultKinds; ++k)
    if ((w_.config.faults >> k) & 1u) enabled.push_back(static_cast<Fault>(k));
  if (enabled.empty()) return;
  const Fault f = enabled[w_.rng.below(enabled.size())];
  ++w_.stats.faults[static_cast<std::size_t>(f)];
  const Time duration = w_.rng.range(200 * kMillis, 4 * kSeconds);
  const auto lead = cluster_.leader();
  // A node to hurt: the leader half the time, since that is where it counts.
  const std::size_t victim = lead && w_.rng.chance(0.5) ? *lead : w_.rng.below(cluster_.size());
  switch (f) {
    case Fault::loss:
    case Fault::duplicate:
    case Fault::reorder:
    case Fault::hold: w_.trace(link_fault(f, victim, duration)); return;
    case Fault::partition: w_.trace(partition(victim, duration)); return;
    case Fault::oneway: w_.trace(oneway(victim, duration)); return;
    case Fault::crash: w_.trace(crash(victim)); return;
    case Fault::disk: w_.trace(disk(victim)); return;
    case Fault::stall: w_.trace(stall(victim)); return;
    case Fault::drift: w_.trace(drift(victim, duration)); return;
    case Fault::membership:
      w_.trace(traced::FaultDrawn{f, victim});
      change_membership();
      return;
    case Fault::wipe: wipe(victim); return;
    case Fault::transfer: transfer(victim); return;
  }
}

TraceEvent Nemesis::link_fault(Fault f, std::size_t victim, Time duration) {
  Links links = w_.rng.chance(0.5) ? net_.all_links() : net_.links_of_node(victim, true, true);
  const double p = f == Fault::loss   ? 0.05 + 0.45 * w_.rng.unit()
                   : f == Fault::hold ? 0.02 + 0.18 * w_.rng.unit()
                                      : 0.05 + 0.25 * w_.rng.unit();
  const LinkFaultKind kind = f == Fault::loss        ? LinkFaultKind::loss
                             : f == Fault::duplicate ? LinkFaultKind::duplicate
                             : f == Fault::hold      ? LinkFaultKind::hold
                                                     : LinkFaultKind::spike;
  const Undo undo = f == Fault::loss        ? Undo::loss
                    : f == Fault::duplicate ? Undo::duplicate
                    : f == Fault::hold      ? Undo::hold
                                            : Undo::spike;
  net_.set_fault(kind, links, p);
  const traced::LinkFault te{f, victim, static_cast<std::uint64_t>(p * 100), links.size()};
  revert_after(std::move(links), undo, duration);
  return te;
}

// One side: the victim alone, or a random minority including it. A third
// of the time the partition is partial: only the link between the victim
// and one other node fails, both ways, and every other node still hears
// both. When the victim leads on a lease seed, another voter then reboots
// one to two election timeouts later, quickly: it forgets the leader it
// acknowledged, while the node cut off from that leader keeps asking for
// votes, inside the leader's lease (hole E).
TraceEvent Nemesis::partition(std::size_t victim, Time duration) {
  const std::size_t n = cluster_.size();
  Links links;
  if (n > 1 && w_.rng.below(3) == 0) {
    const std::size_t other = (victim + 1 + w_.rng.below(n - 1)) % n;
    links = {{victim, other}, {other, victim}};
    if (w_.profile.lease_reads && cluster_.leader() == victim) {
      std::vector<std::size_t> others;
      for (NodeId v : cluster_.node(victim).raft().membership().voters)
        if (v.value - 1 != victim && v.value - 1 != other) others.push_back(v.value - 1);
      if (!others.empty()) {
        const auto third = static_cast<std::uint32_t>(others[w_.rng.below(others.size())]);
        const Time T = w_.tuning.election_timeout(), reboot = w_.rng.range(T, 2 * T);
        w_.schedule(w_.now + reboot, ev::PowerCut{third, true, cluster_.gen(third)});
        duration = std::max(duration, reboot + 2 * T);  // the link stays down through the reboot
      }
    }
  } else {
    std::vector<bool> side(n, false);
    side[victim] = true;
    if (n > 3 && w_.rng.chance(0.5)) side[(victim + 1 + w_.rng.below(n - 1)) % n] = true;
    for (std::size_t a = 0; a < n; ++a)
      for (std::size_t b = 0; b < n; ++b)
        if (side[a] != side[b]) links.emplace_back(a, b);
  }
  const traced::Partition te{victim, links.size()};
  cut_for(std::move(links), duration);
  return te;
}

TraceEvent Nemesis::oneway(std::size_t victim, Time duration) {
  const auto shape = static_cast<traced::OneWay>(w_.rng.below(4));
  const std::size_t n = cluster_.size();
  Links links;
  switch (shape) {
    case traced::OneWay::next_leader: cut_next_leader_ = duration; return traced::OneWayCut{victim, shape};
    case traced::OneWay::unheard: links = net_.links_of_node(victim, true, false); break;
    case traced::OneWay::deaf: links = net_.links_of_node(victim, false, true); break;
    case traced::OneWay::one_link:
      if (n > 1) links.emplace_back(victim, (victim + 1 + w_.rng.below(n - 1)) % n);
      break;
    case traced::OneWay::after_timeout_now: break;  // not drawn here
  }
  cut_for(std::move(links), duration);
  return traced::OneWayCut{victim, shape};
}

TraceEvent Nemesis::crash(std::size_t victim) {
  const std::uint64_t roll = w_.rng.below(12);
  if (roll < 4) {
    cluster_.crash(victim, false);
  } else if (roll >= 10) {
    cluster_.stop(victim);  // Node::stop(): callers answered, then restart
  } else if (roll < 8) {
    cluster_.node(victim).power_cut_armed = true;  // dies during its next sync
  } else {
    // Several nodes at once, each at its next sync: durability across a
    // majority is what a cluster-wide power cut tests.
    for (std::size_t n = 0; n < cluster_.size(); ++n)
      if (w_.rng.chance(0.7)) cluster_.node(n).power_cut_armed = true;
  }
  return traced::CrashFault{victim, roll};
}

TraceEvent Nemesis::disk(std::size_t victim) {
  const auto shape = static_cast<traced::DiskFault>(w_.rng.below(4));
  SimNode& nd = cluster_.node(victim);
  switch (shape) {
    case traced::DiskFault::fail_write: nd.store.fail_next_write(); break;
    case traced::DiskFault::fail_sync: nd.store.fail_next_sync(); break;
    case traced::DiskFault::slow_sync: nd.slow_next_sync = true; break;  // the leader must step down, not hold the cluster
    case traced::DiskFault::full:  // it must refuse, step down and resume, never ack what it did not write
      nd.disk_full_until = std::max(nd.disk_full_until, w_.now + w_.rng.range(100 * kMillis, 3 * kSeconds));
      break;
  }
  return traced::Disk{victim, shape};
}

// The node's thread is busy (a long apply, a snapshot capture, a loaded
// machine): it handles nothing for a while, its clock runs on. Half the
// time its network is gone for as long (a frozen VM): what the others send
// meanwhile is lost, not queued.
TraceEvent Nemesis::stall(std::size_t victim) {
  SimNode& nd = cluster_.node(victim);
  const Time len = w_.rng.range(50 * kMillis, 3 * kSeconds);
  nd.stalled_until = std::max(nd.stalled_until, w_.now + len);
  std::size_t cut = 0;
  if (w_.rng.chance(0.5)) {
    Links links = net_.links_of_node(victim, true, true);
    cut = links.size();
    cut_for(std::move(links), len);
  }
  return traced::Stall{victim, len / kMillis, cut};
}

// With lease reads the clocks must keep their promise (rates within the
// configured bound, see ProtocolOptions::lease_reads); without, anything goes.
TraceEvent Nemesis::drift(std::size_t victim, Time duration) {
  const double rate = w_.profile.lease_reads ? 1.0 + w_.profile.max_drift * (2 * w_.rng.unit() - 1)
                                             : 0.7 + 0.7 * w_.rng.unit();
  cluster_.set_clock_rate(victim, rate);
  revert_after({{victim, victim}}, Undo::clock_rate, duration);
  return traced::Drift{victim, static_cast<std::uint64_t>(rate * 100)};
}

// Only a node the others can elect a leader without: a node that lost its
// disk does not vote until it is caught up, so a cluster that needs its
// vote stays without a leader (as it must: nobody can tell what it had).
// Several nodes may be recovering at once.
void Nemesis::wipe(std::size_t victim) {
  w_.trace(traced::FaultDrawn{Fault::wipe, victim});
  core::Ballots votes;
  for (std::size_t k = 0; k < cluster_.size(); ++k)
    votes[NodeId{k + 1}] = core::Ballot{k != victim && !cluster_.node(k).lost_disk,
                                        cluster_.node(k).store.durable().hard_state().incarnation};
  if (core::quorum_vote(cluster_.newest_membership(), votes) != core::VoteResult::won) return;
  // Nor while a change is in flight anywhere: the next configuration counts
  // too (a joint configuration whose new half needs the wiped node could
  // never complete).
  if (cluster_.membership_in_flight()) return;
  cluster_.wipe(victim);
}

void Nemesis::transfer(std::size_t victim) {
  const auto lead = cluster_.leader();
  const std::size_t n = cluster_.size();
  if (!lead || n < 2) {
    w_.trace(traced::FaultDrawn{Fault::transfer, victim});
    return;
  }
  const std::size_t to = (*lead + 1 + w_.rng.below(n - 1)) % n;
  const std::uint64_t id = callers_.track(RequestKind::transfer, *lead);
  cluster_.node(*lead).driver->transfer(NodeId{to + 1}, [this, id](std::error_code ec) { callers_.completed(id, ec); },
                                        cluster_.driver_now(*lead));
  w_.trace(traced::Transfer{victim, to});
  cluster_.after_step(*lead);
}

// The leader grows or shrinks the cluster: adds a node that is not a member
// (a spare, or one removed earlier), removes a member (the leader itself a
// quarter of the time), or swaps a learner in or out. One change at a time;
// a refusal (busy, not leader) is an answer like any other.
void Nemesis::change_membership() {
  const auto lead = cluster_.leader();
  if (!lead) return;
  runtime::Driver& d = *cluster_.node(*lead).driver;
  const Membership& m = cluster_.node(*lead).raft().membership();
  std::vector<std::size_t> outside, members;
  for (std::size_t k = 0; k < cluster_.size(); ++k) (core::is_member(m, NodeId{k + 1}) ? members : outside).push_back(k);
  // Operators do not shrink a cluster while one of its nodes is recovering
  // from a lost disk (the library refuses what it can see, but a node that
  // just went down still looks reachable): only additions then.
  bool recovering = false;
  for (std::size_t k = 0; k < cluster_.size(); ++k) recovering = recovering || cluster_.node(k).lost_disk;
  if (recovering && outside.empty()) return;
  const std::uint64_t id = callers_.track(RequestKind::membership, *lead);
  auto done = [this, id](std::error_code ec) { callers_.completed(id, ec); };
  const auto now = cluster_.driver_now(*lead);
  const std::uint64_t roll = recovering ? w_.rng.below(4) : w_.rng.below(8);
  auto address = [](std::size_t k) { return fmt::format("sim:{}", k + 1); };
  if (!outside.empty() && (roll < 3 || m.voters.size() <= 1)) {
    const std::size_t k = outside[w_.rng.below(outside.size())];
    w_.trace(traced::MembershipChange{*lead, roll, k});
    d.add_server(NodeId{k + 1}, address(k), done, now);
  } else if (!outside.empty() && roll == 3) {
    const std::size_t k = outside[w_.rng.below(outside.size())];
    Membership target = m;
    target.learners.push_back(NodeId{k + 1});
    target.addresses[NodeId{k + 1}] = address(k);
    w_.trace(traced::MembershipChange{*lead, roll, k});
    d.change_membership(target, done, now);
  } else if (!outside.empty() && roll == 4) {
    // Replace a member: add the new server and, as an impatient operator
    // would, ask at once to remove the old one (refused while the first
    // change is in flight, unless overlapping changes are let through).
    const std::size_t k = outside[w_.rng.below(outside.size())];
    const std::size_t old = members[w_.rng.below(members.size())];
    w_.trace(traced::MembershipChange{*lead, roll, k});
    d.add_server(NodeId{k + 1}, address(k), done, now);
    const std::uint64_t id2 = callers_.track(RequestKind::membership, *lead);
    d.remove_server(NodeId{old + 1}, [this, id2](std::error_code ec) { callers_.completed(id2, ec); }, now);
  } else {
    const std::size_t k = roll == 7 ? *lead : members[w_.rng.below(members.size())];
    w_.trace(traced::MembershipChange{*lead, roll, k});
    d.remove_server(NodeId{k + 1}, done, now);
  }
  cluster_.after_step(*lead);
}

}  // namespace raftkit::sim

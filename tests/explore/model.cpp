// explore/model.cpp — events, the Ready cycle, and the invariants (model.hpp).
#include "explore/model.hpp"

#include <algorithm>
#include <functional>
#include <tuple>

#include <fmt/format.h>

#include "core/membership.hpp"
#include "explore/hash.hpp"
#include "raftkit/error.hpp"

namespace raftkit::explore {

// Reads whatever disk image the Model points it at (model.hpp: every Raft of
// one node reads through the same proxy). The core never writes a store.
class ProxyStore final : public LogStore {
 public:
  const storage::LogImage* image = nullptr;

  HardState hard_state() const override { return image->hs; }
  SnapshotMeta snapshot_meta() const override { return image->snap; }
  Index first_index() const override { return image->offset() + 1; }
  Index last_index() const override { return image->last(); }
  std::optional<Term> term(Index i) const override { return image->term(i); }
  std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const override {
    return image->entries(lo, hi, max_bytes, out);
  }
  std::error_code append(std::span<const Entry>) override { return errc::invalid_argument; }
  std::error_code save_hard_state(const HardState&) override { return errc::invalid_argument; }
  std::error_code install_snapshot(const SnapshotMeta&) override { return errc::invalid_argument; }
  std::error_code sync() override { return {}; }
  bool performs_io() const override { return false; }
};

namespace {

NodeId id_of(int k) { return NodeId{static_cast<std::uint64_t>(k + 1)}; }

bool is_change(EventKind k) { return k == EventKind::add || k == EventKind::remove || k == EventKind::demote; }

void add_image(Hasher& h, const storage::LogImage& im) {
  add_hard_state(h, im.hs);
  h.add(im.snap.index.value);
  h.add(im.snap.term.value);
  h.add(im.log.size());
  for (std::size_t i = 1; i < im.log.size(); ++i) add_entry(h, im.log[i]);
}

// What a LogStore does with a Ready (memory_store.cpp's rules), on an image.
void write_ready(storage::LogImage& im, const core::Ready& rd) {
  if (rd.snapshot) {
    const SnapshotMeta& meta = *rd.snapshot;
    if (!(meta.index <= im.snap.index && im.snap.index != Index{0})) im.install(meta, im.agrees(meta));
  }
  if (!rd.entries.empty()) {
    if (!im.fits(rd.entries.front().index)) {
      std::fputs("raftkit-explore: a Ready's entries do not fit the store\n", stderr);
      std::abort();
    }
    im.append(rd.entries.begin(), rd.entries.end());
  }
  if (rd.hard_state) im.hs = *rd.hard_state;
}

// The writes a Ready makes, in the order runtime::Driver makes them (a crash
// keeps a prefix): the snapshot; the hard state with its commit capped at
// what the store already settles (so no prefix holds entries of a term the
// node has not recorded, nor a commit naming entries it does not hold);
// the entries; the full commit.
std::vector<std::function<void(storage::LogImage&)>> ready_writes(const storage::LogImage& before,
                                                                  const core::Ready& rd) {
  std::vector<std::function<void(storage::LogImage&)>> out;
  if (rd.snapshot) {
    out.push_back([meta = *rd.snapshot](storage::LogImage& im) {
      if (!(meta.index <= im.snap.index && im.snap.index != Index{0})) im.install(meta, im.agrees(meta));
    });
  }
  std::optional<HardState> commit_after;
  if (rd.hard_state) {
    HardState first = *rd.hard_state;
    const Index settled = rd.entries.empty() ? before.last() : rd.entries.front().index - 1;
    if (first.commit > settled) {
      commit_after = first;
      first.commit = std::max(before.hs.commit, settled);
    }
    out.push_back([first](storage::LogImage& im) { im.hs = first; });
  }
  if (!rd.entries.empty()) {
    out.push_back([entries = rd.entries](storage::LogImage& im) { im.append(entries.begin(), entries.end()); });
  }
  if (commit_after) out.push_back([hs = *commit_after](storage::LogImage& im) { im.hs = hs; });
  return out;
}

std::vector<Entry> whole_log(const core::Raft& r) {
  std::vector<Entry> out;
  (void)r.log().slice(r.log().first_index(), r.last_index() + 1, ~std::size_t{0}, out);
  return out;
}

}  // namespace

std::string_view to_string(EventKind k) {
  switch (k) {
    case EventKind::deliver: return "deliver";
    case EventKind::drop: return "drop";
    case EventKind::duplicate: return "duplicate";
    case EventKind::timeout: return "timeout";
    case EventKind::tick: return "tick";
    case EventKind::sync: return "sync";
    case EventKind::crash: return "crash";
    case EventKind::wipe: return "wipe";
    case EventKind::propose: return "propose";
    case EventKind::read: return "read";
    case EventKind::add: return "add";
    case EventKind::remove: return "remove";
    case EventKind::demote: return "demote";
    case EventKind::transfer: return "transfer";
  }
  return "?";
}

std::uint64_t Ghost::hash() const {
  Hasher h;
  for (const auto& [term, node] : leaders) h.add(term << 8 | node);
  h.add(votes.size());
  for (const Vote& v : votes) {
    h.add(std::uint64_t{v.node} << 32 | v.generation);
    h.add(v.term << 8 | v.candidate);
  }
  h.add(committed.size());
  for (const Committed& c : committed) {
    h.add(c.term);
    h.add(c.payload);
    h.add(c.known_in);
  }
  h.add(applied.size());
  for (const Committed& c : applied) h.add(c.term ^ c.payload);
  for (std::uint64_t d : durable_commit) h.add(d);
  for (const Dead& d : dead) {
    h.add(std::uint64_t{d.node} << 32 ^ d.incarnation);
    for (std::uint64_t t : d.terms) h.add(t);
  }
  for (const Read& r : reads) {
    h.add(r.context);
    h.add(r.node);
    h.add(r.must_see);
  }
  return h.done();
}

std::string Config::to_args() const {
  std::string s = fmt::format(
      "--nodes {} --spares {} --depth {} --crashes {} --wipes {} --drops {} --dups {} --proposals {} --reads {} "
      "--changes {} --transfers {} --timeouts {} --ticks {} --election-ticks {} --heartbeat-ticks {} "
      "--max-append-entries {}",
      nodes, spares, depth, crashes, wipes, drops, dups, proposals, reads, changes, transfers, timeouts, ticks,
      election_ticks, heartbeat_ticks, max_append_entries);
  if (pre_vote) s += " --pre-vote";
  if (check_quorum) s += " --check-quorum";
  if (lease) s += " --lease";
  if (batch) s += " --batch";
  if (!sync_events) s += " --no-sync-events";
  if (tick_runs) s += " --tick-runs";
  if (demotions) s += " --demotions";
  if (max_in_flight != 0) s += fmt::format(" --max-in-flight {}", max_in_flight);
  return s;
}

Model::Model(const Config& config)
    : config_(config), sync_events_(config.sync_events && (config.crashes > 0 || config.wipes > 0)) {
  if (config_.lease) config_.check_quorum = true;
  for (int k = 0; k < config_.total_nodes(); ++k) proxies_.push_back(std::make_unique<ProxyStore>());
  for (int k = 0; k < config_.nodes; ++k) initial_voters_.push_back(id_of(k));
}

Model::~Model() = default;

ProtocolOptions Model::options_for(int k, std::uint32_t life, bool bootstrap) const {
  ProtocolOptions o;
  o.id = id_of(k);
  o.initial_voters = initial_voters_;
  o.bootstrap = bootstrap;
  o.election_ticks = config_.election_ticks;
  o.heartbeat_ticks = config_.heartbeat_ticks;
  o.pre_vote = config_.pre_vote;
  o.check_quorum = config_.check_quorum;
  o.lease_reads = config_.lease;
  o.lease_margin_ticks = 1;
  o.max_entries_per_append = config_.max_append_entries;
  o.batch_appends = config_.batch;
  set_identity(o, life);
  o.seed = 1;
  return o;
}

void Model::bind(const Node& n, int k) const { proxies_[static_cast<std::size_t>(k)]->image = &n.disk.written; }

void Model::start(Node& n, int k, bool bootstrap) {
  ++n.life;
  n.outstanding.reset();
  n.disk.written = n.disk.synced();
  bind(n, k);
  n.raft.reset();
  // A node with no disk yet restarts as what it was: a member of the
  // initial cluster bootstraps, a spare or a wiped node waits for a leader.
  n.raft.emplace(options_for(k, n.life | n.generation << 16, bootstrap), *proxies_[static_cast<std::size_t>(k)]);
#ifdef RAFTKIT_PLANTED_BUGS
  n.raft->plant_bugs(config_.bugs);
#endif
}

State Model::initial() {
  State s;
  s.left = {config_.crashes,   config_.wipes,     config_.drops,    config_.dups,     config_.proposals,
            config_.reads,     config_.changes,   config_.transfers, config_.timeouts, config_.ticks};
  auto g = std::make_shared<Ghost>();
  g->durable_commit.assign(static_cast<std::size_t>(config_.total_nodes()), 0);
  s.ghost = std::move(g);
  for (int k = 0; k < config_.total_nodes(); ++k) {
    auto n = std::make_shared<Node>();
    start(*n, k, k < config_.nodes);
    s.nodes.push_back(std::move(n));
  }
  fresh_.assign(s.nodes.size(), nullptr);
  fresh_ghost_ = nullptr;
  seal(s);
  return s;
}

Ghost& Model::ghost(State& s) {
  if (!fresh_ghost_) {
    fresh_ghost_ = std::make_shared<Ghost>(*s.ghost);
    s.ghost = fresh_ghost_;
  }
  return *fresh_ghost_;
}

Node& Model::own(State& s, int k) {
  auto& slot = fresh_[static_cast<std::size_t>(k)];
  if (!slot) {
    slot = std::make_shared<Node>(*s.nodes[static_cast<std::size_t>(k)]);
    s.nodes[static_cast<std::size_t>(k)] = slot;
  }
  bind(*slot, k);
  return *slot;
}

void Model::send(State& s, const Message& m, std::optional<Violation>& bad) {
  // A vote is cast when it leaves the node: a granted vote, or a vote
  // request (the candidate's vote for itself). One per term per disk.
  const bool grant = m.type == MessageType::vote_response && !m.reject;
  if (grant || m.type == MessageType::vote) {
    const auto voter = static_cast<std::uint32_t>(m.from.value);
    const auto candidate = static_cast<std::uint32_t>(grant ? m.to.value : m.from.value);
    const std::uint32_t gen = s.nodes[voter - 1]->generation;
    bool known = false;
    for (const Ghost::Vote& v : s.ghost->votes) {
      if (v.node != voter || v.generation != gen || v.term != m.term.value) continue;
      known = true;
      if (v.candidate != candidate && !bad)
        bad = Violation{"one vote per term",
                        fmt::format("n{} voted for n{} and for n{} in term {}", voter, v.candidate, candidate, m.term)};
    }
    if (!known) {
      // Kept sorted: the order votes were cast in is not part of the state.
      auto& votes = ghost(s).votes;
      const Ghost::Vote v{voter, gen, m.term.value, candidate};
      auto key = [](const Ghost::Vote& x) { return std::tuple(x.node, x.generation, x.term); };
      votes.insert(std::upper_bound(votes.begin(), votes.end(), v,
                                    [&](const Ghost::Vote& x, const Ghost::Vote& y) { return key(x) < key(y); }),
                   v);
    }
  }
  auto msg = std::make_shared<Msg>();
  msg->m = m;
  msg->hash = message_hash(m);
  auto at = std::lower_bound(s.msgs.begin(), s.msgs.end(), msg->hash,
                             [](const MsgPtr& p, std::uint64_t h) { return p->hash < h; });
  s.msgs.insert(at, std::move(msg));
}

void Model::check_apply(State& s, int k, const Entry& e, std::optional<Violation>& bad) {
  const std::size_t i = e.index.value - 1;
  const std::uint64_t ph = payload_hash(e.payload) ^ static_cast<std::uint64_t>(e.type);
  const auto& applied = s.ghost->applied;
  if (applied.size() <= i || applied[i].term == 0) {
    auto& a = ghost(s).applied;
    if (a.size() <= i) a.resize(i + 1, Ghost::Committed{0, 0, 0});
    a[i] = {e.term.value, ph, 0};
  } else if (!bad && (applied[i].term != e.term.value || applied[i].payload != ph)) {
    bad = Violation{"state machine safety",
                    fmt::format("n{} applied {}/term {} where another node applied term {}", k + 1, e.index, e.term,
                                applied[i].term)};
  }
}

void Model::complete(State& s, int k, Node& n, const core::Ready& rd, std::optional<Violation>& bad) {
  if (rd.must_sync()) {
    n.disk.synced_image = std::make_shared<const storage::LogImage>(n.disk.written);
    const std::uint64_t durable = s.ghost->durable_commit[static_cast<std::size_t>(k)];
    if (n.disk.synced().hs.commit.value < durable && !bad)
      bad = Violation{"commit never goes back",
                      fmt::format("n{} synced commit {} after having synced {}", k + 1, n.disk.synced().hs.commit, durable)};
    if (n.disk.synced().hs.commit.value > durable)
      ghost(s).durable_commit[static_cast<std::size_t>(k)] = n.disk.synced().hs.commit.value;
  }
  for (const Message& m : rd.persisted_messages) send(s, m, bad);
  for (const Entry& e : rd.committed_entries) check_apply(s, k, e, bad);
  for (const core::ReadState& r : rd.read_states) {
    auto& reads = ghost(s).reads;
    auto it = std::find_if(reads.begin(), reads.end(), [&](const Ghost::Read& g) { return g.context == r.context; });
    if (it == reads.end()) continue;
    if (r.index.value < it->must_see && !bad)
      bad = Violation{"stale read", fmt::format("n{} served read {} at index {}, but index {} was committed before it began",
                                                k + 1, r.context, r.index, it->must_see)};
    reads.erase(it);
  }
  for (const core::FailedRead& f : rd.failed_reads)
    std::erase_if(ghost(s).reads, [&](const Ghost::Read& g) { return g.context == f.context; });
  check_commit_quorum(s, k, bad);
  n.raft->advance(rd);
}

void Model::settle(State& s, int k, std::optional<Violation>& bad) {
  Node& n = own(s, k);
  core::Raft& r = *n.raft;
  for (;;) {
    if (n.outstanding) {
      for (const Message& m : r.take_messages()) send(s, m, bad);
      return;
    }
    if (!r.has_ready()) return;
    core::Ready rd = r.ready();
    write_ready(n.disk.written, rd);
    for (const Message& m : rd.messages) send(s, m, bad);
    if (sync_events_ && (s.left.crashes > 0 || s.left.wipes > 0) && rd.must_sync()) {
      n.outstanding = std::move(rd);
      return;
    }
    complete(s, k, n, rd, bad);
  }
}

// A leader commits by counting: when its commit index rises, the entry
// there is on the synced disks of a quorum of the voters its configuration
// counts (each in the incarnation it names). The configuration is the one
// the count used: this runs before every advance (where committed
// configurations take effect) and after every event.
void Model::check_commit_quorum(State& s, int k, std::optional<Violation>& bad) {
  if (bad) return;
  Node& n = own(s, k);
  const core::Raft& r = *n.raft;
  if (r.commit_index() <= n.quorum_checked) return;
  if (r.role() != core::Role::leader) {  // learned from a leader, not counted here
    n.quorum_checked = r.commit_index();
    return;
  }
  fp_.flags |= Footprint::reads_disks;
  const Index top = r.commit_index();
  const Term term = *r.log().term(top);
  const Membership& m = r.membership();
  auto holders = [&](bool outgoing) {
    const auto& voters = outgoing ? m.voters_outgoing : m.voters;
    std::size_t held = 0;
    for (NodeId v : voters) {
      const std::size_t j = v.value - 1;
      if (j >= s.nodes.size()) continue;
      if (counted_in(m, v, outgoing, *s.nodes[j]->raft)) {
        if (s.nodes[j]->disk.synced().term(top) == term) ++held;
        continue;
      }
      // The incarnation counted is gone (wiped): it holds what it held.
      for (const Ghost::Dead& d : s.ghost->dead)
        if (d.node == j && counted_incarnation(m, v, outgoing) == d.incarnation && top.value >= 1 &&
            top.value <= d.terms.size() && d.terms[top.value - 1] == term.value)
          ++held;
    }
    return voters.empty() || held >= voters.size() / 2 + 1;
  };
  if (!holders(false) || !holders(true)) {
    bad = Violation{"committed on a quorum",
                    fmt::format("n{} committed {}/term {}, which the synced logs of a quorum of {} do not hold", k + 1,
                                top, term, core::describe(m))};
    return;
  }
  n.quorum_checked = top;
}

void Model::check(State& s, int k, std::optional<Violation>& bad) {
  if (bad) return;
  Node& n = own(s, k);
  const core::Raft& r = *n.raft;
  auto entry = [](const core::Raft& of, Index i) {
    std::vector<Entry> one;
    (void)of.log().slice(i, i + 1, ~std::size_t{0}, one);
    return one.empty() ? Entry{} : one.front();
  };
  auto fingerprint = [](const Entry& e) { return payload_hash(e.payload) ^ static_cast<std::uint64_t>(e.type); };
  // Every entry this node counts as committed is the one committed there.
  for (Index i = n.checked_commit + 1; i <= r.commit_index(); ++i) {
    if (i < r.log().first_index()) continue;
    const Entry e = entry(r, i);
    const std::uint64_t ph = fingerprint(e);
    const auto& committed = s.ghost->committed;
    if (committed.size() >= i.value && committed[i.value - 1].term != 0) {
      const Ghost::Committed& c = committed[i.value - 1];
      if (c.term != e.term.value || c.payload != ph) {
        bad = Violation{"state machine safety", fmt::format("n{} committed {}/term {} where term {} was committed",
                                                            k + 1, i, e.term, c.term)};
        return;
      }
      if (c.known_in > r.term().value) {
        ghost(s).committed[i.value - 1].known_in = r.term().value;
        fp_.flags |= Footprint::writes_committed;
      }
      continue;
    }
    auto& c = ghost(s).committed;
    if (c.size() < i.value) c.resize(i.value, Ghost::Committed{0, 0, ~std::uint64_t{0}});
    c[i.value - 1] = {e.term.value, ph, r.term().value};
    fp_.flags |= Footprint::writes_committed;
  }
  check_commit_quorum(s, k, bad);
  if (bad) return;
  n.checked_commit = std::max(n.checked_commit, r.commit_index());

  if (r.role() == core::Role::leader) {
    const auto& leaders = s.ghost->leaders;
    auto it = std::find_if(leaders.begin(), leaders.end(), [&](const auto& p) { return p.first == r.term().value; });
    if (it != leaders.end() && it->second != static_cast<std::uint32_t>(k + 1)) {
      bad = Violation{"election safety", fmt::format("n{} and n{} both lead term {}", it->second, k + 1, r.term())};
      return;
    }
    if (it == leaders.end()) {
      auto& l = ghost(s).leaders;
      l.emplace_back(r.term().value, static_cast<std::uint32_t>(k + 1));
      std::sort(l.begin(), l.end());
      fp_.flags |= Footprint::reads_committed;
      // Leader completeness: it holds every entry committed before its term.
      const auto& committed = s.ghost->committed;
      for (std::size_t i = 0; i < committed.size(); ++i) {
        const Ghost::Committed& c = committed[i];
        if (c.term == 0 || c.known_in >= r.term().value) continue;
        const auto t = r.log().term(Index{i + 1});
        if (!t || t->value != c.term || fingerprint(entry(r, Index{i + 1})) != c.payload) {
          bad = Violation{"leader completeness",
                          fmt::format("n{} leads term {} without entry {}/term {}, committed in term {}", k + 1,
                                      r.term(), i + 1, c.term, c.known_in)};
          return;
        }
      }
    }
  }

  // Log matching: where two logs hold an entry of the same term at the same
  // index, they hold the same entries up to there (the terms of the prefix
  // are compared, and the entries at the highest such index).
  for (std::size_t j = 0; j < s.nodes.size(); ++j) {
    if (static_cast<int>(j) == k) continue;
    const Node& o = *s.nodes[j];
    bind(o, static_cast<int>(j));
    const core::Raft& q = *o.raft;
    const Index first = std::max(r.log().first_index(), q.log().first_index());
    Index top{0};
    for (Index i = std::min(r.last_index(), q.last_index()); i >= first && i > Index{0}; i = i - 1) {
      if (r.log().term(i) == q.log().term(i)) {
        top = i;
        break;
      }
    }
    if (top == Index{0}) continue;
    for (Index i = first; i < top; ++i) {
      if (r.log().term(i) != q.log().term(i)) {
        bad = Violation{"log matching", fmt::format("n{} and n{} agree at {}/term {} but differ at {}", k + 1, j + 1,
                                                    top, r.log().term(top)->value, i)};
        return;
      }
    }
    // Below both commit indexes the committed record has compared them already.
    if (top > std::min(r.commit_index(), q.commit_index()) && fingerprint(entry(q, top)) != fingerprint(entry(r, top))) {
      bad = Violation{"log matching", fmt::format("n{} and n{} hold different entries {}/term {}", k + 1, j + 1, top,
                                                  r.log().term(top)->value)};
      return;
    }
  }
  bind(n, k);
}

std::uint64_t Model::node_hash(const Node& n, int k) const {
  bind(n, k);
  Hasher h;
  add_raft(h, *n.raft, config_.timed());
  // The written image is the synced one plus the outstanding Ready's
  // writes (both hashed), so it is not hashed itself.
  add_image(h, n.disk.synced());
  h.add(std::uint64_t{n.life} << 32 | n.generation);
  h.add(n.outstanding.has_value());
  if (n.outstanding) {
    const core::Ready& rd = *n.outstanding;
    if (rd.hard_state) add_hard_state(h, *rd.hard_state);
    for (const Entry& e : rd.entries) add_entry(h, e);
    h.add(rd.persisted_messages.size());
    for (const Message& m : rd.persisted_messages) h.add(message_hash(m));
    h.add(rd.committed_entries.size());
    for (const Entry& e : rd.committed_entries) h.add(e.index.value);
    for (const core::ReadState& r : rd.read_states) h.add(r.context << 20 ^ r.index.value);
    for (const core::FailedRead& f : rd.failed_reads) h.add(f.context);
    h.add(rd.snapshot ? rd.snapshot->index.value + 1 : 0);
  }
  return h.done();
}

void Model::seal(State& s) {
  Hasher h;
  for (std::size_t k = 0; k < s.nodes.size(); ++k) {
    if (fresh_.size() > k && fresh_[k]) {
      fresh_[k]->hash = node_hash(*fresh_[k], static_cast<int>(k));
      fresh_[k] = nullptr;
    } else if (s.nodes[k]->hash == 0) {
      const_cast<Node&>(*s.nodes[k]).hash = node_hash(*s.nodes[k], static_cast<int>(k));
    }
    h.add(s.nodes[k]->hash);
  }
  h.add(s.msgs.size());
  for (const MsgPtr& m : s.msgs) h.add(m->hash);
  const Budgets& b = s.left;
  h.add(static_cast<std::uint64_t>(b.crashes) | static_cast<std::uint64_t>(b.wipes) << 8 |
        static_cast<std::uint64_t>(b.drops) << 16 | static_cast<std::uint64_t>(b.dups) << 24 |
        static_cast<std::uint64_t>(b.proposals) << 32 | static_cast<std::uint64_t>(b.reads) << 40 |
        static_cast<std::uint64_t>(b.changes) << 48 | static_cast<std::uint64_t>(b.transfers) << 56);
  h.add(static_cast<std::uint64_t>(b.timeouts) | static_cast<std::uint64_t>(b.ticks) << 8);
  if (fresh_ghost_) {
    fresh_ghost_->sealed_hash = fresh_ghost_->hash();
    fresh_ghost_ = nullptr;
  }
  h.add(s.ghost->sealed_hash);
  s.hash = h.done();
}

void Model::enabled(const State& s, std::vector<Event>& out) const {
  out.clear();
  if (config_.max_in_flight != 0 && s.msgs.size() > config_.max_in_flight) return;
  const Budgets& b = s.left;
  for (std::size_t i = 0; i < s.msgs.size(); ++i) {
    if (i > 0 && s.msgs[i]->hash == s.msgs[i - 1]->hash) continue;  // the same message again
    const std::uint64_t h = s.msgs[i]->hash;
    out.push_back({EventKind::deliver, 0, 0, h});
    if (b.drops > 0) out.push_back({EventKind::drop, 0, 0, h});
    if (b.dups > 0) out.push_back({EventKind::duplicate, 0, 0, h});
  }
  if (config_.timed())
    for (int run = 1; run <= (config_.tick_runs ? b.ticks : std::min(b.ticks, 1)); ++run)
      out.push_back({EventKind::tick, 0, static_cast<std::uint8_t>(run - 1), 0});
  for (int k = 0; k < static_cast<int>(s.nodes.size()); ++k) {
    const Node& n = *s.nodes[static_cast<std::size_t>(k)];
    bind(n, k);
    const core::Raft& r = *n.raft;
    const auto node = static_cast<std::uint8_t>(k);
    const bool leader = r.role() == core::Role::leader;
    const bool may_campaign = may_campaign_now(r);
    if (b.timeouts > 0 && !leader && core::is_voter(r.membership(), r.id()) && may_campaign &&
        (!config_.timed() || election_elapsed(r) >= config_.election_ticks))
      out.push_back({EventKind::timeout, node, 0, 0});
    if (!config_.timed() && leader && b.ticks > 0) out.push_back({EventKind::tick, node, 0, 0});
    if (n.outstanding) out.push_back({EventKind::sync, node, 0, 0});
    const bool has_disk = n.disk.written.hs != HardState{} || n.disk.written.last() > Index{0};
    if (b.crashes > 0 && has_disk) {
      out.push_back({EventKind::crash, node, 0, 0});
      // A crash in the middle of the write in flight keeps a prefix of it
      // (keeping all of it is a sync, then a crash).
      if (n.outstanding) {
        const std::size_t writes = ready_writes(n.disk.synced(), *n.outstanding).size();
        for (std::size_t kept = 1; kept < writes; ++kept)
          out.push_back({EventKind::crash, node, static_cast<std::uint8_t>(kept), 0});
      }
    }
    if (b.wipes > 0 && (n.disk.synced().hs != HardState{} || n.disk.synced().last() > Index{0}))
      out.push_back({EventKind::wipe, node, 0, 0});
    if (leader && b.proposals > 0) out.push_back({EventKind::propose, node, 0, 0});
    if (b.reads > 0 && (leader || !r.leader().is_none())) out.push_back({EventKind::read, node, 0, 0});
    if (leader && b.changes > 0 && !r.membership_change_pending()) {
      for (int j = 0; j < static_cast<int>(s.nodes.size()); ++j) {
        const NodeId id = id_of(j);
        if (!core::is_member(r.membership(), id)) out.push_back({EventKind::add, node, static_cast<std::uint8_t>(j), 0});
        else if (core::is_voter(r.membership(), id) && r.membership().voters.size() > 1) {
          out.push_back({EventKind::remove, node, static_cast<std::uint8_t>(j), 0});
          if (config_.demotions) out.push_back({EventKind::demote, node, static_cast<std::uint8_t>(j), 0});
        }
      }
    }
    if (leader && b.transfers > 0) {
      for (int j = 0; j < static_cast<int>(s.nodes.size()); ++j)
        if (j != k && core::is_voter(r.membership(), id_of(j)))
          out.push_back({EventKind::transfer, node, static_cast<std::uint8_t>(j), 0});
    }
  }
}

// Messages whose delivery would change nothing are dropped at once, so that
// states differing only by such a message are one state (delivering it is
// then the same as dropping it). Two kinds:
//  - below the receiver's term: ignored on delivery, except an append, a
//    heartbeat or a pre-vote, which are answered with the newer term. The
//    receiver's term never falls below its synced term (while no wipe is
//    left) nor below its current term (while no crash is left either);
//  - a vote answer of the receiver's own term when it is no longer
//    campaigning: a follower ignores it; a leader only notes the sender as
//    heard from (if it is the incarnation it tracks), which nothing reads in
//    an untimed search without transfers or membership changes left. With a crash left a candidate
//    could come back to the term (its requests were synced), so not then.
void Model::collect_garbage(State& s) const {
  if (s.left.wipes > 0) return;
  const bool monotone = s.left.crashes == 0;
  const bool heard_unread = !config_.timed() && s.left.transfers == 0 && s.left.changes == 0;
  std::erase_if(s.msgs, [&](const MsgPtr& p) {
    const Message& m = p->m;
    const std::size_t to = m.to.value - 1;
    if (to >= s.nodes.size()) return false;
    const Node& n = *s.nodes[to];
    bind(n, static_cast<int>(to));
    const Term term = monotone ? n.raft->term() : n.disk.synced().hs.term;
    if (m.term < term)
      return m.type != MessageType::append && m.type != MessageType::heartbeat && m.type != MessageType::pre_vote;
    if (monotone && m.type == MessageType::vote_response && m.term == n.raft->term()) {
      const core::Role role = n.raft->role();
      if (role == core::Role::follower) return true;
      // A leader hearing another incarnation of the sender restarts its progress: not inert.
      const core::Progress* pr = n.raft->progress().find(m.from);
      return role == core::Role::leader && heard_unread && pr && same_incarnation(*pr, m);
    }
    return false;
  });
}

// What an event touches, as far as the event alone says (apply adds what
// stepping the node shows: the ghost's committed record, the disks read).
Footprint Model::first_footprint(const State& s, const Event& e) const {
  Footprint fp{e.node, 0, 0};
  if (e.kind != EventKind::deliver && e.kind != EventKind::sync)
    fp.budget = static_cast<std::uint8_t>(1 + static_cast<int>(is_change(e.kind) ? EventKind::add : e.kind));
  if (e.kind == EventKind::read) fp.flags |= Footprint::reads_committed;
  if (e.kind == EventKind::crash || e.kind == EventKind::wipe) fp.flags |= Footprint::disk_changed;
  // The last crash or wipe completes every write in flight and changes
  // what the garbage collection drops, as does the last change or transfer
  // (collect_garbage: nothing while a wipe is left; by the synced term
  // while a crash is left; a leader's vote answers once neither a change
  // nor a transfer is left, untimed).
  const Budgets& b = s.left;
  const bool gc_on = b.wipes == 0, untimed_gc = gc_on && !config_.timed();
  if ((e.kind == EventKind::crash && b.crashes == 1 && b.wipes == 0) || (e.kind == EventKind::wipe && b.wipes == 1) ||
      (is_change(e.kind) && b.changes == 1 && b.transfers == 0 && untimed_gc) ||
      (e.kind == EventKind::transfer && b.transfers == 1 && b.changes == 0 && untimed_gc))
    fp.flags |= Footprint::global;
  if (e.kind == EventKind::tick && config_.timed()) fp.flags |= Footprint::global;
  return fp;
}

State Model::apply(const State& s, const Event& e, std::optional<Violation>& bad) {
  State t = s;
  fresh_.assign(t.nodes.size(), nullptr);
  fresh_ghost_ = nullptr;
  std::vector<int> touched;
  const int k = e.node;
  fp_ = first_footprint(s, e);
  auto find_msg = [&](std::uint64_t h) {
    return std::lower_bound(t.msgs.begin(), t.msgs.end(), h, [](const MsgPtr& p, std::uint64_t x) { return p->hash < x; });
  };
  switch (e.kind) {
    case EventKind::deliver: {
      auto it = find_msg(e.msg);
      const MsgPtr m = *it;
      t.msgs.erase(it);
      const auto to = static_cast<int>(m->m.to.value) - 1;
      fp_.node = static_cast<std::uint8_t>(to);
      if (to < 0 || to >= static_cast<int>(t.nodes.size())) fp_.flags |= Footprint::global;
      if (to >= 0 && to < static_cast<int>(t.nodes.size())) {
        own(t, to).raft->step(m->m);
        settle(t, to, bad);
        touched.push_back(to);
      }
      break;
    }
    case EventKind::drop:
      fp_.node = static_cast<std::uint8_t>((*find_msg(e.msg))->m.to.value - 1);
      t.msgs.erase(find_msg(e.msg));
      --t.left.drops;
      break;
    case EventKind::duplicate: {
      auto it = find_msg(e.msg);
      fp_.node = static_cast<std::uint8_t>((*it)->m.to.value - 1);
      t.msgs.insert(it, *it);
      --t.left.dups;
      break;
    }
    case EventKind::timeout:
      --t.left.timeouts;
      own(t, k).raft->campaign();
      settle(t, k, bad);
      touched.push_back(k);
      break;
    case EventKind::tick:
      for (int run = 0; run <= e.target; ++run) {
        --t.left.ticks;
        for (int j = 0; j < static_cast<int>(t.nodes.size()); ++j) {
          if (!config_.timed() && j != k) continue;
          own(t, j).raft->tick();
          settle(t, j, bad);
          if (run == 0) touched.push_back(j);
        }
      }
      break;
    case EventKind::sync: {
      Node& n = own(t, k);
      core::Ready rd = std::move(*n.outstanding);
      n.outstanding.reset();
      complete(t, k, n, rd, bad);
      settle(t, k, bad);
      touched.push_back(k);
      break;
    }
    case EventKind::crash:
    case EventKind::wipe: {
      Node& n = own(t, k);
      if (e.kind == EventKind::crash) {
        --t.left.crashes;
        if (e.target > 0 && n.outstanding) {
          const auto writes = ready_writes(n.disk.synced(), *n.outstanding);
          auto image = std::make_shared<storage::LogImage>(n.disk.synced());
          for (std::size_t w = 0; w < e.target && w < writes.size(); ++w) writes[w](*image);
          n.disk.synced_image = std::move(image);
        }
      } else {
        --t.left.wipes;
        // The incarnation dies with its disk; what it held stays on record
        // (its messages may still be in flight, and it was counted).
        Ghost::Dead dead{static_cast<std::uint32_t>(k), incarnation_now(*n.raft), {}};
        for (Index i = n.disk.synced().offset() + 1; i <= n.disk.synced().last(); ++i)
          dead.terms.push_back(n.disk.synced().term(i)->value);
        ghost(t).dead.push_back(std::move(dead));
        n.disk.synced_image = std::make_shared<const storage::LogImage>();
        ++n.generation;
        ghost(t).durable_commit[static_cast<std::size_t>(k)] = 0;
      }
      n.checked_commit = Index{};
      n.quorum_checked = Index{};
      if (std::any_of(t.ghost->reads.begin(), t.ghost->reads.end(),
                      [&](const Ghost::Read& r) { return r.node == static_cast<std::uint32_t>(k); }))
        std::erase_if(ghost(t).reads, [&](const Ghost::Read& r) { return r.node == static_cast<std::uint32_t>(k); });
      // Only a node of the initial cluster on its first disk bootstraps (an
      // operator passes --bootstrap to a new cluster, never to a wiped node).
      start(n, k, k < config_.nodes && n.generation == 0);
      if (n.raft->commit_index().value < t.ghost->durable_commit[static_cast<std::size_t>(k)] && !bad)
        bad = Violation{"commit never goes back", fmt::format("n{} restarted with commit {} below its synced {}", k + 1,
                                                              n.raft->commit_index(),
                                                              t.ghost->durable_commit[static_cast<std::size_t>(k)])};
      settle(t, k, bad);
      touched.push_back(k);
      break;
    }
    case EventKind::propose: {
      --t.left.proposals;
      const auto number = static_cast<std::uint8_t>(config_.proposals - t.left.proposals);
      (void)own(t, k).raft->propose(to_bytes(fmt::format("p{}", number)));
      settle(t, k, bad);
      touched.push_back(k);
      break;
    }
    case EventKind::read: {
      --t.left.reads;
      const std::uint64_t context = static_cast<std::uint64_t>(config_.reads - t.left.reads);
      ghost(t).reads.push_back({context, static_cast<std::uint32_t>(k), t.ghost->committed.size()});
      if (own(t, k).raft->read_index(context))
        std::erase_if(ghost(t).reads, [&](const Ghost::Read& r) { return r.context == context; });
      settle(t, k, bad);
      touched.push_back(k);
      break;
    }
    case EventKind::add:
    case EventKind::remove:
    case EventKind::demote: {
      --t.left.changes;
      core::Raft& r = *own(t, k).raft;
      Membership target = r.membership();
      const NodeId id = id_of(e.target);
      if (e.kind == EventKind::add) {
        target.staging.push_back(id);
      } else {
        std::erase(target.voters, id);
        if (e.kind == EventKind::demote) target.learners.push_back(id);
      }
      (void)r.propose_membership(target);
      settle(t, k, bad);
      touched.push_back(k);
      break;
    }
    case EventKind::transfer:
      --t.left.transfers;
      (void)own(t, k).raft->transfer_leader(id_of(e.target));
      settle(t, k, bad);
      touched.push_back(k);
      break;
  }
  // Once no crash or wipe is left, nothing can tell a write in flight from
  // a durable one: the writes still in flight complete now.
  if (sync_events_ && t.left.crashes == 0 && t.left.wipes == 0) {
    for (int j = 0; j < static_cast<int>(t.nodes.size()); ++j) {
      if (!t.nodes[static_cast<std::size_t>(j)]->outstanding) continue;
      Node& n = own(t, j);
      core::Ready rd = std::move(*n.outstanding);
      n.outstanding.reset();
      complete(t, j, n, rd, bad);
      settle(t, j, bad);
      if (std::find(touched.begin(), touched.end(), j) == touched.end()) touched.push_back(j);
    }
  }
  for (int j : touched) check(t, j, bad);
  if (touched.size() > 1) fp_.flags |= Footprint::global;
  if (touched.size() == 1 && t.nodes[static_cast<std::size_t>(touched[0])]->disk.synced_image !=
                                 s.nodes[static_cast<std::size_t>(touched[0])]->disk.synced_image)
    fp_.flags |= Footprint::disk_changed;
  collect_garbage(t);
  seal(t);
  return t;
}

// Two events, each confined to its node (its Raft, its disk, the messages
// it consumes and sends: the network is a multiset, so sends commute; a
// drop or a copy is confined to the message's receiver), commute unless:
// they are at one node; they spend one budget (a timeout or a tick with two
// or more left aside: proposals, reads and changes are numbered or named
// by their order, and a crash, a wipe, a drop or a copy is rare); one
// records a committed entry that the other checks a new leader or a new
// read against; or one is a leader's commit, whose quorum check reads the
// synced disks of the others, and the other changes its node's synced disk
// or incarnation. An event's checks read nothing else of the rest but
// whole-state invariants (log matching), which hold or fail in a state
// whatever the path to it. The garbage collection of inert messages
// judges a message by its receiver alone and what it drops stays inert, so
// it commutes too. `global` events (a global tick, the last crash or wipe
// that completes every write in flight) depend on everything.
bool Model::independent(const State& s, const Footprint& a, const Footprint& b) {
  if (((a.flags | b.flags) & Footprint::global) || a.node == b.node) return false;
  if (a.budget != 0 && a.budget == b.budget) {
    const bool counted = a.budget == 1 + static_cast<int>(EventKind::timeout) ||
                         a.budget == 1 + static_cast<int>(EventKind::tick);
    const int left = a.budget == 1 + static_cast<int>(EventKind::timeout) ? s.left.timeouts : s.left.ticks;
    if (!counted || left < 2) return false;
  }
  auto reads_what_writes = [](const Footprint& r, const Footprint& w) {
    return ((r.flags & Footprint::reads_committed) && (w.flags & Footprint::writes_committed)) ||
           ((r.flags & Footprint::reads_disks) && (w.flags & Footprint::disk_changed));
  };
  return !reads_what_writes(a, b) && !reads_what_writes(b, a);
}

std::uint64_t event_id(const Event& e) {
  Hasher h;
  h.add(static_cast<std::uint64_t>(e.kind) << 16 | std::uint64_t{e.node} << 8 | e.target);
  h.add(e.msg);
  return h.done();
}

std::string describe_message(const Message& m) {
  std::string s = fmt::format("n{}->n{} {} term {}", m.from, m.to, to_string(m.type), m.term);
  switch (m.type) {
    case MessageType::append: {
      s += fmt::format(" prev {}/{} commit {}", m.index, m.log_term, m.commit);
      if (!m.entries.empty()) {
        s += " entries";
        for (const Entry& e : m.entries) {
          s += fmt::format(" {}/{}", e.index, e.term);
          if (e.type == EntryType::noop) s += ":noop";
          else if (e.type == EntryType::membership) {
            auto mb = core::decode_membership(e.payload);
            s += ":config(" + (mb ? core::describe(*mb) : std::string("?")) + ")";
          } else s += ":" + raftkit::to_string(e.payload.view());
        }
      }
      break;
    }
    case MessageType::append_response:
      s += m.reject ? fmt::format(" reject {} hint {}/{}", m.index, m.reject_hint, m.hint_term)
                    : fmt::format(" index {}", m.index);
      break;
    case MessageType::vote:
    case MessageType::pre_vote:
      s += fmt::format(" last {}/{}{}", m.index, m.log_term, m.context == kTransferContext ? " transfer" : "");
      break;
    case MessageType::vote_response:
    case MessageType::pre_vote_response:
      s += m.reject ? " reject" : " granted";
      break;
    case MessageType::heartbeat:
      s += fmt::format(" commit {} round {}", m.commit, m.context);
      break;
    case MessageType::heartbeat_response:
      s += fmt::format(" round {}", m.context);
      break;
    case MessageType::snapshot:
      if (m.snapshot) s += fmt::format(" snapshot {}/{}", m.snapshot->index, m.snapshot->term);
      break;
    case MessageType::snapshot_response:
      s += fmt::format(" index {}{}", m.index, m.reject ? " reject" : "");
      break;
    case MessageType::read_index:
      s += fmt::format(" context {}", m.context);
      break;
    case MessageType::read_index_response:
      s += fmt::format(" context {} index {}{}", m.context, m.index, m.reject ? " reject" : "");
      break;
    case MessageType::timeout_now:
      break;
  }
  return s + describe_identity(m);
}

std::string Model::describe(const State& s, const Event& e) const {
  auto msg = [&]() -> std::string {
    auto it = std::lower_bound(s.msgs.begin(), s.msgs.end(), e.msg,
                               [](const MsgPtr& p, std::uint64_t x) { return p->hash < x; });
    return it == s.msgs.end() ? std::string("?") : describe_message((*it)->m);
  };
  switch (e.kind) {
    case EventKind::deliver:
    case EventKind::drop:
    case EventKind::duplicate:
      return fmt::format("{} {}", to_string(e.kind), msg());
    case EventKind::tick:
      if (!config_.timed()) return fmt::format("tick n{}", e.node + 1);
      return e.target == 0 ? std::string("tick") : fmt::format("{} ticks", e.target + 1);
    case EventKind::add:
    case EventKind::remove:
    case EventKind::demote:
    case EventKind::transfer:
      return fmt::format("{} n{} (at n{})", to_string(e.kind), e.target + 1, e.node + 1);
    case EventKind::crash:
      if (e.target == 0) return fmt::format("crash n{}", e.node + 1);
      return fmt::format("crash n{} keeping {} write(s) of the one in flight", e.node + 1, e.target);
    default:
      return fmt::format("{} n{}", to_string(e.kind), e.node + 1);
  }
}

std::string Model::describe_state(const State& s) const {
  std::string out;
  for (std::size_t k = 0; k < s.nodes.size(); ++k) {
    const Node& n = *s.nodes[k];
    bind(n, static_cast<int>(k));
    const core::Raft& r = *n.raft;
    out += fmt::format("  n{}: {} term {} vote n{} commit {} applied {} log", k + 1, core::to_string(r.role()), r.term(),
                       r.vote(), r.commit_index(), r.applied_index());
    for (const Entry& e : whole_log(r)) out += fmt::format(" {}/{}", e.index, e.term);
    out += fmt::format("; synced: {} last {}{}\n", describe_hard_state(n.disk.synced().hs), n.disk.synced().last(),
                       n.outstanding ? ", a write in flight" : "");
  }
  out += fmt::format("  in flight: {} message(s)\n", s.msgs.size());
  for (const MsgPtr& m : s.msgs) out += "    " + describe_message(m->m) + "\n";
  return out;
}

}  // namespace raftkit::explore

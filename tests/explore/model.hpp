// explore/model.hpp — the cluster the explorer searches: real cores, a disk
// per node that keeps "written" and "synced" apart, and the network as a
// multiset of messages.
//
// A State is a value. Its nodes are shared, immutable snapshots
// (copy-on-write): an event that touches one node copies that node only, so
// a state costs one node copy plus the message list. Each node holds a real
// core::Raft. The Raft reads its LogStore through a reference fixed at
// construction, so every Raft of node k, in every state, reads through the
// same ProxyStore (the Model owns one per node) and the Model points that
// proxy at the right disk image before it touches the Raft. The search is
// single-threaded, which is what makes that correct.
//
// The Ready cycle is the runtime's: after an event the node's Ready is
// taken, written to the disk's `written` image, and its `messages` leave at
// once; if it must be synced it stays outstanding until a `sync` event,
// which makes `written` the `synced` image, sends `persisted_messages`,
// applies the committed entries and calls advance(). Meanwhile new
// messages of the node leave through take_messages(), as the driver sends
// while a write is in flight. A crash throws away the written image (or
// keeps a prefix of the write in flight, cut where the driver's writes can
// be cut), a wipe both images; either constructs a new Raft over what is
// left (after a wipe, a new incarnation that does not bootstrap).
//
// Ghost state — what the invariants need to remember about the past
// (leaders per term, votes granted, entries known committed, the highest
// synced commit, the reads in progress) — is part of the state and of its
// hash, so two states are merged only when their futures are judged alike.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/raft.hpp"
#include "storage/log_image.hpp"

namespace raftkit::explore {

/// What the search may do, and how much of it (budgets bound each kind of
/// event over a whole schedule).
struct Config {
  int nodes = 3;   ///< voters of the initial cluster: n1..nN
  int spares = 0;  ///< nodes n(N+1).. that start empty, outside the cluster (for membership changes)
  int depth = 12;  ///< schedule length bound
  // budgets
  int crashes = 0;
  int wipes = 0;
  int drops = 0;
  int dups = 0;
  int proposals = 1;
  int reads = 0;
  int changes = 0;    ///< membership changes proposed (add a spare as staging, remove a voter)
  bool demotions = false;  ///< a membership change may also move a voter to learner (it keeps its incarnation)
  int transfers = 0;
  int timeouts = 3;   ///< election timeouts (campaign events)
  int ticks = 2;      ///< heartbeat ticks of a leader (untimed) or global ticks (timed)
  /// A bound, not a budget: a state with more messages in flight than this
  /// is checked but not explored further (0: no bound).
  std::size_t max_in_flight = 0;
  // protocol
  bool pre_vote = false;
  bool check_quorum = false;
  bool lease = false;  ///< lease reads; implies check_quorum and timed mode
  int election_ticks = 3;
  int heartbeat_ticks = 1;  ///< a leader's heartbeat interval (below election_ticks)
  std::size_t max_append_entries = 1;  ///< entries per append (1 lets appends travel apart: Figure 8)
  bool batch = false;
  /// A sync is an event of its own (else a write is durable at once). Only
  /// a crash or a wipe can lose a write that is not synced; with neither
  /// left in the budgets, writes are durable at once whatever this says (a
  /// reduction of the search: a sync's delay then only delays messages
  /// and applying, which other schedules mostly cover; see the README).
  bool sync_events = true;
  /// Deliberate protocol bugs in every node (always none in a build without
  /// planted bugs, RAFTKIT_PLANTED_BUGS).
  core::ProtocolBugs bugs;

  /// Global ticks (every node's clock advances together) instead of
  /// leader-only heartbeats: needed wherever leases or check-quorum decide.
  bool timed() const { return lease || check_quorum; }
  /// Timed: time may also pass several ticks in one event (k ticks with
  /// nothing between them, 2 <= k <= the ticks left), so that a schedule
  /// waiting out an election timeout is one event deep instead of k. The
  /// same states, reached at a smaller depth (README, "Reductions").
  bool tick_runs = false;
  int total_nodes() const { return nodes + spares; }
  /// The command-line options that give this configuration.
  std::string to_args() const;
};

/// An in-flight message with its hash (the network is a sorted multiset).
struct Msg {
  Message m;
  std::uint64_t hash = 0;
};
using MsgPtr = std::shared_ptr<const Msg>;

/// The disk of a node: what the process wrote, and what a power cut keeps.
struct Disk {
  storage::LogImage written;
  /// Shared between the states a node's copies are in until a sync, a
  /// crash or a wipe changes it (most events do not).
  std::shared_ptr<const storage::LogImage> synced_image = std::make_shared<const storage::LogImage>();
  const storage::LogImage& synced() const { return *synced_image; }
};

/// One node: its core, its disk, the Ready being written.
struct Node {
  std::optional<core::Raft> raft;
  Disk disk;
  std::optional<core::Ready> outstanding;
  std::uint32_t life = 0;        ///< starts (crash-restarts included)
  std::uint32_t generation = 0;  ///< disks (a wipe starts a new one)
  /// Commit indexes up to here were checked against the committed record
  /// in this life (bookkeeping of the checks, not hashed).
  Index checked_commit;
  /// Commit indexes up to here were checked to sit on a quorum (not hashed).
  Index quorum_checked;
  std::uint64_t hash = 0;        ///< of everything above, set by Model::seal
};
using NodePtr = std::shared_ptr<const Node>;

/// The invariants' memory of the past.
struct Ghost {
  struct Vote {
    std::uint32_t node, generation;
    std::uint64_t term;
    std::uint32_t candidate;
  };
  struct Committed {
    std::uint64_t term;
    std::uint64_t payload;
    std::uint64_t known_in;  ///< lowest term of a node that saw it committed
  };
  struct Read {
    std::uint64_t context;
    std::uint32_t node;
    std::uint64_t must_see;  ///< highest index known committed when it began
  };
  std::vector<std::pair<std::uint64_t, std::uint32_t>> leaders;  ///< (term, node id)
  std::vector<Vote> votes;
  std::vector<Committed> committed;  ///< index - 1
  std::vector<Committed> applied;    ///< index - 1 -> the first application (known_in unused)
  std::vector<std::uint64_t> durable_commit;  ///< per node: highest synced commit of its disk
  std::vector<Read> reads;
  /// A wiped incarnation and the terms of the entries its synced log held.
  struct Dead {
    std::uint32_t node;
    std::uint64_t incarnation;
    std::vector<std::uint64_t> terms;  ///< index - 1 (no snapshots in the model)
  };
  std::vector<Dead> dead;
  std::uint64_t hash() const;
  std::uint64_t sealed_hash = 0;  ///< hash(), cached by Model::seal
};

struct Budgets {
  int crashes, wipes, drops, dups, proposals, reads, changes, transfers, timeouts, ticks;
  friend bool operator==(const Budgets&, const Budgets&) = default;
};

struct State {
  std::vector<NodePtr> nodes;
  std::vector<MsgPtr> msgs;  ///< sorted by hash
  Budgets left{};
  std::shared_ptr<const Ghost> ghost;  ///< copied when an event changes it
  std::uint64_t hash = 0;
};

enum class EventKind : std::uint8_t {
  deliver, drop, duplicate, timeout, tick, sync, crash, wipe, propose, read, add, remove, transfer, demote
};

/// A transition. Messages are named by hash (stable across runs of one build).
struct Event {
  EventKind kind = EventKind::deliver;
  std::uint8_t node = 0;    ///< index of the node it happens at (0-based)
  std::uint8_t target = 0;  ///< add/remove/transfer: the other node; crash: writes of the one in flight kept;
                            ///< a global tick: the ticks it passes beyond the first
  std::uint64_t msg = 0;    ///< deliver/drop/duplicate: the message's hash
};

/// What an applied event touched, for the partial-order reduction
/// (search.cpp): two events with disjoint footprints commute (README,
/// "Partial-order reduction"). Set by Model::apply for the event it applied.
struct Footprint {
  enum : std::uint8_t {
    global = 1 << 0,            ///< touches more than one node (a global tick, the syncs forced by the last crash)
    reads_committed = 1 << 1,   ///< checked against the ghost's committed record (a new leader; a read began)
    writes_committed = 1 << 2,  ///< added to or lowered the ghost's committed record
    reads_disks = 1 << 3,       ///< a leader's commit rose: other nodes' synced disks were read
    disk_changed = 1 << 4,      ///< its node's synced image or incarnation changed
  };
  std::uint8_t node = 0;    ///< the one node it touched
  std::uint8_t flags = 0;
  std::uint8_t budget = 0;  ///< the budget it spent: 1 + the EventKind, or 0
};

/// A broken invariant: which, and the details.
struct Violation {
  std::string kind;
  std::string what;
};

class ProxyStore;

class Model {
 public:
  explicit Model(const Config& config);
  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const Config& config() const { return config_; }
  /// What ProtocolOptions::validate() says of the options the cores get
  /// from this configuration (empty: valid).
  std::string options_error() const { return options_for(0, 0, true).validate(); }
  State initial();
  /// Every event enabled in `s`.
  void enabled(const State& s, std::vector<Event>& out) const;
  /// The state after `e`; a violation of any invariant lands in `bad`.
  State apply(const State& s, const Event& e, std::optional<Violation>& bad);
  /// One line: who does what, to whom, with which term and index.
  std::string describe(const State& s, const Event& e) const;
  std::string describe_state(const State& s) const;
  /// What the last apply() touched.
  const Footprint& footprint() const { return fp_; }
  /// Whether two events applied at `s` (with these footprints) commute:
  /// either order leads to one state and one verdict of the checks.
  static bool independent(const State& s, const Footprint& a, const Footprint& b);

 private:
  ProtocolOptions options_for(int k, std::uint32_t life, bool bootstrap) const;
  void bind(const Node& n, int k) const;
  Node& own(State& s, int k);
  Ghost& ghost(State& s);
  void start(Node& n, int k, bool bootstrap);
  void settle(State& s, int k, std::optional<Violation>& bad);
  void complete(State& s, int k, Node& n, const core::Ready& rd, std::optional<Violation>& bad);
  void send(State& s, const Message& m, std::optional<Violation>& bad);
  void check(State& s, int k, std::optional<Violation>& bad);
  void check_commit_quorum(State& s, int k, std::optional<Violation>& bad);
  void check_apply(State& s, int k, const Entry& e, std::optional<Violation>& bad);
  void seal(State& s);
  void collect_garbage(State& s) const;
  std::uint64_t node_hash(const Node& n, int k) const;
  Footprint first_footprint(const State& s, const Event& e) const;

  Config config_;
  std::vector<std::unique_ptr<ProxyStore>> proxies_;
  std::vector<NodeId> initial_voters_;
  std::vector<std::shared_ptr<Node>> fresh_;  // nodes copied by the event being applied
  std::shared_ptr<Ghost> fresh_ghost_;        // the ghost, if the event being applied changed it
  bool sync_events_;
  Footprint fp_;
};

std::string_view to_string(EventKind k);
std::uint64_t message_hash(const Message& m);
std::string describe_message(const Message& m);
/// An event's identity (kind, node, target, message) as one word.
std::uint64_t event_id(const Event& e);

}  // namespace raftkit::explore

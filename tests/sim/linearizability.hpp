// Linearizability checker for client histories recorded by the simulator.
//
// THE QUESTION. A history is a set of operations, each with an invocation
// time, a response time and an output. It is linearizable with respect to a
// sequential model if the operations can be put in one total order such that
// (1) running them through the model in that order produces exactly the
// recorded outputs, and (2) whenever op A returned before op B was invoked,
// A comes before B. An operation whose outcome is unknown (the client timed
// out or crashed) may have taken effect at any instant after its invocation,
// or never: it gets a response time of +infinity and any output is accepted.
//
// THE SEARCH (Wing & Gong, with Lowe's improvements, as in Porcupine). Turn
// the history into a time-ordered list of call and return events (calls
// before returns at equal times, so touching intervals count as concurrent;
// unknown-outcome returns go at the very end). Any call event that appears
// before the first return event in the list belongs to an operation that
// could be linearized next: everything it must follow is already done. The
// search walks the list from the front and, for such a call, asks the model
// whether the op is allowed from the current state; if so it "lifts" the op
// (unlinks both its call and its return from the doubly linked list, an O(1)
// operation), pushes (op, previous state) on a stack and restarts from the
// front. Reaching a return event means that op must be linearized before
// anything else, and nothing tried from here worked: pop the stack, "unlift"
// the op (relink it; LIFO order makes this exact) and try the next candidate
// after it. The list becoming empty of known-outcome ops means success; the
// stack emptying means the history is not linearizable.
//
// MEMOIZATION (Lowe). The future of the search depends only on which ops are
// already linearized (a bitset) and the model state, not on the order that
// produced them. Every (bitset, state) configuration reached is recorded in
// a hash set; reaching one again is pruned, because its subtree was already
// explored and failed. This turns the exponential search over interleavings
// of concurrent ops into one bounded by the number of distinct
// configurations, which for real histories is small. The bitset's hash is a
// Zobrist hash (a random 64-bit key per op, XORed in and out), so it is kept
// up to date in O(1); model states are interned to small integer ids, so a
// configuration is (bitset, state id).
//
// FORCED OBSERVERS. If a known-outcome op that never changes the state (a
// read, a get, a failed cas: the model's observer() hint) is allowed next,
// then some completion starts with it, if any completion exists (moving it
// to the front changes no state). So it is the only candidate tried there,
// and if it fails, the configuration fails. This removes most of the
// branching over concurrent reads.
//
// UNKNOWN OUTCOMES, which would otherwise blow the search up, get these
// treatments, all sound and complete (a brute-force cross-check in the tests
// compares verdicts on thousands of small random histories):
//  - They are optional: placing one at the very end (after every
//    observation) is always possible and has no visible effect, so the
//    search stops as soon as every known-outcome op is linearized. Unknown
//    observers are dropped up front.
//  - Candidates are tried known-outcome first; unknown ones only when the
//    known ones cannot go on. Siblings are re-ordered, nothing is skipped.
//  - Normal form: an unknown op u is never directly followed by an op that
//    absorbs it (ends in the same state as without u) or commutes with it
//    (between two unknown ops, only the lower-numbered may go first). Any
//    linearization can be rewritten into this form (drop u, or swap), so
//    an unknown op is only applied right where something observes it. The
//    model's may_observe() hint rules most of them out without stepping.
//  - Dominance instead of equality in the memo: (K+U', s) is covered by a
//    stored (K+U, s) when U is a subset of U' (K: the known-outcome ops, U,
//    U': unknown-outcome ops): the smaller one can do whatever the larger
//    one can, leaving the extra unknown ops unapplied. So the memo hash
//    covers only the known-outcome bits (plus the normal-form constraint
//    inherited from an unknown last op, which is part of the configuration).
//  - Symmetry: unknown ops with equal inputs are interchangeable and the
//    earlier-invoked one is available whenever the later one is, so they
//    are only ever linearized in invocation order.
// What stays expensive: many unknown ops that a weak observation could be
// explained by in many ways (a counter read explained by subsets of lost
// increments of different sizes is a subset-sum problem).
//
// A step/time/memory budget bounds the search; exceeding it yields
// Verdict::gave_up, never a success.
//
// MODELS. A model is a type with State, Input, Output, and static functions
// init(), step(state, input, output*) -> optional<State> (output == nullptr
// for an unknown outcome; must then never fail unless the op truly cannot
// occur), hash(state), describe(input, output*), describe_state(state), and
// optionally two pruning hints:
//  - observer(input, output*): wherever the op (with this output; nullptr:
//    unknown) is allowed, it leaves the state unchanged, from every state
//    (a read, a get, a failed cas). Such known ops are "forced" (below),
//    and such unknown-outcome ops are dropped;
//  - may_observe(u, y, y_out): may return false only if, from every state,
//    an op y (y_out == nullptr: unknown outcome) placed right after an
//    unknown-outcome op u is refused, or ends in the same state and output
//    as without u, or (y known) commutes with u. Unknown ops are only tried
//    where something available could observe them. When in doubt: true. See CounterModel and RegisterModel below; a
// later model (say a key-value map, one partition per key) only has to
// provide the same members.
#pragma once

#include <algorithm>
#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace raftkit::sim {

// Virtual time (any monotonic unit the recorder chooses).
using Time = std::int64_t;

// ---------------------------------------------------------------------------
// Models

template <class M>
concept LinearizabilityModel = requires(const typename M::State& s, const typename M::Input& in,
                                        const typename M::Output* out) {
  { M::init() } -> std::convertible_to<typename M::State>;
  { M::step(s, in, out) } -> std::same_as<std::optional<typename M::State>>;
  { M::hash(s) } -> std::convertible_to<std::size_t>;
  { M::describe(in, out) } -> std::convertible_to<std::string>;
  { M::describe_state(s) } -> std::convertible_to<std::string>;
  requires std::equality_comparable<typename M::State>;
  requires std::equality_comparable<typename M::Input>;
  requires std::copyable<typename M::State>;
};

// A counter starting at 0: add(n) (output: nothing, or the new value) and
// get() -> value.
struct CounterModel {
  using State = std::int64_t;
  struct Input {
    enum class Kind : std::uint8_t { add, get } kind = Kind::get;
    std::int64_t delta = 0;
    static Input add(std::int64_t n) { return {Kind::add, n}; }
    static Input get() { return {Kind::get, 0}; }
    friend bool operator==(const Input&, const Input&) = default;
  };
  struct Output {
    // get: the value read. add: the new value if the service reports it,
    // nullopt if add returns nothing.
    std::optional<std::int64_t> value;
    static Output none() { return {}; }
    static Output of(std::int64_t v) { return {v}; }
    friend bool operator==(const Output&, const Output&) = default;
  };

  static State init() { return 0; }
  static std::optional<State> step(const State& s, const Input& in, const Output* out);
  static std::size_t hash(const State& s);
  static bool observer(const Input& in, const Output* out);
  static bool may_observe(const Input& unknown, const Input& later, const Output* later_out);
  static std::string describe(const Input& in, const Output* out);
  static std::string describe_state(const State& s);
};

// A single register starting at 0: write(v), read() -> v, cas(expected, new)
// -> ok / fail.
struct RegisterModel {
  using State = std::int64_t;
  struct Input {
    enum class Kind : std::uint8_t { write, read, cas } kind = Kind::read;
    std::int64_t value = 0;     // write: the value; cas: the new value
    std::int64_t expected = 0;  // cas only
    static Input write(std::int64_t v) { return {Kind::write, v, 0}; }
    static Input read() { return {Kind::read, 0, 0}; }
    static Input cas(std::int64_t expected, std::int64_t desired) {
      return {Kind::cas, desired, expected};
    }
    friend bool operator==(const Input&, const Input&) = default;
  };
  struct Output {
    std::int64_t value = 0;  // read: the value read
    bool ok = false;         // cas: whether it swapped
    static Output none() { return {}; }
    static Output read(std::int64_t v) { return {v, false}; }
    static Output cas(bool ok) { return {0, ok}; }
    friend bool operator==(const Output&, const Output&) = default;
  };

  static State init() { return 0; }
  static std::optional<State> step(const State& s, const Input& in, const Output* out);
  static std::size_t hash(const State& s);
  static bool observer(const Input& in, const Output* out);
  static bool may_observe(const Input& unknown, const Input& later, const Output* later_out);
  static std::string describe(const Input& in, const Output* out);
  static std::string describe_state(const State& s);
};

// ---------------------------------------------------------------------------
// Histories

template <LinearizabilityModel M>
struct Operation {
  struct Response {
    Time time = 0;
    typename M::Output output{};
  };
  int client = 0;
  Time call = 0;
  typename M::Input input{};
  std::optional<Response> response;  // nullopt: unknown outcome

  bool unknown() const { return !response.has_value(); }
};

// Records operations as they happen. An operation that is invoked and never
// responded to is an unknown-outcome operation.
template <LinearizabilityModel M>
class History {
 public:
  using Id = std::size_t;

  Id invoke(int client, Time at, typename M::Input input) {
    ops_.push_back(Operation<M>{client, at, std::move(input), std::nullopt});
    return ops_.size() - 1;
  }
  void respond(Id id, Time at, typename M::Output output) {
    Operation<M>& op = ops_.at(id);
    if (op.response) throw std::logic_error("linearizability: operation responded twice");
    if (at < op.call) throw std::invalid_argument("linearizability: response before invocation");
    op.response = typename Operation<M>::Response{at, std::move(output)};
  }
  // A complete operation in one call.
  Id add(int client, Time call, Time ret, typename M::Input input, typename M::Output output) {
    Id id = invoke(client, call, std::move(input));
    respond(id, ret, std::move(output));
    return id;
  }
  // An operation whose outcome is unknown (never responded to).
  Id add_unknown(int client, Time call, typename M::Input input) {
    return invoke(client, call, std::move(input));
  }

  const std::vector<Operation<M>>& ops() const { return ops_; }
  std::vector<Operation<M>>& ops() { return ops_; }
  std::size_t size() const { return ops_.size(); }

 private:
  std::vector<Operation<M>> ops_;
};

// ---------------------------------------------------------------------------
// Checking

enum class Verdict { linearizable, not_linearizable, gave_up };
const char* to_string(Verdict v);

struct CheckOptions {
  // Search steps (one op linearized or undone); 0 = unlimited.
  std::uint64_t max_steps = 50'000'000;
  // Wall-clock limit; zero = unlimited.
  std::chrono::milliseconds timeout{0};
  // Approximate memory of the memo table; 0 = unlimited.
  std::size_t max_memo_bytes = std::size_t{2} << 30;
  // Ops shown at the end of the longest linearized prefix in explanations.
  std::size_t explain_tail = 12;
};

struct CheckResult {
  Verdict verdict = Verdict::gave_up;
  // Human-readable: empty-ish on success; on failure the deepest point the
  // search reached, the state there, and the op that could not be placed.
  std::string explanation;
  // Indices into History::ops(). On success: a complete linearization of the
  // known-outcome ops (plus whichever unknown ones were needed). Otherwise:
  // the longest linearizable prefix found.
  std::vector<std::size_t> linearization;
  // On failure: the op whose response forced it to be placed next when the
  // search got stuck, and the other ops that were candidates there.
  std::optional<std::size_t> stuck_op;
  std::vector<std::size_t> candidates;

  std::uint64_t steps = 0;
  std::size_t memo_entries = 0;
  std::chrono::microseconds elapsed{0};

  bool linearizable() const { return verdict == Verdict::linearizable; }
};

namespace detail {

// The model-independent search (linearizability.cpp). Ops are numbered
// 0..n-1; states are interned integer ids, state 0 is the initial state.
struct SearchOp {
  Time call = 0;
  Time ret = 0;  // ignored when unknown
  bool unknown = false;
  bool observer = false;  // never changes the state wherever allowed (model hint)
  // For unknown ops: the previous unknown op with an equal input (by
  // invocation order), or -1. Enforces the symmetry rule.
  std::int64_t same_input_pred = -1;
};

// may_observe(u, y) for search ops u (unknown outcome) and y; see the model hint.
struct ObserveFn {
  void* ctx = nullptr;
  bool (*fn)(void* ctx, std::uint32_t u, std::uint32_t y) = nullptr;
  bool operator()(std::uint32_t u, std::uint32_t y) const { return fn == nullptr || fn(ctx, u, y); }
};

// Returns the new state id, or -1 if the op is not allowed from `state`.
struct StepFn {
  void* ctx = nullptr;
  std::int64_t (*fn)(void* ctx, std::uint32_t state, std::uint32_t op) = nullptr;
  std::int64_t operator()(std::uint32_t state, std::uint32_t op) const { return fn(ctx, state, op); }
};

struct SearchResult {
  Verdict verdict = Verdict::gave_up;
  std::string gave_up_reason;
  std::vector<std::uint32_t> prefix;  // op numbers, in linearization order
  std::uint32_t prefix_state = 0;     // state id after the prefix
  std::int64_t stuck_op = -1;
  std::vector<std::uint32_t> candidates;
  std::uint64_t steps = 0;
  std::size_t memo_entries = 0;
};

SearchResult search(const std::vector<SearchOp>& ops, StepFn step, ObserveFn observe,
                    const CheckOptions& options);

std::string format_op(std::size_t index, int client, Time call, std::optional<Time> ret,
                      const std::string& what);

template <class M>
concept HasMayObserve = requires(const typename M::Input& in, const typename M::Output* out) {
  { M::may_observe(in, in, out) } -> std::convertible_to<bool>;
};

template <class M>
concept HasObserver = requires(const typename M::Input& in, const typename M::Output* out) {
  { M::observer(in, out) } -> std::convertible_to<bool>;
};

template <class M>
bool is_observer(const Operation<M>& op) {
  if constexpr (HasObserver<M>) {
    return M::observer(op.input, op.response ? &op.response->output : nullptr);
  } else {
    return false;
  }
}

template <LinearizabilityModel M>
struct Interner {
  struct Hasher {
    std::size_t operator()(const typename M::State& s) const { return M::hash(s); }
  };
  std::vector<typename M::State> states;
  std::unordered_map<typename M::State, std::uint32_t, Hasher> ids;

  std::uint32_t intern(typename M::State s) {
    auto [it, inserted] = ids.try_emplace(s, static_cast<std::uint32_t>(states.size()));
    if (inserted) states.push_back(std::move(s));
    return it->second;
  }
};

template <LinearizabilityModel M>
struct StepContext {
  const std::vector<const Operation<M>*>* ops;
  Interner<M>* interner;

  static std::int64_t call(void* self, std::uint32_t state, std::uint32_t op) {
    auto* c = static_cast<StepContext*>(self);
    const Operation<M>& o = *(*c->ops)[op];
    const typename M::Output* out = o.response ? &o.response->output : nullptr;
    // Copy: intern() may grow the states vector.
    std::optional<typename M::State> next = M::step(c->interner->states[state], o.input, out);
    if (!next) return -1;
    return c->interner->intern(std::move(*next));
  }
  static bool observe(void* self, std::uint32_t u, std::uint32_t y) {
    auto* c = static_cast<StepContext*>(self);
    const Operation<M>& later = *(*c->ops)[y];
    if constexpr (HasMayObserve<M>) {
      return M::may_observe((*c->ops)[u]->input, later.input,
                            later.response ? &later.response->output : nullptr);
    } else {
      return true;
    }
  }
};

}  // namespace detail

template <LinearizabilityModel M>
CheckResult check(const History<M>& history, const CheckOptions& options = {}) {
  const auto started = std::chrono::steady_clock::now();
  const auto& all = history.ops();

  // Select the ops worth searching over: unknown-outcome reads are dropped.
  std::vector<std::size_t> index;  // search op -> history index
  std::vector<const Operation<M>*> ops;
  for (std::size_t i = 0; i < all.size(); ++i) {
    const Operation<M>& op = all[i];
    if (op.response && op.response->time < op.call)
      throw std::invalid_argument("linearizability: response before invocation");
    if (op.unknown() && detail::is_observer(op)) continue;
    index.push_back(i);
  }
  // Number search ops by invocation time: the normal form and the symmetry
  // rule both order unknown-outcome ops by number and must agree.
  std::stable_sort(index.begin(), index.end(),
                   [&](std::size_t a, std::size_t b) { return all[a].call < all[b].call; });
  for (std::size_t i : index) ops.push_back(&all[i]);

  std::vector<detail::SearchOp> shape(ops.size());
  std::vector<std::size_t> unknown_ops;
  for (std::size_t k = 0; k < ops.size(); ++k) {
    shape[k].call = ops[k]->call;
    shape[k].unknown = ops[k]->unknown();
    shape[k].observer = detail::is_observer(*ops[k]);
    shape[k].ret = ops[k]->response ? ops[k]->response->time : std::numeric_limits<Time>::max();
    if (shape[k].unknown) unknown_ops.push_back(k);
  }
  // Symmetry rule: chain unknown ops with equal inputs by invocation time.
  {
    std::vector<std::size_t> last_of_class;  // most recent member of each input class
    for (std::size_t k : unknown_ops) {
      bool found = false;
      for (std::size_t& rep : last_of_class) {
        if (ops[rep]->input == ops[k]->input) {
          shape[k].same_input_pred = static_cast<std::int64_t>(rep);
          rep = k;
          found = true;
          break;
        }
      }
      if (!found) last_of_class.push_back(k);
    }
  }

  detail::Interner<M> interner;
  interner.intern(M::init());
  detail::StepContext<M> ctx{&ops, &interner};
  detail::SearchResult r =
      detail::search(shape, detail::StepFn{&ctx, &detail::StepContext<M>::call},
                     detail::ObserveFn{&ctx, &detail::StepContext<M>::observe}, options);

  CheckResult out;
  out.verdict = r.verdict;
  out.steps = r.steps;
  out.memo_entries = r.memo_entries;
  for (std::uint32_t k : r.prefix) out.linearization.push_back(index[k]);
  for (std::uint32_t k : r.candidates) out.candidates.push_back(index[k]);
  if (r.stuck_op >= 0) out.stuck_op = index[static_cast<std::size_t>(r.stuck_op)];

  auto describe = [&](std::size_t k) {
    const Operation<M>& o = *ops[k];
    const typename M::Output* o_out = o.response ? &o.response->output : nullptr;
    std::optional<Time> ret;
    if (o.response) ret = o.response->time;
    return detail::format_op(index[k], o.client, o.call, ret, M::describe(o.input, o_out));
  };
  std::size_t known = 0;
  for (const auto& s : shape) known += s.unknown ? 0 : 1;
  std::size_t prefix_known = 0;
  for (std::uint32_t k : r.prefix) prefix_known += shape[k].unknown ? 0 : 1;

  std::string& e = out.explanation;
  switch (r.verdict) {
    case Verdict::linearizable:
      e = "linearizable: " + std::to_string(all.size()) + " ops (" +
          std::to_string(all.size() - known) + " with unknown outcome)";
      break;
    case Verdict::gave_up:
      e = "gave up (" + r.gave_up_reason + ") after " + std::to_string(r.steps) +
          " steps; deepest linearizable prefix so far: " + std::to_string(prefix_known) + " of " +
          std::to_string(known) + " known-outcome ops; the answer is unknown";
      break;
    case Verdict::not_linearizable: {
      e = "NOT linearizable: at most " + std::to_string(prefix_known) + " of " +
          std::to_string(known) + " known-outcome ops can be linearized.\n";
      std::size_t tail = std::min(options.explain_tail, r.prefix.size());
      e += "End of the longest linearizable prefix (" + std::to_string(r.prefix.size()) +
           " ops):\n";
      if (tail < r.prefix.size()) e += "  ...\n";
      for (std::size_t i = r.prefix.size() - tail; i < r.prefix.size(); ++i)
        e += "  " + describe(r.prefix[i]) + "\n";
      e += "State after it: " + M::describe_state(interner.states[r.prefix_state]) + "\n";
      if (r.stuck_op >= 0) {
        e += "Stuck: this op has returned, so it (or an op concurrent with it) must come next:\n  " +
             describe(static_cast<std::size_t>(r.stuck_op)) + "\n";
      }
      if (!r.candidates.empty()) {
        e += "but from that state every candidate is refused by the model or leads to a dead "
             "end:\n";
        for (std::uint32_t k : r.candidates) e += "  " + describe(k) + "\n";
      }
      break;
    }
  }
  out.elapsed = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - started);
  return out;
}

}  // namespace raftkit::sim

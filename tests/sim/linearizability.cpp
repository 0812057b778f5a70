// Model-independent linearizability search; see the essay in
// linearizability.hpp for the algorithm.
#include "sim/linearizability.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace raftkit::sim {

const char* to_string(Verdict v) {
  switch (v) {
    case Verdict::linearizable: return "linearizable";
    case Verdict::not_linearizable: return "not linearizable";
    case Verdict::gave_up: return "gave up";
  }
  return "?";
}

// ---------------------------------------------------------------------------
// Models

std::optional<CounterModel::State> CounterModel::step(const State& s, const Input& in,
                                                      const Output* out) {
  switch (in.kind) {
    case Input::Kind::add: {
      State next = s + in.delta;
      if (out != nullptr && out->value && *out->value != next) return std::nullopt;
      return next;
    }
    case Input::Kind::get:
      if (out == nullptr) return s;
      if (out->value != s) return std::nullopt;
      return s;
  }
  return std::nullopt;
}

bool CounterModel::observer(const Input& in, const Output* out) {
  return in.kind == Input::Kind::get || (in.delta == 0 && out == nullptr);
}

bool CounterModel::may_observe(const Input& unknown, const Input& later, const Output* later_out) {
  (void)unknown;
  // A known add that reports nothing commutes with any add.
  return !(later.kind == Input::Kind::add && later_out != nullptr && !later_out->value);
}

std::size_t CounterModel::hash(const State& s) { return std::hash<std::int64_t>{}(s); }

std::string CounterModel::describe(const Input& in, const Output* out) {
  std::string r;
  if (in.kind == Input::Kind::add) {
    r = "add(" + std::to_string(in.delta) + ")";
    if (out == nullptr) return r + " -> ?";
    if (out->value) r += " -> " + std::to_string(*out->value);
    return r;
  }
  r = "get()";
  if (out == nullptr) return r + " -> ?";
  return r + " -> " + (out->value ? std::to_string(*out->value) : std::string("(none)"));
}

std::string CounterModel::describe_state(const State& s) { return "counter=" + std::to_string(s); }

std::optional<RegisterModel::State> RegisterModel::step(const State& s, const Input& in,
                                                        const Output* out) {
  switch (in.kind) {
    case Input::Kind::write:
      return in.value;
    case Input::Kind::read:
      if (out != nullptr && out->value != s) return std::nullopt;
      return s;
    case Input::Kind::cas: {
      const bool swaps = s == in.expected;
      if (out != nullptr && out->ok != swaps) return std::nullopt;
      return swaps ? in.value : s;
    }
  }
  return std::nullopt;
}

bool RegisterModel::observer(const Input& in, const Output* out) {
  return in.kind == Input::Kind::read || (in.kind == Input::Kind::cas && out != nullptr && !out->ok);
}

bool RegisterModel::may_observe(const Input& unknown, const Input& later, const Output* out) {
  // An unknown write(v) or cas(e, v) only matters if it set the value to v
  // (a cas that did not swap changed nothing).
  const std::int64_t v = unknown.value;
  switch (later.kind) {
    case Input::Kind::write:
      return false;  // overwrites it
    case Input::Kind::read:
      return out == nullptr || out->value == v;
    case Input::Kind::cas:
      // An unknown cas only matters if it swaps, i.e. expects v.
      if (out == nullptr) return later.expected == v;
      return out->ok ? later.expected == v : later.expected != v;
  }
  return true;
}

std::size_t RegisterModel::hash(const State& s) { return std::hash<std::int64_t>{}(s); }

std::string RegisterModel::describe(const Input& in, const Output* out) {
  switch (in.kind) {
    case Input::Kind::write:
      return "write(" + std::to_string(in.value) + ")" + (out == nullptr ? " -> ?" : "");
    case Input::Kind::read:
      return std::string("read() -> ") + (out == nullptr ? "?" : std::to_string(out->value));
    case Input::Kind::cas:
      return "cas(" + std::to_string(in.expected) + ", " + std::to_string(in.value) + ") -> " +
             (out == nullptr ? "?" : (out->ok ? "ok" : "fail"));
  }
  return "?";
}

std::string RegisterModel::describe_state(const State& s) {
  return "register=" + std::to_string(s);
}

// ---------------------------------------------------------------------------
// Search

namespace detail {

std::string format_op(std::size_t index, int client, Time call, std::optional<Time> ret,
                      const std::string& what) {
  // fmt, not operator+: g++ 12 at -O3 reports a false -Wrestrict inside
  // std::string's concatenation.
  return ret ? fmt::format("#{} client {} [{}, {}] {}", index, client, call, *ret, what)
             : fmt::format("#{} client {} [{}, inf) {}", index, client, call, what);
}

namespace {

constexpr std::uint32_t kNil = 0xffffffffu;

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The event list: entry 2k is op k's call, 2k+1 its return, `head` the
// sentinel in front. Lifting unlinks both entries of an op; unlifting in
// LIFO order relinks them exactly (dancing links).
class EventList {
 public:
  explicit EventList(const std::vector<SearchOp>& ops)
      : head_(static_cast<std::uint32_t>(2 * ops.size())),
        next_(2 * ops.size() + 1, kNil),
        prev_(2 * ops.size() + 1, kNil) {
    struct Ev {
      Time time;
      std::uint32_t kind;  // 0 call, 1 return (calls first at equal times)
      std::uint32_t entry;
    };
    std::vector<Ev> evs;
    evs.reserve(2 * ops.size());
    for (std::uint32_t k = 0; k < ops.size(); ++k) {
      evs.push_back({ops[k].call, 0, 2 * k});
      const Time ret = ops[k].unknown ? std::numeric_limits<Time>::max() : ops[k].ret;
      evs.push_back({ret, 1, 2 * k + 1});
    }
    std::sort(evs.begin(), evs.end(), [](const Ev& a, const Ev& b) {
      if (a.time != b.time) return a.time < b.time;
      if (a.kind != b.kind) return a.kind < b.kind;
      return a.entry < b.entry;
    });
    std::uint32_t last = head_;
    for (const Ev& e : evs) {
      next_[last] = e.entry;
      prev_[e.entry] = last;
      last = e.entry;
    }
  }

  std::uint32_t first() const { return next_[head_]; }
  std::uint32_t next(std::uint32_t e) const { return next_[e]; }

  void lift(std::uint32_t call) {
    unlink(call);
    unlink(call + 1);
  }
  void unlift(std::uint32_t call) {
    relink(call + 1);
    relink(call);
  }

 private:
  void unlink(std::uint32_t e) {
    next_[prev_[e]] = next_[e];
    if (next_[e] != kNil) prev_[next_[e]] = prev_[e];
  }
  void relink(std::uint32_t e) {
    next_[prev_[e]] = e;
    if (next_[e] != kNil) prev_[next_[e]] = e;
  }

  std::uint32_t head_;
  std::vector<std::uint32_t> next_;
  std::vector<std::uint32_t> prev_;
};

// The memo: configurations seen so far. A configuration is the linearized
// bitset, the state, and the normal-form constraint inherited from the last
// op (if that op had an unknown outcome: its number and the state before
// it; otherwise none). Keyed by a hash of (known-outcome bits, state,
// constraint). A new configuration is "covered" by a stored one with the
// same state, the same known-outcome bits, a subset of its unknown-outcome
// bits, and either the same constraint or none at all.
class Memo {
 public:
  Memo(std::size_t words, std::vector<std::uint64_t> known_mask)
      : words_(words), known_mask_(std::move(known_mask)) {}

  // Inserts unless covered; returns true if it was covered.
  bool covered_or_insert(std::uint64_t known_hash, std::uint32_t state, std::uint32_t after_op,
                         std::uint32_t before_state, const std::uint64_t* bits) {
    if (after_op != kNil) {
      auto it0 = heads_.find(key(known_hash, state, kNil, 0));
      if (it0 != heads_.end() && chain_covers(it0->second, state, kNil, 0, bits)) return true;
    }
    auto [it, inserted] = heads_.try_emplace(key(known_hash, state, after_op, before_state), kNil);
    if (!inserted && chain_covers(it->second, state, after_op, before_state, bits)) return true;
    const auto idx = static_cast<std::uint32_t>(nodes_.size());
    nodes_.push_back({state, after_op, before_state, it->second});
    it->second = idx;
    arena_.insert(arena_.end(), bits, bits + words_);
    return false;
  }

  std::size_t size() const { return nodes_.size(); }
  std::size_t approx_bytes() const {
    return arena_.capacity() * sizeof(std::uint64_t) + nodes_.capacity() * sizeof(Node) +
           heads_.size() * 48;
  }

 private:
  struct Node {
    std::uint32_t state;
    std::uint32_t after_op;
    std::uint32_t before_state;
    std::uint32_t next;
  };
  static std::uint64_t key(std::uint64_t known_hash, std::uint32_t state, std::uint32_t after_op,
                           std::uint32_t before_state) {
    std::uint64_t x = known_hash ^ splitmix64(state);
    x ^= splitmix64((std::uint64_t{after_op} << 32 | before_state) + 0x1234567ULL);
    return splitmix64(x);
  }
  bool chain_covers(std::uint32_t i, std::uint32_t state, std::uint32_t after_op,
                    std::uint32_t before_state, const std::uint64_t* bits) const {
    for (; i != kNil; i = nodes_[i].next) {
      const Node& nd = nodes_[i];
      if (nd.state == state && nd.after_op == after_op && nd.before_state == before_state &&
          covers(&arena_[std::size_t{i} * words_], bits))
        return true;
    }
    return false;
  }
  bool covers(const std::uint64_t* stored, const std::uint64_t* cur) const {
    for (std::size_t w = 0; w < words_; ++w) {
      if ((stored[w] & ~cur[w]) != 0) return false;
      if ((cur[w] & ~stored[w] & known_mask_[w]) != 0) return false;
    }
    return true;
  }

  std::size_t words_;
  std::vector<std::uint64_t> known_mask_;
  std::unordered_map<std::uint64_t, std::uint32_t> heads_;
  std::vector<Node> nodes_;
  std::vector<std::uint64_t> arena_;
};

struct Frame {
  std::uint32_t op;
  std::uint32_t prev_state;
  std::uint8_t phase;
};

}  // namespace

SearchResult search(const std::vector<SearchOp>& ops, StepFn step, ObserveFn observe,
                    const CheckOptions& options) {
  SearchResult res;
  if (ops.size() >= (kNil - 1) / 2) throw std::length_error("linearizability: history too large");
  const auto n = static_cast<std::uint32_t>(ops.size());
  const std::size_t words = (n + 63) / 64;

  std::vector<std::uint64_t> zobrist(n);
  std::vector<std::uint64_t> known_mask(std::max<std::size_t>(words, 1), 0);
  std::size_t known_total = 0;
  std::size_t unknown_total = 0;
  for (std::uint32_t k = 0; k < n; ++k) {
    zobrist[k] = splitmix64(0x5eed0000ULL + k);
    if (ops[k].unknown) {
      ++unknown_total;
    } else {
      ++known_total;
      known_mask[k / 64] |= std::uint64_t{1} << (k % 64);
    }
  }

  // Which unknown ops each op may observe (model hint), as bit rows indexed
  // by unknown-op rank, and for each unknown op the pending unknown ops
  // that may observe it (chain_pending).
  std::vector<std::uint32_t> unknown_rank(n, kNil);
  std::vector<std::uint32_t> unknown_ids;
  for (std::uint32_t k = 0; k < n; ++k) {
    if (ops[k].unknown) {
      unknown_rank[k] = static_cast<std::uint32_t>(unknown_ids.size());
      unknown_ids.push_back(k);
    }
  }
  const std::size_t uwords = (unknown_ids.size() + 63) / 64;
  const bool use_rows = std::size_t{n} * uwords <= (std::size_t{1} << 22);
  std::vector<std::uint64_t> observe_rows(use_rows ? std::size_t{n} * uwords : 0, 0);
  std::vector<std::vector<std::uint32_t>> chain_prev(n);
  std::vector<std::uint32_t> chain_pending(n, 0);
  for (std::uint32_t u : unknown_ids) {
    for (std::uint32_t y = 0; y < n; ++y) {
      if (y == u || !observe(u, y)) continue;
      if (use_rows)
        observe_rows[std::size_t{y} * uwords + unknown_rank[u] / 64] |=
            std::uint64_t{1} << (unknown_rank[u] % 64);
      if (ops[y].unknown) {
        chain_prev[y].push_back(u);
        ++chain_pending[u];
      }
    }
  }
  std::vector<std::uint64_t> worth(std::max<std::size_t>(uwords, 1), 0);
  std::vector<std::uint32_t> known_candidates;

  EventList list(ops);
  Memo memo(words, known_mask);
  std::vector<std::uint64_t> bits(std::max<std::size_t>(words, 1), 0);
  auto test = [&](std::uint32_t k) { return (bits[k / 64] >> (k % 64)) & 1U; };
  auto flip = [&](std::uint32_t k) { bits[k / 64] ^= std::uint64_t{1} << (k % 64); };

  std::vector<Frame> stack;
  stack.reserve(n);
  std::uint32_t state = 0;
  std::uint64_t known_hash = 0;
  std::size_t known_done = 0;
  std::size_t unknown_done = 0;
  // Candidates are tried in three phases: 0: known-outcome observers (ops
  // that never change the state: if one is allowed here, some completion
  // starts with it, so it is the only one tried: "forced"), 1: other
  // known-outcome ops, 2: unknown-outcome ops. `dead` means: backtrack from
  // this configuration.
  std::uint8_t phase = 0;
  bool dead = false;
  std::uint32_t entry = list.first();

  // Longest prefix, recorded at dead ends. `low_water` is the lowest stack
  // depth since the last recording: best[0..low_water) is still valid.
  std::int64_t best_known = -1;
  std::size_t low_water = 0;

  std::uint64_t next_budget_check = 0;
  const auto deadline = options.timeout.count() > 0
                            ? std::chrono::steady_clock::now() + options.timeout
                            : std::chrono::steady_clock::time_point::max();
  // Normal form: an unknown-outcome op u (taken from state s0 to su) may not
  // be directly followed by an op y that would do the same without it
  // (absorbs u: drop u) or that commutes with it (swap them; between two
  // unknown ops, only the lower-numbered one may go first). Every
  // linearization can be rewritten into this form, so the search stays
  // complete while never trying unknown ops that nothing observes.
  auto forbidden_after_unknown = [&](std::uint32_t u, std::uint32_t s0, std::uint32_t y,
                                     std::uint32_t s_uy) {
    ++res.steps;
    const std::int64_t s0y = step(s0, y);
    if (s0y < 0) return false;  // y needs u
    if (static_cast<std::uint32_t>(s0y) == s_uy) return true;
    if (!ops[y].unknown || y < u) {
      ++res.steps;
      const std::int64_t s0yu = step(static_cast<std::uint32_t>(s0y), u);
      if (s0yu >= 0 && static_cast<std::uint32_t>(s0yu) == s_uy) return true;
    }
    return false;
  };

  // Before a pass over unknown candidates: which unknown ops could an
  // available known op observe?
  auto prepare_unknown_pass = [&] {
    known_candidates.clear();
    for (std::uint32_t e = list.first(); e != kNil && (e & 1U) == 0; e = list.next(e))
      if (!ops[e / 2].unknown) known_candidates.push_back(e / 2);
    if (!use_rows) return;
    std::fill(worth.begin(), worth.end(), 0);
    for (std::uint32_t y : known_candidates) {
      const std::uint64_t* row = &observe_rows[std::size_t{y} * uwords];
      for (std::size_t w = 0; w < uwords; ++w) worth[w] |= row[w];
    }
  };
  // Is unknown op u worth trying: can an available known op, or a pending
  // unknown op, observe it?
  auto worth_trying = [&](std::uint32_t u) {
    if (chain_pending[u] > 0) return true;
    if (use_rows) return ((worth[unknown_rank[u] / 64] >> (unknown_rank[u] % 64)) & 1U) != 0;
    for (std::uint32_t y : known_candidates)
      if (observe(u, y)) return true;
    return false;
  };

  for (;;) {
    if (known_done == known_total) {
      res.verdict = Verdict::linearizable;
      res.prefix.clear();
      for (const Frame& f : stack) res.prefix.push_back(f.op);
      res.prefix_state = state;
      break;
    }
    if (res.steps >= next_budget_check) {
      next_budget_check = res.steps + 1024;
      if (options.max_steps != 0 && res.steps >= options.max_steps) {
        res.gave_up_reason = "step budget of " + std::to_string(options.max_steps) + " exhausted";
        break;
      }
      if (std::chrono::steady_clock::now() > deadline) {
        res.gave_up_reason = "timeout of " + std::to_string(options.timeout.count()) + " ms";
        break;
      }
      if (options.max_memo_bytes != 0 && memo.approx_bytes() > options.max_memo_bytes) {
        res.gave_up_reason = "memo memory budget of " + std::to_string(options.max_memo_bytes) +
                             " bytes exhausted";
        break;
      }
    }

    if (!dead && entry != kNil && (entry & 1U) == 0) {  // a call: a candidate to go next
      const std::uint32_t k = entry / 2;
      const SearchOp& op = ops[k];
      const bool has_unknown_top = !stack.empty() && ops[stack.back().op].unknown;
      if (op.unknown != (phase == 2) || (!op.unknown && op.observer != (phase == 0)) ||
          (op.unknown && op.same_input_pred >= 0 &&
           !test(static_cast<std::uint32_t>(op.same_input_pred))) ||
          (op.unknown && !worth_trying(k)) ||
          (has_unknown_top && !observe(stack.back().op, k))) {
        entry = list.next(entry);
        continue;
      }
      ++res.steps;
      const std::int64_t next_state = step(state, k);
      const auto ns = static_cast<std::uint32_t>(next_state);
      // An unknown op that changes nothing here is pointless: it can as well
      // stay pending.
      if (next_state < 0 || (op.unknown && ns == state) ||
          (has_unknown_top &&
           forbidden_after_unknown(stack.back().op, stack.back().prev_state, k, ns))) {
        entry = list.next(entry);
        continue;
      }
      const std::uint64_t h = op.unknown ? known_hash : known_hash ^ zobrist[k];
      flip(k);
      if (memo.covered_or_insert(h, ns, op.unknown ? k : kNil, op.unknown ? state : 0,
                                 bits.data())) {
        flip(k);
        if (phase == 0) {
          dead = true;  // a forced op leads to a failed configuration: so does this one
        } else {
          entry = list.next(entry);
        }
        continue;
      }
      stack.push_back({k, state, phase});
      list.lift(entry);
      if (op.unknown)
        for (std::uint32_t u : chain_prev[k]) --chain_pending[u];
      state = ns;
      known_hash = h;
      (op.unknown ? unknown_done : known_done) += 1;
      phase = 0;
      entry = list.first();
      continue;
    }

    if (!dead) {
      // Reached a return (or the end): no candidate before it works in this phase.
      if (phase == 0) {
        phase = 1;
        entry = list.first();
        continue;
      }
      if (phase == 1 && unknown_done < unknown_total) {
        phase = 2;
        prepare_unknown_pass();
        entry = list.first();
        continue;
      }
      if (static_cast<std::int64_t>(known_done) > best_known) {
        best_known = static_cast<std::int64_t>(known_done);
        res.prefix.resize(std::min(low_water, res.prefix.size()));
        for (std::size_t i = res.prefix.size(); i < stack.size(); ++i)
          res.prefix.push_back(stack[i].op);
        low_water = stack.size();
        res.prefix_state = state;
        res.stuck_op = entry == kNil ? -1 : static_cast<std::int64_t>(entry / 2);
        res.candidates.clear();
        for (std::uint32_t e = list.first(); e != kNil && e != entry && res.candidates.size() < 16;
             e = list.next(e)) {
          if ((e & 1U) == 0) res.candidates.push_back(e / 2);
        }
      }
    }
    // Backtrack.
    dead = false;
    if (stack.empty()) {
      res.verdict = Verdict::not_linearizable;
      break;
    }
    ++res.steps;
    const Frame f = stack.back();
    stack.pop_back();
    low_water = std::min(low_water, stack.size());
    list.unlift(2 * f.op);
    flip(f.op);
    state = f.prev_state;
    if (ops[f.op].unknown) {
      for (std::uint32_t u : chain_prev[f.op]) ++chain_pending[u];
      --unknown_done;
    } else {
      --known_done;
      known_hash ^= zobrist[f.op];
    }
    if (f.phase == 0) {
      // f.op is an observer allowed here: moving it to the front of any
      // completion keeps every state, so if this configuration had a
      // completion, one would start with f.op.
      dead = true;
      continue;
    }
    phase = f.phase;
    if (phase == 2) prepare_unknown_pass();
    entry = list.next(2 * f.op);
  }

  if (res.verdict == Verdict::gave_up && static_cast<std::int64_t>(known_done) > best_known) {
    // The current path is deeper than any dead end seen: report it instead.
    res.stuck_op = -1;
    res.candidates.clear();
    res.prefix.clear();
    for (const Frame& f : stack) res.prefix.push_back(f.op);
    res.prefix_state = state;
  }
  res.memo_entries = memo.size();
  return res;
}

}  // namespace detail
}  // namespace raftkit::sim

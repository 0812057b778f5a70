// explore/search.cpp — see search.hpp.
#include "explore/search.hpp"

#include "explore/hash.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>
#include <fstream>
#include <span>

#include <fmt/format.h>

namespace raftkit::explore {
namespace {

using Clock = std::chrono::steady_clock;

// Open addressing table of 64-bit state hashes, with what the search keeps
// per state. Key 0 is the empty slot.
struct Seen {
  std::uint32_t sleep = 0;  ///< the sleep set it was expanded with (SleepPool id)
  std::uint32_t slot = 0;   ///< breadth-first: its place in its level while pending
  std::uint8_t level = 0;   ///< breadth-first: the level first reached; deepening: the room expanded with
  bool pending = false;     ///< breadth-first: waiting in a level, not expanded yet
};

class Visited {
 public:
  Visited() : keys_(1u << 16), vals_(1u << 16) {}
  std::size_t size() const { return size_; }
  /// The entry of `key`, inserted (value-initialised) if absent; `fresh` says which.
  Seen& find(std::uint64_t key, bool& fresh) {
    if (key == 0) key = 1;
    if ((size_ + 1) * 4 > keys_.size() * 3) grow();
    const std::size_t mask = keys_.size() - 1;
    for (std::size_t i = key & mask;; i = (i + 1) & mask) {
      if (keys_[i] == 0) {
        keys_[i] = key;
        vals_[i] = Seen{};
        ++size_;
        fresh = true;
        return vals_[i];
      }
      if (keys_[i] == key) {
        fresh = false;
        return vals_[i];
      }
    }
  }
  template <class F>
  void for_each(F&& f) const {
    for (std::size_t i = 0; i < keys_.size(); ++i)
      if (keys_[i] != 0) f(keys_[i], vals_[i]);
  }

 private:
  void grow() {
    std::vector<std::uint64_t> keys(keys_.size() * 2);
    std::vector<Seen> vals(keys.size());
    const std::size_t mask = keys.size() - 1;
    for (std::size_t j = 0; j < keys_.size(); ++j) {
      if (keys_[j] == 0) continue;
      std::size_t i = keys_[j] & mask;
      while (keys[i] != 0) i = (i + 1) & mask;
      keys[i] = keys_[j];
      vals[i] = vals_[j];
    }
    keys_.swap(keys);
    vals_.swap(vals);
  }
  std::vector<std::uint64_t> keys_;
  std::vector<Seen> vals_;
  std::size_t size_ = 0;
};

// ---- sleep sets (partial-order reduction; README "Partial-order reduction")
//
// A state's sleep set holds events enabled in it that need not be tried
// there: each was tried at an ancestor, and every event since commutes with
// it (Model::independent), so trying it here reaches a state the search
// reaches through that ancestor, by the same number of events. Trying the
// events of a state in order, the child by the i-th event sleeps on the
// events tried before it and on the parent's sleepers, each if it commutes
// with the i-th. A state reached again with a sleep set that is not a
// superset of the one it was expanded with is expanded again, for the
// events asleep then and awake now only (the standard fix for sleep sets
// with a table of visited states).
struct Asleep {
  std::uint64_t id;  ///< event_id
  Event event;
  Footprint fp;
};
using Sleep = std::vector<Asleep>;  // small: a few events

bool asleep(const Sleep& z, std::uint64_t id) {
  return std::any_of(z.begin(), z.end(), [&](const Asleep& a) { return a.id == id; });
}

// Sleep sets as stored with visited states: their event ids in one arena,
// a count then the ids; a state keeps the offset (0: the empty set).
class SleepPool {
 public:
  SleepPool() : words_(1) {}
  std::uint32_t intern(const Sleep& z) {
    if (z.empty()) return 0;
    const auto at = static_cast<std::uint32_t>(words_.size());
    words_.push_back(z.size());
    for (const Asleep& a : z) words_.push_back(a.id);
    return at;
  }
  std::span<const std::uint64_t> get(std::uint32_t at) const {
    if (at == 0) return {};
    return {words_.data() + at + 1, static_cast<std::size_t>(words_[at])};
  }

 private:
  std::vector<std::uint64_t> words_;
};

// The schedule that led to a state: a shared list from the state back to the root.
struct Path {
  std::shared_ptr<const Path> parent;
  Event event;
};
using PathPtr = std::shared_ptr<const Path>;

std::vector<Event> unwind(const PathPtr& p) {
  std::vector<Event> out;
  for (const Path* q = p.get(); q; q = q->parent.get()) out.push_back(q->event);
  return {out.rbegin(), out.rend()};
}

class Timer {
 public:
  Timer(const SearchLimits& l, Clock::time_point start) : limits_(l), start_(start), last_report_(start_) {}
  double elapsed() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  /// True when the time budget is spent; reports progress once a second.
  bool tick(SearchResult& r) {
    if (++calls_ % 512 != 0) return false;
    const auto now = Clock::now();
    r.seconds = std::chrono::duration<double>(now - start_).count();
    if (limits_.progress && now - last_report_ > std::chrono::seconds(1)) {
      last_report_ = now;
      limits_.progress(r);
    }
    return limits_.seconds > 0 && r.seconds >= limits_.seconds;
  }

 private:
  const SearchLimits& limits_;
  Clock::time_point start_, last_report_;
  std::uint64_t calls_ = 0;
};

// What one expansion tried, for its children's sleep sets. The buffers
// are the searcher's, reused from one expansion to the next.
struct SleepBuffers {
  Sleep tried, child;
};

class Expansion {
 public:
  Expansion(bool por, const State& s, const Sleep& sleep, SleepBuffers& b) : por_(por), s_(s), sleep_(sleep), b_(b) {
    b_.tried.clear();
  }
  /// The sleep set of the child reached by `e`; `e` joins the events tried.
  const Sleep& child(std::uint64_t id, const Event& e, const Footprint& fp) {
    b_.child.clear();
    if (por_) {
      for (const Asleep& z : sleep_)
        if (Model::independent(s_, z.fp, fp)) b_.child.push_back(z);
      for (const Asleep& z : b_.tried)
        if (Model::independent(s_, z.fp, fp)) b_.child.push_back(z);
      b_.tried.push_back({id, e, fp});
    }
    return b_.child;
  }

 private:
  bool por_;
  const State& s_;
  const Sleep& sleep_;
  SleepBuffers& b_;
};

// The ids of `old` not in `z` (the events asleep before, awake now).
std::vector<std::uint64_t> woken(std::span<const std::uint64_t> old, const Sleep& z) {
  std::vector<std::uint64_t> out;
  for (std::uint64_t id : old)
    if (!asleep(z, id)) out.push_back(id);
  return out;
}

Sleep intersect(const Sleep& z, std::span<const std::uint64_t> ids) {
  Sleep out;
  for (const Asleep& a : z)
    if (std::find(ids.begin(), ids.end(), a.id) != ids.end()) out.push_back(a);
  return out;
}

// What both searches keep: the model, the limits and their clock, the
// result, the states seen and the sleep sets they were expanded with.
class Search {
 protected:
  // `start`: when the search began (iterative deepening's iterations share one budget).
  Search(Model& model, const SearchLimits& limits, SearchResult& r, Clock::time_point start = Clock::now())
      : model_(model), limits_(limits), timer_(limits, start), r_(r) {}

  // Where the search starts: the state limits_.from leads to. False (the
  // violation and the schedule in r_) if that schedule breaks an invariant.
  bool start(State& root) {
    root = model_.initial();
    for (const Event& e : limits_.from) {
      std::optional<Violation> bad;
      root = model_.apply(root, e, bad);
      if (bad) {
        r_.violation = std::move(bad);
        r_.schedule = limits_.from;
        return false;
      }
    }
    return true;
  }

  Model& model_;
  const SearchLimits& limits_;
  Timer timer_;
  SearchResult& r_;
  Visited visited_;
  SleepPool pool_;
};

class BreadthFirst : Search {
 public:
  BreadthFirst(Model& model, const SearchLimits& limits, SearchResult& r) : Search(model, limits, r) {}

  void run() {
    State root;
    if (!start(root)) return finish();
    level_.push_back({std::move(root), nullptr, {}, {}, false});
    bool fresh = false;
    visited_.find(level_.front().state.hash, fresh) = Seen{0, 0, 0, true};
    r_.distinct = 1;
    const int depth = model_.config().depth;
    for (int d = 0; d < depth && !level_.empty(); ++d) {
      next_.clear();
      for (std::size_t i = 0; i < level_.size(); ++i) {
        if (!expand(d, i)) return finish();
        level_[i] = Item{};  // free the expanded state
        if (timer_.tick(r_)) {
          r_.truncated = true;
          return finish();
        }
      }
      r_.depth = d + 1;
      level_.swap(next_);
    }
    r_.complete = !r_.truncated;
    finish();
  }

 private:
  struct Item {
    State state;
    PathPtr path;
    Sleep sleep;
    std::vector<std::uint64_t> only;  ///< restricted: the events to try (a re-expansion)
    bool restricted = false;
  };

  void finish() {
    r_.seconds = timer_.elapsed();
    r_.reexpanded = reexpanded_;
    if (limits_.visited_out)
      visited_.for_each([&](std::uint64_t h, const Seen& v) { limits_.visited_out->emplace_back(h, v.level); });
  }

  // Expands level_[i] at depth d; false on a violation.
  bool expand(int d, std::size_t i) {
    Item& item = level_[i];
    if (!item.restricted) {
      bool fresh = false;
      Seen& v = visited_.find(item.state.hash, fresh);
      v.pending = false;
      v.sleep = pool_.intern(item.sleep);
    }
    model_.enabled(item.state, events_);
    Expansion x(limits_.por, item.state, item.sleep, buffers_);
    for (const Event& e : events_) {
      const std::uint64_t id = event_id(e);
      if (asleep(item.sleep, id)) continue;
      if (item.restricted && std::find(item.only.begin(), item.only.end(), id) == item.only.end()) continue;
      std::optional<Violation> bad;
      State child = model_.apply(item.state, e, bad);
      ++r_.transitions;
      if (bad) {
        r_.violation = std::move(bad);
        r_.schedule = limits_.from;
        const std::vector<Event> path = unwind(item.path);
        r_.schedule.insert(r_.schedule.end(), path.begin(), path.end());
        r_.schedule.push_back(e);
        r_.depth = d + 1;
        return false;
      }
      const Sleep& z = x.child(id, e, model_.footprint());
      reached(d, i, std::move(child), z, [&] { return std::make_shared<const Path>(Path{item.path, e}); });
    }
    return true;
  }

  // A child reached at depth d + 1 with sleep set z.
  template <class MakePath>
  void reached(int d, std::size_t i, State&& child, const Sleep& z, MakePath&& path) {
    const int depth = model_.config().depth;
    const auto lvl = static_cast<std::uint8_t>(d + 1);
    bool fresh = false;
    Seen& v = visited_.find(child.hash, fresh);
    if (fresh) {
      ++r_.distinct;
      v.level = lvl;
      if (d + 1 >= depth) return;  // a leaf: never expanded
      if (next_.size() >= limits_.max_frontier) {
        r_.truncated = true;
        return;
      }
      v.pending = true;
      v.slot = static_cast<std::uint32_t>(next_.size());
      next_.push_back({std::move(child), path(), z, {}, false});
      return;
    }
    if (v.pending) {  // waiting in this level (after i) or the next: it will try what both leave awake
      std::vector<Item>& in = v.level == lvl ? next_ : level_;
      if (&in == &level_ && v.slot <= i) return;
      Sleep& w = in[v.slot].sleep;
      std::erase_if(w, [&](const Asleep& a) { return !asleep(z, a.id); });
      return;
    }
    if (d + 1 >= depth || v.sleep == 0) return;  // expanded with nothing asleep, or no room left
    const std::span<const std::uint64_t> old = pool_.get(v.sleep);
    std::vector<std::uint64_t> awake = woken(old, z);
    if (awake.empty()) return;
    v.sleep = pool_.intern(intersect(z, old));
    ++reexpanded_;
    next_.push_back({std::move(child), path(), z, std::move(awake), true});
  }

  std::vector<Item> level_, next_;
  std::vector<Event> events_;
  SleepBuffers buffers_;
  std::uint64_t reexpanded_ = 0;
};

SearchResult bfs(Model& model, const SearchLimits& limits) {
  SearchResult r;
  BreadthFirst(model, limits, r).run();
  return r;
}

class Deepening : Search {
 public:
  Deepening(Model& model, const SearchLimits& limits, SearchResult& r, Clock::time_point start)
      : Search(model, limits, r, start) {}

  // Explores to `limit` events; false once a violation is found or the time is up.
  bool run(int limit) {
    State root;
    return start(root) && dfs(root, limit, {});
  }

  std::size_t distinct() const { return visited_.size() + 1; }  // the root is not in the table
  Timer& timer() { return timer_; }

 private:
  // Explores below `s` (asleep: `sleep`) with `room` more events; false
  // once a violation is found or the time is up. A state is explored again
  // when reached with more room, or with a sleep set that is not a
  // superset of the one it was explored with.
  bool dfs(const State& s, int room, const Sleep& sleep) {
    std::vector<Event> events;
    model_.enabled(s, events);
    SleepBuffers buffers;
    Expansion x(limits_.por, s, sleep, buffers);
    for (const Event& e : events) {
      const std::uint64_t id = event_id(e);
      if (asleep(sleep, id)) continue;
      std::optional<Violation> bad;
      State child = model_.apply(s, e, bad);
      ++r_.transitions;
      path_.push_back(e);
      if (bad) {
        r_.violation = std::move(bad);
        r_.schedule = limits_.from;
        r_.schedule.insert(r_.schedule.end(), path_.begin(), path_.end());
        return false;
      }
      const Sleep z = x.child(id, e, model_.footprint());
      r_.depth = std::max(r_.depth, static_cast<int>(path_.size()));
      bool fresh = false;
      Seen& v = visited_.find(child.hash, fresh);
      const auto left = static_cast<std::uint8_t>(room - 1);
      if (fresh) {
        v.level = left;
        v.sleep = pool_.intern(z);
      }
      if (room > 1 && (fresh || again(v, left, z))) {
        if (!dfs(child, room - 1, z)) return false;
      }
      path_.pop_back();
      r_.distinct = distinct();  // for the progress lines
      if (timer_.tick(r_)) {
        r_.truncated = true;
        return false;
      }
    }
    return true;
  }
  // Whether a state seen before must be explored again with `left` room
  // and sleep set z; updates what is kept for it.
  bool again(Seen& v, std::uint8_t left, const Sleep& z) {
    const bool covered = v.sleep == 0 || woken(pool_.get(v.sleep), z).empty();
    if (v.level >= left && covered) return false;
    if (left > v.level) {
      v.level = left;
      v.sleep = pool_.intern(z);
    } else if (left == v.level) {
      v.sleep = pool_.intern(intersect(z, pool_.get(v.sleep)));
    }
    return true;
  }

  std::vector<Event> path_;
};

SearchResult deepening(Model& model, const SearchLimits& limits) {
  SearchResult r;
  const Clock::time_point start = Clock::now();
  std::optional<Deepening> last;
  for (int limit = std::clamp(limits.dfs_start, 1, model.config().depth); limit <= model.config().depth; ++limit) {
    last.emplace(model, limits, r, start);
    r.depth = 0;
    const bool finished = last->run(limit);
    r.distinct = last->distinct();
    if (!finished) break;
    if (limit == model.config().depth) r.complete = true;
  }
  r.seconds = last ? last->timer().elapsed() : 0;
  return r;
}

}  // namespace

SearchResult search(Model& model, const SearchLimits& limits) {
  const std::clock_t cpu = std::clock();
  SearchResult r = limits.dfs ? deepening(model, limits) : bfs(model, limits);
  r.cpu_seconds = static_cast<double>(std::clock() - cpu) / CLOCKS_PER_SEC;
  return r;
}

namespace {

bool is_enabled(Model& model, const State& s, const Event& e) {
  std::vector<Event> events;
  model.enabled(s, events);
  const std::uint64_t id = event_id(e);
  return std::any_of(events.begin(), events.end(), [&](const Event& x) { return event_id(x) == id; });
}

// Whether a and b (enabled in s, with these footprints) commute; else why not.
std::string commute(Model& model, const State& s, const Event& a, const Event& b) {
  std::optional<Violation> bad_a, bad_ab, bad_b, bad_ba;
  const State sa = model.apply(s, a, bad_a);
  if (!is_enabled(model, sa, b)) return "the first disables the second";
  const State sab = model.apply(sa, b, bad_ab);
  const State sb = model.apply(s, b, bad_b);
  if (!is_enabled(model, sb, a)) return "the second disables the first";
  const State sba = model.apply(sb, a, bad_ba);
  // A violation ends the search: all states after one are one (a sink).
  const bool bad1 = bad_a || bad_ab, bad2 = bad_b || bad_ba;
  if (bad1 != bad2) return "a violation in one order only";
  if (!bad1 && sab.hash != sba.hash) return "the two orders reach different states";
  return {};
}

}  // namespace

IndependenceCheck check_independence(Model& model, std::size_t max_states) {
  IndependenceCheck out;
  Visited visited;
  std::vector<State> level{model.initial()}, next;
  std::vector<Event> events;
  for (int d = 0; d < model.config().depth && !level.empty(); ++d) {
    next.clear();
    for (const State& s : level) {
      if (++out.states > max_states) return out;
      model.enabled(s, events);
      std::vector<Footprint> fps;
      std::vector<State> children;
      for (const Event& e : events) {
        std::optional<Violation> bad;
        children.push_back(model.apply(s, e, bad));
        fps.push_back(model.footprint());
      }
      for (std::size_t i = 0; i < events.size(); ++i) {
        for (std::size_t j = i + 1; j < events.size(); ++j) {
          if (!Model::independent(s, fps[i], fps[j])) continue;
          ++out.pairs;
          const std::string why = commute(model, s, events[i], events[j]);
          if (why.empty()) continue;
          out.failure = fmt::format("{}: '{}' and '{}' at depth {} in\n{}", why, model.describe(s, events[i]),
                                    model.describe(s, events[j]), d, model.describe_state(s));
          return out;
        }
      }
      for (State& c : children) {
        bool fresh = false;
        visited.find(c.hash, fresh);
        if (fresh) next.push_back(std::move(c));
      }
    }
    level.swap(next);
  }
  return out;
}

Replay replay_events(Model& model, const std::vector<Event>& schedule) {
  Replay out;
  State s = model.initial();
  for (const Event& e : schedule) {
    std::string line = model.describe(s, e);
    s = model.apply(s, e, out.violation);
    // A note for the reader after "  # " (replay ignores it): the network after the event.
    line += fmt::format("  # {} in flight", s.msgs.size());
    out.lines.push_back(std::move(line));
    if (out.violation) break;
  }
  out.lines.push_back("# final state:");
  std::string st = model.describe_state(s);
  for (std::size_t p = 0; p < st.size();) {
    const std::size_t nl = st.find('\n', p);
    out.lines.push_back("#" + st.substr(p, nl - p));
    p = nl == std::string::npos ? st.size() : nl + 1;
  }
  return out;
}

bool read_lines(const std::string& path, std::vector<std::string>& out) {
  std::ifstream in(path);
  if (!in) return false;
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return true;
}

std::vector<Event> parse_schedule(Model& model, const std::vector<std::string>& lines, std::string& error) {
  std::vector<Event> schedule;
  State s = model.initial();
  std::vector<Event> events;
  for (std::string raw : lines) {
    if (raw.empty() || raw.front() == '#') continue;
    if (const auto note = raw.find("  # "); note != std::string::npos) raw.resize(note);
    model.enabled(s, events);
    const Event* found = nullptr;
    for (const Event& e : events)
      if (model.describe(s, e) == raw) found = &e;
    if (!found) {
      error = "no enabled event matches: " + raw + "\nenabled here:";
      for (const Event& e : events) error += "\n  " + model.describe(s, e);
      return {};
    }
    schedule.push_back(*found);
    std::optional<Violation> bad;
    s = model.apply(s, *found, bad);
    if (bad) break;
  }
  return schedule;
}

Replay replay_lines(Model& model, const std::vector<std::string>& lines) {
  std::string error;
  const std::vector<Event> schedule = parse_schedule(model, lines, error);
  if (!error.empty()) {
    Replay r;
    r.error = std::move(error);
    return r;
  }
  return replay_events(model, schedule);
}

}  // namespace raftkit::explore

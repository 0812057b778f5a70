// explore/search.cpp — see search.hpp.
#include "explore/search.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

#include <fmt/format.h>

namespace raftkit::explore {
namespace {

using Clock = std::chrono::steady_clock;

// Open addressing table of 64-bit state hashes with a small value each
// (the remaining depth, for iterative deepening). Key 0 is the empty slot.
class Visited {
 public:
  Visited() : keys_(1u << 16), vals_(1u << 16) {}
  std::size_t size() const { return size_; }
  /// Inserts `key` with `val`, or raises its value to `val`; returns true
  /// if the key was absent or its value was lower.
  bool raise(std::uint64_t key, std::uint8_t val) {
    if (key == 0) key = 1;
    if ((size_ + 1) * 4 > keys_.size() * 3) grow();
    const std::size_t mask = keys_.size() - 1;
    for (std::size_t i = key & mask;; i = (i + 1) & mask) {
      if (keys_[i] == 0) {
        keys_[i] = key;
        vals_[i] = val;
        ++size_;
        return true;
      }
      if (keys_[i] == key) {
        if (vals_[i] >= val) return false;
        vals_[i] = val;
        return true;
      }
    }
  }

 private:
  void grow() {
    std::vector<std::uint64_t> keys(keys_.size() * 2);
    std::vector<std::uint8_t> vals(keys.size());
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
  std::vector<std::uint8_t> vals_;
  std::size_t size_ = 0;
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
  explicit Timer(const SearchLimits& l) : limits_(l), start_(Clock::now()), last_report_(start_) {}
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

SearchResult bfs(Model& model, const SearchLimits& limits) {
  SearchResult r;
  Timer timer(limits);
  Visited visited;
  struct Item {
    State state;
    PathPtr path;
  };
  std::vector<Item> level, next;
  level.push_back({model.initial(), nullptr});
  visited.raise(level.front().state.hash, 1);
  r.distinct = 1;
  std::vector<Event> events;
  const int depth = model.config().depth;
  bool out_of_time = false;
  for (int d = 0; d < depth && !level.empty() && !out_of_time; ++d) {
    next.clear();
    for (std::size_t i = 0; i < level.size(); ++i) {
      Item& item = level[i];
      model.enabled(item.state, events);
      for (const Event& e : events) {
        std::optional<Violation> bad;
        State child = model.apply(item.state, e, bad);
        ++r.transitions;
        if (bad) {
          r.violation = std::move(bad);
          r.schedule = unwind(item.path);
          r.schedule.push_back(e);
          r.depth = d + 1;
          r.seconds = timer.elapsed();
          return r;
        }
        if (!visited.raise(child.hash, 1)) continue;
        ++r.distinct;
        if (d + 1 < depth) {
          if (next.size() >= limits.max_frontier) {
            r.truncated = true;
            continue;
          }
          next.push_back({std::move(child), std::make_shared<const Path>(Path{item.path, e})});
        }
      }
      item = Item{};  // free the expanded state
      if (timer.tick(r)) {
        out_of_time = true;
        r.truncated = true;
        break;
      }
    }
    r.depth = d + 1;
    level.swap(next);
  }
  r.complete = !r.truncated;
  r.seconds = timer.elapsed();
  return r;
}

class Deepening {
 public:
  Deepening(Model& model, const SearchLimits& limits, SearchResult& r) : model_(model), timer_(limits), r_(r) {}

  // Explores below `s` with `room` more events; false once a violation is
  // found or the time is up.
  bool dfs(const State& s, int room) {
    std::vector<Event> events;
    model_.enabled(s, events);
    for (const Event& e : events) {
      std::optional<Violation> bad;
      State child = model_.apply(s, e, bad);
      ++r_.transitions;
      path_.push_back(e);
      if (bad) {
        r_.violation = std::move(bad);
        r_.schedule = path_;
        return false;
      }
      r_.depth = std::max(r_.depth, static_cast<int>(path_.size()));
      if (room > 1 && visited_.raise(child.hash, static_cast<std::uint8_t>(room - 1))) {
        if (!dfs(child, room - 1)) return false;
      } else if (room == 1) {
        visited_.raise(child.hash, 0);
      }
      path_.pop_back();
      if (timer_.tick(r_)) {
        r_.truncated = true;
        return false;
      }
    }
    return true;
  }
  std::size_t distinct() const { return visited_.size(); }
  Timer& timer() { return timer_; }

 private:
  Model& model_;
  Timer timer_;
  SearchResult& r_;
  Visited visited_;
  std::vector<Event> path_;
};

SearchResult deepening(Model& model, const SearchLimits& limits) {
  SearchResult r;
  const State root = model.initial();
  std::optional<Deepening> last;
  for (int limit = std::clamp(limits.dfs_start, 1, model.config().depth); limit <= model.config().depth; ++limit) {
    last.emplace(model, limits, r);
    r.depth = 0;
    const bool finished = last->dfs(root, limit);
    r.distinct = last->distinct() + 1;
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

Replay replay_lines(Model& model, const std::vector<std::string>& lines) {
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
      Replay r;
      r.error = "no enabled event matches: " + raw + "\nenabled here:";
      for (const Event& e : events) r.error += "\n  " + model.describe(s, e);
      return r;
    }
    schedule.push_back(*found);
    std::optional<Violation> bad;
    s = model.apply(s, *found, bad);
    if (bad) break;
  }
  return replay_events(model, schedule);
}

}  // namespace raftkit::explore

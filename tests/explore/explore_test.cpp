// The explorer bites and stays quiet where it should: every planted core bug
// is found within its preset's bound (explore/presets.hpp), its schedule
// replays to the same violation, and the unbugged standard configurations,
// cut to a depth CI can afford, are searched exhaustively without one.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "explore/presets.hpp"
#include "explore/search.hpp"
#include "sim/config.hpp"

using namespace raftkit::explore;

namespace {

SearchResult run(const Config& c, double seconds) {
  Model model(c);
  SearchLimits limits;
  limits.seconds = seconds;
  return search(model, limits);
}

}  // namespace

TEST_CASE("every planted core bug is found within its bound, and its schedule replays", "[explore][bugs]") {
  for (const Preset& p : presets()) {
    if (p.config.bugs == 0) continue;
    INFO(p.name);
    const SearchResult r = run(p.config, 20);
    REQUIRE(r.violation);
    fmt::print("{}: {} ({} events, {} distinct states, {:.2f} s)\n", p.name, r.violation->kind, r.schedule.size(),
               r.distinct, r.seconds);
    // The schedule, written as text and read back, reaches the same violation.
    Model model(p.config);
    const Replay written = replay_events(model, r.schedule);
    REQUIRE(written.violation);
    const Replay again = replay_lines(model, written.lines);
    REQUIRE(again.error.empty());
    REQUIRE(again.violation);
    CHECK(again.violation->kind == r.violation->kind);
  }
}

TEST_CASE("the unbugged standard configurations show no violation to a bound", "[explore][clean]") {
  for (const Preset& p : presets()) {
    if (p.config.bugs != 0) continue;
    INFO(p.name);
    Config c = p.config;
    c.depth = std::min(c.depth, 9);  // CI's share; the README gives the deeper runs
    const SearchResult r = run(c, 30);
    if (r.violation) FAIL(r.violation->kind << ": " << r.violation->what);
    CHECK(r.complete);
    CHECK(r.distinct > 1000);
    fmt::print("{} to depth {}: {} distinct states, {:.2f} s\n", p.name, c.depth, r.distinct, r.seconds);
  }
}

TEST_CASE("breadth-first and iterative deepening agree on a bug's presence", "[explore][dfs]") {
  Config c = *find_preset("bug-reply_before_persist");
  Model model(c);
  SearchLimits limits;
  limits.dfs = true;
  limits.seconds = 20;
  const SearchResult r = search(model, limits);
  REQUIRE(r.violation);
  const SearchResult b = run(c, 20);
  REQUIRE(b.violation);
  CHECK(b.schedule.size() <= r.schedule.size());
}

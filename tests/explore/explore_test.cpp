// The explorer bites and stays quiet where it should: every planted core bug
// whose preset fits CI's time is found within the preset's bound by the
// breadth-first search and its schedule replays, written as text, to the
// same violation; the schedules kept in traces/ (one bug beyond that
// bound, one found shorter since) still reach their violation; and the
// unbugged standard configurations, cut to a depth CI can afford, are
// searched exhaustively without a violation. The bugs' cases need a build with planted bugs.
#include <algorithm>

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "explore/presets.hpp"
#include "explore/search.hpp"

using namespace raftkit::explore;

namespace {

// A search of `c` from where the preset `p` starts.
SearchLimits limits_for(Model& model, const Preset& p) {
  SearchLimits limits;
  std::string error;
  limits.from = parse_schedule(model, p.from, error);
  INFO(error);
  REQUIRE(error.empty());
  return limits;
}

SearchResult run(const Config& c, double seconds, bool dfs = false, const Preset& p = {}) {
  Model model(c);
  SearchLimits limits = limits_for(model, p);
  limits.seconds = seconds;
  limits.dfs = dfs;
  limits.dfs_start = c.depth;
  return search(model, limits);
}

// A trace kept in traces/ (empty if there is none by that name).
std::vector<std::string> trace(const std::string& name) {
  std::vector<std::string> out;
  read_lines(std::string(RAFTKIT_EXPLORE_TRACES) + "/" + name, out);
  return out;
}

}  // namespace

#ifdef RAFTKIT_PLANTED_BUGS
TEST_CASE("every planted core bug within CI's bound is found, and its schedule replays", "[explore][bugs]") {
  int found = 0;
  for (const Preset& p : presets()) {
    if (p.config.bugs.empty() || !p.beyond.empty()) continue;
    INFO(p.name);
    const SearchResult r = run(p.config, 90, p.dfs, p);  // wall-clock: generous for a shared machine
    REQUIRE(r.violation);
    ++found;
    fmt::print("{}: {} after {} events ({} distinct states, {:.2f} s)\n", p.name, r.violation->kind,
               r.schedule.size(), r.distinct, r.seconds);
    Model model(p.config);
    const Replay written = replay_events(model, r.schedule);
    REQUIRE(written.violation);
    const Replay again = replay_lines(model, written.lines);
    REQUIRE(again.error.empty());
    REQUIRE(again.violation);
    CHECK(again.violation->kind == r.violation->kind);
  }
  CHECK(found == 12);
}

TEST_CASE("a schedule kept by hand for a planted bug still reaches its violation", "[explore][bugs][traces]") {
  // Both were written by hand while the search could not reach them:
  // commit_previous_term's (19 events) is now found depth-first,
  // truncate_matched's (18 events, ending in a leader without a committed
  // entry) is longer than the 12 the search finds.
  int replayed = 0;
  for (const Preset& p : presets()) {
    if (p.config.bugs.empty()) continue;
    const auto lines = trace(p.name.substr(4) + ".txt");
    if (lines.empty()) continue;
    INFO(p.name);
    ++replayed;
    Model model(p.config);
    const Replay r = replay_lines(model, lines);
    INFO(r.error);
    REQUIRE(r.error.empty());
    REQUIRE(r.violation);
    CHECK(r.violation->kind == "leader completeness");
    // Without the bug the same schedule reaches no violation (or cannot
    // even be played: the bug is what makes its later events possible).
    Config fixed = p.config;
    fixed.bugs = {};
    Model clean(fixed);
    CHECK(!replay_lines(clean, lines).violation);
  }
  CHECK(replayed == 2);
}

#endif

// The quorum check once judged a commit by the configuration after the
// event that made it: the leader commits the joint entry with the old
// configuration ({1,2,3}: itself and n3), applies it, and the check then
// wanted it on a majority of {2,3}, where the wiped n2 holds nothing. It
// now judges by the configuration the leader counted with.
TEST_CASE("a commit is judged by the configuration that counted it", "[explore][clean]") {
  const auto lines = trace("std3_committed_on_quorum.txt");
  REQUIRE(lines.size() > 14);
  Config c;
  for (const Preset& p : presets())
    if (p.name == "std3") c = p.config;
  c.depth = 14;
  Model model(c);
  const Replay r = replay_lines(model, lines);
  INFO(r.error);
  REQUIRE(r.error.empty());
  CHECK(!r.violation);
}

TEST_CASE("the start kept for std3's way back (n4 joined) still replays", "[explore][clean]") {
  // traces/std3_joined.txt: std3's spare added and promoted (README,
  // "Standard configurations"), the start of a by-hand search of the way
  // back from four voters to three.
  const auto lines = trace("std3_joined.txt");
  REQUIRE(lines.size() > 80);
  Model model(*find_preset("std3"));
  std::string error;
  const std::vector<Event> events = parse_schedule(model, lines, error);
  INFO(error);
  REQUIRE(error.empty());
  const Replay r = replay_events(model, events);
  REQUIRE(!r.violation);
  CHECK(std::find(r.lines.begin(), r.lines.end(), "#  in flight: 0 message(s)") != r.lines.end());
  CHECK(std::any_of(r.lines.begin(), r.lines.end(), [](const std::string& l) {
    return l.starts_with("#  n1: leader term 1") && l.find(" 4/1") != std::string::npos;
  }));
}

TEST_CASE("the unbugged standard configurations show no violation to a bound", "[explore][clean]") {
  for (const Preset& p : presets()) {
    if (!p.config.bugs.empty()) continue;
    INFO(p.name);
    Config c = p.config;
    c.depth = std::min(c.depth, p.name == "std3" ? 11 : 12);  // CI's share; the README gives deeper runs
    const SearchResult r = run(c, 60, false, p);
    if (r.violation) FAIL(r.violation->kind << ": " << r.violation->what);
    CHECK(r.complete);
    CHECK(r.distinct > 1000);
    fmt::print("{} to depth {}: {} distinct states, {:.2f} s\n", p.name, c.depth, r.distinct, r.seconds);
  }
}

#ifdef RAFTKIT_PLANTED_BUGS  // on a planted bug
TEST_CASE("iterative deepening finds what breadth-first finds, never shorter", "[explore][dfs]") {
  const auto preset = find_preset("bug-votes_by_id");
  REQUIRE(preset);
  const Config c = *preset;
  Model model(c);
  SearchLimits limits;
  limits.dfs = true;
  limits.seconds = 20;
  const SearchResult d = search(model, limits);
  REQUIRE(d.violation);
  const SearchResult b = run(c, 20);
  REQUIRE(b.violation);
  CHECK(b.schedule.size() <= d.schedule.size());
}

#endif

TEST_CASE("sleep sets reach every state the full search reaches, at the same depth", "[explore][por]") {
  // The property the partial-order reduction keeps (README): the reduced
  // breadth-first search visits exactly the states of the full one, each
  // first at the same level, so every state's invariants are checked and a
  // shortest counterexample stays as short; it applies fewer events.
  for (const Preset& p : presets()) {
    if (!p.config.bugs.empty()) continue;
    INFO(p.name);
    Config c = p.config;
    c.depth = p.name == "replace4" ? 12 : p.name == "leader3" ? 6 : 9;
    std::vector<std::pair<std::uint64_t, std::uint8_t>> full, reduced;
    Model m1(c);
    SearchLimits limits = limits_for(m1, p);
    limits.por = false;
    limits.visited_out = &full;
    const SearchResult a = search(m1, limits);
    limits.por = true;
    limits.visited_out = &reduced;
    Model m2(c);
    const SearchResult b = search(m2, limits);
    REQUIRE(a.complete);
    REQUIRE(b.complete);
    std::sort(full.begin(), full.end());
    std::sort(reduced.begin(), reduced.end());
    CHECK(full.size() > 1000);
    CHECK(full == reduced);
    CHECK(b.transitions < a.transitions);
    fmt::print("{} to depth {}: {} states; events applied {} without sleep sets, {} with\n", p.name, c.depth,
               full.size(), a.transitions, b.transitions);
  }
}

TEST_CASE("every pair of events the reduction calls independent commutes", "[explore][por]") {
  // Model::independent is checked against the model: both orders possible,
  // one state, one verdict (configurations with every kind of event).
  std::vector<Config> configs;
  for (const Preset& p : presets())
    if (p.config.bugs.empty()) configs.push_back(p.config);
  Config all;
  all.nodes = 3;
  all.spares = 1;
  all.crashes = 2;
  all.wipes = 1;
  all.drops = 1;
  all.dups = 1;
  all.proposals = 2;
  all.changes = 2;
  all.demotions = true;
  all.transfers = 1;
  configs.push_back(all);
  for (Config c : configs) {
    c.depth = 8;
    Model model(c);
    const IndependenceCheck ic = check_independence(model, 4000);
    INFO(c.to_args());
    INFO(ic.failure);
    CHECK(ic.failure.empty());
    CHECK(ic.pairs > 100);
  }
}

TEST_CASE("independent deliveries commute to one state", "[explore][model]") {
  // Two nodes campaign; their vote requests to the third node and to each
  // other are delivered in both orders: one state, one hash.
  Config c;
  c.timeouts = 2;
  Model model(c);
  std::optional<Violation> bad;
  State s = model.initial();
  std::vector<Event> events;
  for (int k : {0, 1}) {
    model.enabled(s, events);
    const auto it = std::find_if(events.begin(), events.end(),
                                 [&](const Event& e) { return e.kind == EventKind::timeout && e.node == k; });
    REQUIRE(it != events.end());
    s = model.apply(s, *it, bad);
  }
  model.enabled(s, events);
  std::vector<Event> to_n3;
  std::copy_if(events.begin(), events.end(), std::back_inserter(to_n3), [&](const Event& e) {
    return e.kind == EventKind::deliver && model.describe(s, e).find("->n3 vote") != std::string::npos;
  });
  std::vector<Event> to_n1;
  std::copy_if(events.begin(), events.end(), std::back_inserter(to_n1), [&](const Event& e) {
    return e.kind == EventKind::deliver && model.describe(s, e).find("->n1 vote") != std::string::npos;
  });
  REQUIRE(!to_n3.empty());
  REQUIRE(!to_n1.empty());
  const State ab = model.apply(model.apply(s, to_n3[0], bad), to_n1[0], bad);
  const State ba = model.apply(model.apply(s, to_n1[0], bad), to_n3[0], bad);
  REQUIRE(!bad);
  CHECK(ab.hash == ba.hash);
  CHECK(ab.hash != s.hash);
}

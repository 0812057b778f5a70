#include "sim/linearizability.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <limits>
#include <random>
#include <tuple>

namespace {

using raftkit::sim::check;
using raftkit::sim::CheckOptions;
using raftkit::sim::CheckResult;
using raftkit::sim::CounterModel;
using raftkit::sim::History;
using raftkit::sim::RegisterModel;
using raftkit::sim::Time;
using raftkit::sim::Verdict;

using Reg = RegisterModel;
using Ctr = CounterModel;
using RIn = RegisterModel::Input;
using ROut = RegisterModel::Output;
using CIn = CounterModel::Input;
using COut = CounterModel::Output;

template <class M>
Verdict verdict(const History<M>& h) {
  CheckResult r = check(h);
  INFO(r.explanation);
  return r.verdict;
}

// ---------------------------------------------------------------------------
// Register, hand-written

TEST_CASE("register: trivial histories", "[linearizability]") {
  History<Reg> h;
  CHECK(verdict(h) == Verdict::linearizable);
  h.add(0, 0, 10, RIn::read(), ROut::read(0));  // initial value is 0
  CHECK(verdict(h) == Verdict::linearizable);
  h.add(0, 20, 30, RIn::write(7), ROut::none());
  h.add(1, 40, 50, RIn::read(), ROut::read(7));
  CHECK(verdict(h) == Verdict::linearizable);
}

TEST_CASE("register: stale read after a completed write is caught", "[linearizability]") {
  History<Reg> h;
  h.add(0, 0, 10, RIn::write(1), ROut::none());
  const auto stale = h.add(1, 20, 30, RIn::read(), ROut::read(0));
  CheckResult r = check(h);
  CHECK(r.verdict == Verdict::not_linearizable);
  REQUIRE(r.stuck_op.has_value());
  CHECK(*r.stuck_op == stale);
  CHECK(r.explanation.find("NOT linearizable") != std::string::npos);
  CHECK(r.explanation.find("read() -> 0") != std::string::npos);
  CHECK(r.explanation.find("register=1") != std::string::npos);
}

TEST_CASE("register: a read concurrent with a write may see either value", "[linearizability]") {
  for (std::int64_t seen : {0, 1}) {
    History<Reg> h;
    h.add(0, 0, 100, RIn::write(1), ROut::none());
    h.add(1, 10, 20, RIn::read(), ROut::read(seen));
    CHECK(verdict(h) == Verdict::linearizable);
  }
  // ... but not new then old.
  History<Reg> h;
  h.add(0, 0, 100, RIn::write(1), ROut::none());
  h.add(1, 10, 20, RIn::read(), ROut::read(1));
  h.add(2, 30, 40, RIn::read(), ROut::read(0));
  CHECK(verdict(h) == Verdict::not_linearizable);
}

TEST_CASE("register: concurrent writes in either order", "[linearizability]") {
  for (std::int64_t winner : {1, 2}) {
    History<Reg> h;
    h.add(0, 0, 10, RIn::write(1), ROut::none());
    h.add(1, 5, 15, RIn::write(2), ROut::none());
    h.add(2, 20, 30, RIn::read(), ROut::read(winner));
    h.add(0, 40, 50, RIn::read(), ROut::read(winner));
    CHECK(verdict(h) == Verdict::linearizable);
  }
  // After both writes completed the value cannot change any more.
  History<Reg> h;
  h.add(0, 0, 10, RIn::write(1), ROut::none());
  h.add(1, 5, 15, RIn::write(2), ROut::none());
  h.add(2, 20, 30, RIn::read(), ROut::read(1));
  h.add(0, 40, 50, RIn::read(), ROut::read(2));
  CHECK(verdict(h) == Verdict::not_linearizable);
}

TEST_CASE("register: touching intervals count as concurrent", "[linearizability]") {
  History<Reg> h;
  h.add(0, 0, 10, RIn::write(1), ROut::none());
  h.add(1, 10, 20, RIn::read(), ROut::read(0));
  CHECK(verdict(h) == Verdict::linearizable);
}

TEST_CASE("register: compare-and-set semantics", "[linearizability]") {
  SECTION("successful cas then read") {
    History<Reg> h;
    h.add(0, 0, 10, RIn::write(1), ROut::none());
    h.add(1, 20, 30, RIn::cas(1, 2), ROut::cas(true));
    h.add(2, 40, 50, RIn::read(), ROut::read(2));
    CHECK(verdict(h) == Verdict::linearizable);
  }
  SECTION("cas must fail when the value differs") {
    History<Reg> h;
    h.add(0, 0, 10, RIn::write(1), ROut::none());
    h.add(1, 20, 30, RIn::cas(5, 6), ROut::cas(true));
    CHECK(verdict(h) == Verdict::not_linearizable);
  }
  SECTION("cas must succeed when the value matches") {
    History<Reg> h;
    h.add(0, 0, 10, RIn::write(1), ROut::none());
    h.add(1, 20, 30, RIn::cas(1, 6), ROut::cas(false));
    CHECK(verdict(h) == Verdict::not_linearizable);
  }
  SECTION("failed cas leaves the value alone") {
    History<Reg> h;
    h.add(0, 0, 10, RIn::write(1), ROut::none());
    h.add(1, 20, 30, RIn::cas(5, 6), ROut::cas(false));
    h.add(2, 40, 50, RIn::read(), ROut::read(1));
    CHECK(verdict(h) == Verdict::linearizable);
    h.add(2, 60, 70, RIn::read(), ROut::read(6));
    CHECK(verdict(h) == Verdict::not_linearizable);
  }
  SECTION("two concurrent cas from the same value: only one may win") {
    History<Reg> h;
    h.add(0, 0, 10, RIn::cas(0, 1), ROut::cas(true));
    h.add(1, 0, 10, RIn::cas(0, 2), ROut::cas(true));
    CHECK(verdict(h) == Verdict::not_linearizable);
    History<Reg> g;
    g.add(0, 0, 10, RIn::cas(0, 1), ROut::cas(true));
    g.add(1, 0, 10, RIn::cas(0, 2), ROut::cas(false));
    g.add(2, 20, 30, RIn::read(), ROut::read(1));
    CHECK(verdict(g) == Verdict::linearizable);
  }
}

TEST_CASE("register: unknown outcomes", "[linearizability]") {
  SECTION("must be assumed to have happened") {
    History<Reg> h;
    h.add_unknown(0, 0, RIn::write(1));
    h.add(1, 50, 60, RIn::read(), ROut::read(1));
    CHECK(verdict(h) == Verdict::linearizable);
  }
  SECTION("may take effect long after the client gave up") {
    History<Reg> h;
    h.add_unknown(0, 0, RIn::write(1));
    h.add(1, 50, 60, RIn::read(), ROut::read(0));
    h.add(0, 70, 80, RIn::write(2), ROut::none());
    h.add(1, 90, 100, RIn::read(), ROut::read(1));  // the lost write lands late
    CHECK(verdict(h) == Verdict::linearizable);
  }
  SECTION("must be assumed not to have happened") {
    History<Reg> h;
    h.add_unknown(0, 0, RIn::write(1));
    h.add(1, 50, 60, RIn::read(), ROut::read(0));
    h.add(1, 70, 80, RIn::read(), ROut::read(0));
    CHECK(verdict(h) == Verdict::linearizable);
  }
  SECTION("cannot take effect before its invocation") {
    History<Reg> h;
    h.add(1, 0, 10, RIn::read(), ROut::read(1));
    h.add_unknown(0, 20, RIn::write(1));
    CHECK(verdict(h) == Verdict::not_linearizable);
  }
  SECTION("cannot take effect twice") {
    History<Reg> h;
    h.add_unknown(0, 0, RIn::write(1));
    h.add(1, 10, 20, RIn::read(), ROut::read(1));
    h.add(1, 30, 40, RIn::read(), ROut::read(0));
    CHECK(verdict(h) == Verdict::not_linearizable);
  }
  SECTION("unknown cas still obeys cas semantics") {
    History<Reg> h;
    h.add_unknown(0, 0, RIn::cas(0, 5));
    h.add(1, 10, 20, RIn::read(), ROut::read(5));
    CHECK(verdict(h) == Verdict::linearizable);
    History<Reg> g;
    g.add_unknown(0, 0, RIn::cas(3, 5));
    g.add(1, 10, 20, RIn::read(), ROut::read(5));
    CHECK(verdict(g) == Verdict::not_linearizable);
  }
  SECTION("unknown reads constrain nothing") {
    History<Reg> h;
    h.add_unknown(0, 0, RIn::read());
    h.add(1, 10, 20, RIn::read(), ROut::read(0));
    CHECK(verdict(h) == Verdict::linearizable);
  }
}

// ---------------------------------------------------------------------------
// Counter, hand-written

TEST_CASE("counter: lost increment is caught", "[linearizability]") {
  History<Ctr> h;
  h.add(0, 0, 10, CIn::add(1), COut::none());
  h.add(1, 0, 10, CIn::add(1), COut::none());
  h.add(2, 20, 30, CIn::get(), COut::of(1));
  CheckResult r = check(h);
  CHECK(r.verdict == Verdict::not_linearizable);
  CHECK(r.explanation.find("get() -> 1") != std::string::npos);

  History<Ctr> ok;
  ok.add(0, 0, 10, CIn::add(1), COut::none());
  ok.add(1, 0, 10, CIn::add(1), COut::none());
  ok.add(2, 5, 8, CIn::get(), COut::of(1));  // concurrent: sees one of them
  ok.add(2, 20, 30, CIn::get(), COut::of(2));
  CHECK(verdict(ok) == Verdict::linearizable);
}

TEST_CASE("counter: add returning the new value", "[linearizability]") {
  History<Ctr> h;
  h.add(0, 0, 10, CIn::add(1), COut::of(2));
  h.add(1, 0, 10, CIn::add(1), COut::of(1));
  h.add(2, 20, 30, CIn::get(), COut::of(2));
  CHECK(verdict(h) == Verdict::linearizable);

  History<Ctr> dup;  // two increments both claiming to have produced 1
  dup.add(0, 0, 10, CIn::add(1), COut::of(1));
  dup.add(1, 0, 10, CIn::add(1), COut::of(1));
  CHECK(verdict(dup) == Verdict::not_linearizable);

  History<Ctr> order;  // real-time order forces 1 then 2
  order.add(0, 0, 10, CIn::add(1), COut::of(2));
  order.add(1, 20, 30, CIn::add(1), COut::of(1));
  CHECK(verdict(order) == Verdict::not_linearizable);
}

TEST_CASE("counter: unknown outcomes", "[linearizability]") {
  SECTION("assumed to have happened") {
    History<Ctr> h;
    h.add_unknown(0, 0, CIn::add(5));
    h.add(1, 10, 20, CIn::add(1), COut::none());
    h.add(1, 30, 40, CIn::get(), COut::of(6));
    CHECK(verdict(h) == Verdict::linearizable);
  }
  SECTION("assumed not to have happened") {
    History<Ctr> h;
    h.add_unknown(0, 0, CIn::add(5));
    h.add(1, 10, 20, CIn::add(1), COut::none());
    h.add(1, 30, 40, CIn::get(), COut::of(1));
    CHECK(verdict(h) == Verdict::linearizable);
  }
  SECTION("no subset of unknown adds explains the value") {
    History<Ctr> h;
    h.add_unknown(0, 0, CIn::add(5));
    h.add_unknown(2, 0, CIn::add(7));
    h.add(1, 10, 20, CIn::add(1), COut::none());
    h.add(1, 30, 40, CIn::get(), COut::of(9));
    CHECK(verdict(h) == Verdict::not_linearizable);
    h.add(1, 50, 60, CIn::get(), COut::of(13));  // 1 + 5 + 7: fine, and 9 still impossible
    CHECK(verdict(h) == Verdict::not_linearizable);
  }
  SECTION("many lost unknown increments do not blow the search up") {
    History<Ctr> h;
    Time t = 0;
    for (int i = 0; i < 60; ++i) {
      h.add_unknown(i % 7, t, CIn::add(1));
      h.add(7, t + 1, t + 2, CIn::get(), COut::of(0));
      t += 10;
    }
    CheckResult r = check(h);
    CHECK(r.verdict == Verdict::linearizable);
    h.add(7, t, t + 1, CIn::get(), COut::of(-1));  // impossible: forces exhaustive search
    r = check(h);
    CHECK(r.verdict == Verdict::not_linearizable);
    CHECK(r.steps < 1'000'000);
  }
}

// ---------------------------------------------------------------------------
// History API and budget

TEST_CASE("history: misuse is rejected", "[linearizability]") {
  History<Reg> h;
  auto id = h.invoke(0, 10, RIn::read());
  CHECK_THROWS_AS(h.respond(id, 5, ROut::read(0)), std::invalid_argument);
  h.respond(id, 15, ROut::read(0));
  CHECK_THROWS_AS(h.respond(id, 20, ROut::read(0)), std::logic_error);
  CHECK(verdict(h) == Verdict::linearizable);
}

// ---------------------------------------------------------------------------
// Randomized: histories produced by a real sequential execution

struct Generated {
  History<Reg> reg;
  History<Ctr> ctr;
};

// Each operation takes effect at one instant inside its interval (or, with
// unknown outcome, at some instant after its invocation, or never); outputs
// come from executing the model in that order. Such a history is
// linearizable by construction.
template <class M, class MakeInput>
History<M> generate(std::mt19937_64& rng, int n_ops, int clients, double unknown_rate, Time window,
                    MakeInput make_input, bool add_returns_value = false) {
  struct Pending {
    int client;
    Time call, lin, ret;
    bool unknown, happens;
    typename M::Input input;
    typename M::Output output{};
  };
  std::vector<Pending> ops;
  std::vector<Time> clock(static_cast<std::size_t>(clients), 0);
  std::uniform_real_distribution<double> coin(0, 1);
  auto uniform = [&](Time lo, Time hi) { return std::uniform_int_distribution<Time>(lo, hi)(rng); };
  for (int i = 0; i < n_ops; ++i) {
    auto c = static_cast<std::size_t>(std::min_element(clock.begin(), clock.end()) - clock.begin());
    Pending p{};
    p.client = static_cast<int>(c);
    p.call = clock[c] + uniform(0, window / 4);
    p.lin = p.call + uniform(0, window);
    p.ret = p.lin + uniform(0, window);
    p.unknown = coin(rng) < unknown_rate;
    p.happens = true;
    if (p.unknown) {
      p.happens = coin(rng) < 0.5;
      p.lin = p.call + uniform(0, 10 * window);  // may land long after the timeout
      clock[c] = p.call + 2 * window;            // the client gives up and moves on
    } else {
      clock[c] = p.ret + 1;
    }
    p.input = make_input(i);
    ops.push_back(p);
  }
  std::vector<std::size_t> order(ops.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return ops[a].lin < ops[b].lin; });
  typename M::State s = M::init();
  for (std::size_t i : order) {
    Pending& p = ops[i];
    if (!p.happens) continue;
    typename M::State before = s;
    if constexpr (std::is_same_v<M, RegisterModel>) {
      p.output.value = before;
      p.output.ok = p.input.kind == RIn::Kind::cas && before == p.input.expected;
      s = *M::step(before, p.input, nullptr);
    } else {
      s = *M::step(before, p.input, nullptr);
      if (p.input.kind == CIn::Kind::get || add_returns_value) p.output.value = s;
    }
    REQUIRE(M::step(before, p.input, &p.output) == s);  // the output is consistent
  }
  History<M> h;
  for (const Pending& p : ops) {
    if (p.unknown)
      h.add_unknown(p.client, p.call, p.input);
    else
      h.add(p.client, p.call, p.ret, p.input, p.output);
  }
  return h;
}

History<Reg> random_register(std::mt19937_64& rng, int n_ops, int clients, double unknown_rate) {
  std::int64_t next_value = 1;  // every written value is unique and positive
  return generate<Reg>(rng, n_ops, clients, unknown_rate, 100, [&](int) {
    const auto r = std::uniform_int_distribution<int>(0, 9)(rng);
    if (r < 4) return RIn::write(next_value++);
    if (r < 8) return RIn::read();
    // cas from a recent value (often right, sometimes stale) or a wrong one
    const std::int64_t expected =
        std::uniform_int_distribution<std::int64_t>(std::max<std::int64_t>(0, next_value - 3),
                                                    next_value)(rng);
    return RIn::cas(expected, next_value++);
  });
}

History<Ctr> random_counter(std::mt19937_64& rng, int n_ops, int clients, double unknown_rate,
                            bool add_returns_value, std::int64_t max_delta = 3) {
  return generate<Ctr>(
      rng, n_ops, clients, unknown_rate, 100,
      [&](int) {
        const auto r = std::uniform_int_distribution<int>(0, 9)(rng);
        if (r < 5) return CIn::add(std::uniform_int_distribution<std::int64_t>(1, max_delta)(rng));
        return CIn::get();
      },
      add_returns_value);
}

// Index of a random known-outcome op satisfying pred, or -1.
template <class M, class Pred>
std::int64_t pick(std::mt19937_64& rng, const History<M>& h, Pred pred) {
  std::vector<std::size_t> idx;
  for (std::size_t i = 0; i < h.size(); ++i)
    if (!h.ops()[i].unknown() && pred(h.ops()[i])) idx.push_back(i);
  if (idx.empty()) return -1;
  return static_cast<std::int64_t>(
      idx[std::uniform_int_distribution<std::size_t>(0, idx.size() - 1)(rng)]);
}

TEST_CASE("randomized register histories: valid ones pass, corrupted reads are caught",
          "[linearizability]") {
  int detected_other = 0;
  int corrupted_other = 0;
  for (std::uint64_t seed = 1; seed <= 150; ++seed) {
    std::mt19937_64 rng(seed);
    const double unknown_rate = seed % 3 == 0 ? 0.0 : 0.05;
    History<Reg> h = random_register(rng, 300, 2 + static_cast<int>(seed % 9), unknown_rate);
    INFO("seed " << seed);
    CheckResult ok = check(h);
    INFO(ok.explanation);
    REQUIRE(ok.verdict == Verdict::linearizable);

    auto is_read = [](const auto& op) { return op.input.kind == RIn::Kind::read; };
    const std::int64_t victim = pick(rng, h, is_read);
    REQUIRE(victim >= 0);
    const auto v = static_cast<std::size_t>(victim);

    // A value the register never held: must always be detected.
    History<Reg> bad = h;
    bad.ops()[v].response->output.value = -1'000'000 - static_cast<std::int64_t>(seed);
    CheckResult r1 = check(bad);
    INFO(r1.explanation);
    REQUIRE(r1.verdict == Verdict::not_linearizable);
    REQUIRE(r1.stuck_op.has_value());

    // A value the register held long before: detected unless an
    // unknown-outcome write of it may have landed late. Never a give-up.
    const std::int64_t old = h.ops()[v].response->output.value;
    if (old > 60) {
      History<Reg> other = h;
      other.ops()[v].response->output.value = old - 50;
      CheckResult r2 = check(other);
      REQUIRE(r2.verdict != Verdict::gave_up);
      ++corrupted_other;
      detected_other += r2.verdict == Verdict::not_linearizable ? 1 : 0;
    }
  }
  INFO("detected " << detected_other << " of " << corrupted_other);
  CHECK(corrupted_other >= 50);
  CHECK(detected_other * 10 >= corrupted_other * 8);
}

TEST_CASE("randomized counter histories: valid ones pass, corrupted gets are caught",
          "[linearizability]") {
  for (std::uint64_t seed = 1; seed <= 150; ++seed) {
    std::mt19937_64 rng(seed * 7919);
    const bool add_returns_value = seed % 2 == 0;
    const double unknown_rate = seed % 3 == 0 ? 0.0 : 0.05;
    History<Ctr> h =
        random_counter(rng, 300, 2 + static_cast<int>(seed % 9), unknown_rate, add_returns_value);
    INFO("seed " << seed);
    CheckResult ok = check(h);
    INFO(ok.explanation);
    REQUIRE(ok.verdict == Verdict::linearizable);

    auto is_get = [](const auto& op) { return op.input.kind == CIn::Kind::get; };
    const std::int64_t victim = pick(rng, h, is_get);
    REQUIRE(victim >= 0);
    History<Ctr> bad = h;
    bad.ops()[static_cast<std::size_t>(victim)].response->output.value = -1;  // adds are positive
    CheckResult r = check(bad);
    INFO(r.explanation);
    REQUIRE(r.verdict == Verdict::not_linearizable);
  }
}

// ---------------------------------------------------------------------------
// Size: a simulator-sized history

TEST_CASE("5000-op histories with 10 clients and 5% unknown outcomes", "[linearizability]") {
  CheckOptions opt;
  opt.max_steps = 20'000'000;
  for (std::uint64_t seed = 1; seed <= 3; ++seed) {
    std::mt19937_64 rng(seed * 104729);
    History<Reg> reg = random_register(rng, 5000, 10, 0.05);
    CheckResult r = check(reg, opt);
    INFO(r.explanation);
    CHECK(r.verdict == Verdict::linearizable);
    std::printf("[linearizability] register seed %llu: %zu ops, %s in %.1f ms, %llu steps, %zu memo\n",
                static_cast<unsigned long long>(seed), reg.size(), to_string(r.verdict),
                static_cast<double>(r.elapsed.count()) / 1000.0,
                static_cast<unsigned long long>(r.steps), r.memo_entries);

    History<Ctr> ctr = random_counter(rng, 5000, 10, 0.05, seed % 2 == 0, /*max_delta=*/1);
    CheckResult c = check(ctr, opt);
    INFO(c.explanation);
    CHECK(c.verdict == Verdict::linearizable);
    std::printf("[linearizability] counter  seed %llu: %zu ops, %s in %.1f ms, %llu steps, %zu memo\n",
                static_cast<unsigned long long>(seed), ctr.size(), to_string(c.verdict),
                static_cast<double>(c.elapsed.count()) / 1000.0,
                static_cast<unsigned long long>(c.steps), c.memo_entries);

    // And a corrupted one still gets a definite answer.
    std::int64_t victim = pick(rng, reg, [](const auto& op) { return op.input.kind == RIn::Kind::read; });
    REQUIRE(victim >= 0);
    reg.ops()[static_cast<std::size_t>(victim)].response->output.value = -42;
    CheckResult b = check(reg, opt);
    INFO(b.explanation);
    CHECK(b.verdict == Verdict::not_linearizable);
    std::printf("[linearizability] corrupted register seed %llu: %s in %.1f ms, %llu steps\n",
                static_cast<unsigned long long>(seed), to_string(b.verdict),
                static_cast<double>(b.elapsed.count()) / 1000.0,
                static_cast<unsigned long long>(b.steps));
  }
}

TEST_CASE("an exhausted budget is reported as giving up, never as success", "[linearizability]") {
  std::mt19937_64 rng(99);
  History<Reg> h = random_register(rng, 5000, 10, 0.05);
  CheckOptions tight;
  tight.max_steps = 100;
  CheckResult r = check(h, tight);
  CHECK(r.verdict == Verdict::gave_up);
  CHECK(!r.linearizable());
  CHECK(r.explanation.find("gave up") != std::string::npos);

  CheckOptions no_time;
  no_time.timeout = std::chrono::milliseconds(1);
  no_time.max_steps = 0;
  History<Ctr> c;  // big enough that 1 ms may not suffice: either answer is fine but a wrong one
  for (int i = 0; i < 20000; ++i) c.add(i % 4, i * 10, i * 10 + 5, CIn::add(1), COut::none());
  CheckResult t = check(c, no_time);
  CHECK(t.verdict != Verdict::not_linearizable);
}


TEST_CASE("counter with mixed increments and unknown outcomes", "[linearizability]") {
  // Harder: a get can be explained by many subsets of unknown adds of
  // different sizes (a subset-sum search), so this runs at 1000 ops.
  for (std::uint64_t seed = 1; seed <= 5; ++seed) {
    std::mt19937_64 rng(seed * 31337);
    History<Ctr> ctr = random_counter(rng, 1000, 10, 0.05, false, /*max_delta=*/3);
    CheckResult c = check(ctr);
    INFO(c.explanation);
    CHECK(c.verdict == Verdict::linearizable);
    std::printf("[linearizability] counter 1..3 seed %llu: %zu ops, %s in %.1f ms, %llu steps\n",
                static_cast<unsigned long long>(seed), ctr.size(), to_string(c.verdict),
                static_cast<double>(c.elapsed.count()) / 1000.0,
                static_cast<unsigned long long>(c.steps));
  }
}

// ---------------------------------------------------------------------------
// Cross-check against brute force on small random histories whose outputs
// are random (so many are not linearizable): every pruning in the search
// (forced ops, normal form, dominance, symmetry, model hints) must agree
// with plain enumeration.

// The register without the optional pruning hints: exercises the generic path.
struct BareRegister {
  using State = RegisterModel::State;
  using Input = RegisterModel::Input;
  using Output = RegisterModel::Output;
  static State init() { return RegisterModel::init(); }
  static std::optional<State> step(const State& s, const Input& in, const Output* out) {
    return RegisterModel::step(s, in, out);
  }
  static std::size_t hash(const State& s) { return RegisterModel::hash(s); }
  static std::string describe(const Input& in, const Output* out) {
    return RegisterModel::describe(in, out);
  }
  static std::string describe_state(const State& s) { return RegisterModel::describe_state(s); }
};

template <class M>
bool brute_force(const History<M>& h) {
  const auto& ops = h.ops();
  const std::size_t n = ops.size();
  std::vector<bool> used(n, false);
  auto ret = [&](std::size_t i) {
    return ops[i].response ? ops[i].response->time : std::numeric_limits<Time>::max();
  };
  std::function<bool(typename M::State, std::size_t)> go = [&](typename M::State s,
                                                               std::size_t known_left) {
    if (known_left == 0) return true;
    for (std::size_t i = 0; i < n; ++i) {
      if (used[i]) continue;
      bool ready = true;  // every op that returned before i was invoked is already placed
      for (std::size_t j = 0; j < n && ready; ++j)
        if (!used[j] && j != i && ret(j) < ops[i].call) ready = false;
      if (!ready) continue;
      const typename M::Output* out = ops[i].response ? &ops[i].response->output : nullptr;
      std::optional<typename M::State> next = M::step(s, ops[i].input, out);
      if (!next) continue;
      used[i] = true;
      const bool ok = go(*next, known_left - (ops[i].unknown() ? 0 : 1));
      used[i] = false;
      if (ok) return true;
    }
    return false;
  };
  std::size_t known = 0;
  for (const auto& op : ops) known += op.unknown() ? 0 : 1;
  return go(M::init(), known);
}

TEST_CASE("small random histories agree with brute force", "[linearizability]") {
  std::mt19937_64 rng(4242);
  auto u = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  int agree_yes = 0;
  int agree_no = 0;
  for (int iter = 0; iter < 10000; ++iter) {
    const int n = u(1, 8);
    const bool register_model = iter % 2 == 0;
    std::vector<std::tuple<int, Time, Time, bool>> shape;  // client, call, ret, unknown
    for (int i = 0; i < n; ++i) {
      const Time call = u(0, 20);
      shape.emplace_back(u(0, 3), call, call + u(0, 8), u(0, 3) == 0);
    }
    bool expected = false;
    CheckResult r;
    if (register_model) {
      History<Reg> h;
      for (auto [c, call, ret, unknown] : shape) {
        RIn in;
        const int kind = u(0, 2);
        in = kind == 0 ? RIn::write(u(1, 2)) : kind == 1 ? RIn::read() : RIn::cas(u(0, 2), u(0, 2));
        if (unknown)
          h.add_unknown(c, call, in);
        else
          h.add(c, call, ret, in, kind == 1 ? ROut::read(u(0, 2)) : ROut::cas(u(0, 1) == 1));
      }
      expected = brute_force(h);
      r = check(h);
      History<BareRegister> bare;
      for (const auto& op : h.ops()) {
        if (op.unknown())
          bare.add_unknown(op.client, op.call, op.input);
        else
          bare.add(op.client, op.call, op.response->time, op.input, op.response->output);
      }
      CheckResult rb = check(bare);
      INFO("hint-less: " << rb.explanation);
      REQUIRE(rb.linearizable() == expected);
    } else {
      History<Ctr> h;
      for (auto [c, call, ret, unknown] : shape) {
        const bool add = u(0, 1) == 0;
        CIn in = add ? CIn::add(u(1, 2)) : CIn::get();
        if (unknown) {
          h.add_unknown(c, call, in);
        } else {
          COut out = (add && u(0, 1) == 0) ? COut::none() : COut::of(u(0, 4));
          h.add(c, call, ret, in, out);
        }
      }
      expected = brute_force(h);
      r = check(h);
    }
    INFO("iteration " << iter << ": " << r.explanation);
    REQUIRE(r.verdict != Verdict::gave_up);
    REQUIRE(r.linearizable() == expected);
    (expected ? agree_yes : agree_no) += 1;
  }
  // Both answers were exercised plenty.
  CHECK(agree_yes > 500);
  CHECK(agree_no > 500);
}

}  // namespace

// The StateMachine's optional hooks, as the runtime's Driver calls them:
// batched apply of consecutive committed commands, and leadership gained and
// lost. Runs MemCluster (the Driver on an in-memory network, no threads, no
// clock), so every scenario is a deterministic script.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "support/catch_printers.hpp"
#include "support/mem_cluster.hpp"

using namespace raftkit;
using raftkit::test::MemCluster;

namespace {

// Applies "x" as "applied x", and writes down every call the driver makes.
class Recorder : public StateMachine {
 public:
  std::vector<std::size_t> batches;    // the size of each apply_batch, in call order
  std::vector<std::string> applied;    // payloads, in apply order
  std::vector<std::string> events;     // "gained 2", "lost 2", in call order
  std::size_t apply_calls = 0;

  Bytes apply(const Entry& e) override {
    ++apply_calls;
    applied.push_back(to_string(e.payload));
    return to_bytes("applied " + to_string(e.payload));
  }
  Bytes query(BytesView) const override { return {}; }
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override { return std::make_unique<CopiedSnapshot>(Bytes{}); }
  std::error_code restore_snapshot(SnapshotReader&) override { return {}; }
  void on_leadership_gained(Term t) override { events.push_back(fmt::format("gained {}", t)); }
  void on_leadership_lost(Term t) override { events.push_back(fmt::format("lost {}", t)); }
};

// Overrides apply_batch the way a service with its own database would:
// applies the whole run first, then reports every result.
class BatchingRecorder final : public Recorder {
 public:
  void apply_batch(std::span<const Entry> entries, const std::function<void(Bytes)>& done) override {
    batches.push_back(entries.size());
    std::vector<Bytes> results;
    for (const Entry& e : entries) results.push_back(apply(e));
    for (Bytes& r : results) done(std::move(r));
  }
};

// Breaks the contract: reports one result fewer than it was given.
class ShortBatch final : public Recorder {
 public:
  void apply_batch(std::span<const Entry> entries, const std::function<void(Bytes)>& done) override {
    for (std::size_t i = 0; i + 1 < entries.size(); ++i) done(apply(entries[i]));
  }
};

template <class Machine>
std::map<std::uint64_t, std::shared_ptr<Machine>> install(MemCluster& c, std::size_t n) {
  std::map<std::uint64_t, std::shared_ptr<Machine>> out;
  for (std::uint64_t id = 1; id <= n; ++id) {
    out[id] = std::make_shared<Machine>();
    c.node(id).machine = out[id];
    c.restart(id);  // nothing persisted yet: a fresh driver on the new machine
  }
  return out;
}

struct Completion {
  bool done = false;
  std::error_code ec;
  std::string result;
};

// Queues proposals on `leader` without processing between them, then lets
// the driver handle them together: one append, one commit, one batch.
std::vector<std::shared_ptr<Completion>> propose_together(MemCluster& c, std::uint64_t leader,
                                                          const std::vector<std::string>& payloads) {
  std::vector<std::shared_ptr<Completion>> out;
  for (const auto& p : payloads) {
    auto slot = std::make_shared<Completion>();
    out.push_back(slot);
    c.node(leader).driver->propose(
        to_bytes(p),
        [slot](std::error_code ec, Bytes r) {
          slot->done = true;
          slot->ec = ec;
          slot->result = to_string(r);
        },
        runtime::TimePoint{}, /*defer=*/true);
  }
  c.node(leader).driver->poll();
  c.stabilize();
  return out;
}

}  // namespace

TEST_CASE("apply_batch: consecutive committed commands reach the state machine as one batch, in log order") {
  MemCluster c(3);
  auto machines = install<BatchingRecorder>(c, 3);
  const auto l = c.elect();
  REQUIRE(l != 0);
  const std::vector<std::string> payloads{"a", "b", "c", "d", "e"};
  auto completions = propose_together(c, l, payloads);
  c.tick_all(3);  // heartbeats carry the commit index to the followers
  c.stabilize();

  // The leader committed the five in one step: one batch of five.
  REQUIRE(machines[l]->batches.size() == 1);
  CHECK(machines[l]->batches[0] == 5);
  // Each proposer gets its own entry's result, in order.
  for (std::size_t i = 0; i < payloads.size(); ++i) {
    REQUIRE(completions[i]->done);
    CHECK(!completions[i]->ec);
    CHECK(completions[i]->result == "applied " + payloads[i]);
  }
  // Every replica applied the same commands in the same order, whatever its
  // batches were.
  for (auto& [id, m] : machines) {
    CHECK(m->applied == payloads);
    std::size_t total = 0;
    for (auto n : m->batches) total += n;
    CHECK(total == payloads.size());
  }
  // The observer still sees each entry, in log order (noop and commands).
  const auto& seen = c.node(l).applied;
  for (std::size_t i = 1; i < seen.size(); ++i) CHECK(seen[i].index == seen[i - 1].index + 1);
}

TEST_CASE("apply_batch: the default implementation calls apply() once per command") {
  MemCluster c(3);
  auto machines = install<Recorder>(c, 3);  // overrides apply() only
  const auto l = c.elect();
  REQUIRE(l != 0);
  auto completions = propose_together(c, l, {"x", "y", "z"});
  for (auto& done : completions) {
    REQUIRE(done->done);
    CHECK(!done->ec);
  }
  CHECK(completions[1]->result == "applied y");
  CHECK(machines[l]->apply_calls == 3);
  CHECK(machines[l]->applied == std::vector<std::string>{"x", "y", "z"});
  CHECK(machines[l]->batches.empty());
}

TEST_CASE("apply_batch: a state machine that reports fewer results than entries stops the node, saying why") {
  MemCluster c(1);
  auto machines = install<ShortBatch>(c, 1);
  REQUIRE(c.elect() == 1);
  auto completions = propose_together(c, 1, {"p", "q"});
  auto& driver = *c.node(1).driver;
  CHECK(driver.stopped());
  CHECK_THAT(driver.failure(), Catch::Contains("apply_batch reported 1 results for the 2 entries"));
  // Every caller completed exactly once: the reported entry with its result,
  // the other with the reason the node stopped.
  REQUIRE(completions[0]->done);
  CHECK(completions[0]->result == "applied p");
  REQUIRE(completions[1]->done);
  CHECK(completions[1]->ec == errc::invalid_argument);
  CHECK(driver.status().role == NodeRole::stopped);
}

TEST_CASE("leadership hooks: gained with the term on the new leader only; lost for that term when it steps down") {
  MemCluster c(3);
  auto machines = install<Recorder>(c, 3);
  const auto l = c.elect();
  REQUIRE(l != 0);
  const Term t1 = c.raft(l).term();
  CHECK(machines[l]->events == std::vector<std::string>{fmt::format("gained {}", t1)});
  for (auto& [id, m] : machines)
    if (id != l) CHECK(m->events.empty());

  // A leadership transfer: the old leader loses term t1, the target gains the next.
  const std::uint64_t target = l == 1 ? 2 : 1;
  std::error_code transfer_result = errc::timeout;
  c.node(l).driver->transfer(NodeId{target}, [&](std::error_code ec) { transfer_result = ec; },
                             runtime::TimePoint{});
  c.stabilize();
  REQUIRE(c.leader() == target);
  CHECK(!transfer_result);
  const Term t2 = c.raft(target).term();
  CHECK(t2 > t1);
  CHECK(machines[l]->events == std::vector<std::string>{fmt::format("gained {}", t1), fmt::format("lost {}", t1)});
  CHECK(machines[target]->events == std::vector<std::string>{fmt::format("gained {}", t2)});

  // Stopping a leader ends its leadership too.
  c.node(target).driver->stop(errc::shutting_down);
  CHECK(machines[target]->events ==
        std::vector<std::string>{fmt::format("gained {}", t2), fmt::format("lost {}", t2)});
  c.node(target).driver->stop(errc::shutting_down);  // idempotent: no second "lost"
  CHECK(machines[target]->events.size() == 2);
}

// The LogStore contract, checked against every implementation: the memory
// store, and the WAL store both on the fault-injecting in-memory file system
// and on the real one.
#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "storage_util.hpp"
#include "fault_fs.hpp"
#include "storage/shared_log.hpp"

using namespace raftkit;
using namespace raftkit::test;

namespace {

void check_contract(LogStore& s) {
  SECTION("a new store is empty at index 0") {
    CHECK(s.first_index() == Index{1});
    CHECK(s.last_index() == Index{0});
    CHECK(s.term(Index{0}) == Term{0});
    CHECK_FALSE(s.term(Index{1}).has_value());
    CHECK(s.hard_state() == HardState{});
  }
  SECTION("append, read back, bounded by bytes but at least one entry") {
    auto es = make_entries(1, 5, 1, 100);
    REQUIRE(!s.append(es));
    CHECK(s.last_index() == Index{5});
    std::vector<Entry> out;
    REQUIRE(!s.entries(Index{1}, Index{6}, 0, out));
    CHECK(out.size() == 1);
    out.clear();
    REQUIRE(!s.entries(Index{2}, Index{6}, 2 * entry_bytes(es[0]), out));
    CHECK(out == std::vector<Entry>(es.begin() + 1, es.begin() + 3));
    out.clear();
    CHECK(s.entries(Index{1}, Index{7}, SIZE_MAX, out) == errc::unavailable);
    CHECK(s.entries(Index{0}, Index{3}, SIZE_MAX, out) == errc::compacted);
  }
  SECTION("appending at an index inside the log drops the conflicting tail") {
    REQUIRE(!s.append(make_entries(1, 5, 1, 10)));
    REQUIRE(!s.append(make_entries(3, 1, 2, 10)));
    CHECK(s.last_index() == Index{3});
    CHECK(s.term(Index{3}) == Term{2});
    CHECK(s.term(Index{2}) == Term{1});
  }
  SECTION("appends that leave a gap or are not contiguous are refused") {
    REQUIRE(!s.append(make_entries(1, 2, 1, 10)));
    CHECK(s.append(make_entries(4, 1, 1, 10)) == errc::invalid_argument);
    auto bad = make_entries(3, 2, 1, 10);
    bad[1].index = Index{7};
    CHECK(s.append(bad) == errc::invalid_argument);
    CHECK(s.last_index() == Index{2});
  }
  SECTION("install_snapshot that agrees keeps the log after it") {
    REQUIRE(!s.append(make_entries(1, 10, 1, 10)));
    REQUIRE(!s.install_snapshot(SnapshotMeta{Index{6}, Term{1}, {{NodeId{1}, NodeId{2}}, {}, {}, {}, {}, {}, {}}}));
    CHECK(s.first_index() == Index{7});
    CHECK(s.last_index() == Index{10});
    CHECK(s.term(Index{6}) == Term{1});
    std::vector<Entry> out;
    CHECK(s.entries(Index{6}, Index{8}, SIZE_MAX, out) == errc::compacted);
  }
  SECTION("install_snapshot that disagrees drops the whole log") {
    REQUIRE(!s.append(make_entries(1, 10, 1, 10)));
    REQUIRE(!s.install_snapshot(SnapshotMeta{Index{20}, Term{3}, {}}));
    CHECK(s.first_index() == Index{21});
    CHECK(s.last_index() == Index{20});
    CHECK(s.term(Index{20}) == Term{3});
    REQUIRE(!s.append(make_entries(21, 1, 3, 10)));
    CHECK(s.last_index() == Index{21});
  }
  SECTION("hard state is stored") {
    REQUIRE(!s.save_hard_state(HardState{Term{4}, NodeId{2}, Index{0}, kBootstrapIncarnation}));
    CHECK(s.hard_state() == HardState{Term{4}, NodeId{2}, Index{0}, kBootstrapIncarnation});
    CHECK(!s.sync());
  }
}

}  // namespace

TEST_CASE("memory store keeps the LogStore contract", "[storage][memory]") {
  auto s = make_memory_store();
  check_contract(*s);
}

TEST_CASE("WAL store on the fault file system keeps the LogStore contract", "[storage][wal]") {
  std::unique_ptr<LogStore> s;
  REQUIRE(!storage::open_wal_store(std::make_shared<FaultFs>(), "/d", {}, s));
  check_contract(*s);
}

TEST_CASE("WAL store on the real file system keeps the LogStore contract", "[storage][wal]") {
  TempDir dir;
  std::unique_ptr<LogStore> s;
  REQUIRE(!open_wal_store(dir.path, {}, s));
  check_contract(*s);
}

TEST_CASE("a shared log's group view keeps the LogStore contract", "[storage][shared_log]") {
  std::unique_ptr<storage::SharedLog> log;
  storage::SharedLogOptions o;
  o.segment_bytes = 4096;
  REQUIRE(!storage::open_shared_log(std::make_shared<FaultFs>(), "/d", o, log));
  // Another group writes around it into the same log, same indexes.
  auto other = log->group(1);
  REQUIRE(!other->append(make_entries(1, 8, 5, 300)));
  auto s = log->group(2);
  check_contract(*s);
  CHECK(other->last_index() == Index{8});
  CHECK(other->term(Index{8}) == Term{5});
  CHECK(!log->sync());
}

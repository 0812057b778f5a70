#include "fault_fs.hpp"
#include "storage/snapshot_file_fs.hpp"
#include "raftkit/error.hpp"
#include "raftkit/snapshot_file.hpp"
#include "storage_util.hpp"

using namespace raftkit;
using namespace raftkit::test;

namespace {
const SnapshotMeta kMeta1{Index{10}, Term{2}, {{NodeId{1}, NodeId{2}, NodeId{3}}, {NodeId{9}}, {}, {}, {{NodeId{9}, "10.1.1.9:7000"}}}};
const SnapshotMeta kMeta2{Index{25}, Term{3}, {{NodeId{1}, NodeId{2}}, {}, {NodeId{1}, NodeId{2}, NodeId{3}}, {}, {}}};
}  // namespace

TEST_CASE("snapshot file round trip and newest wins", "[storage][snapshot]") {
  TempDir dir;
  SnapshotMeta meta;
  Bytes data;
  CHECK(read_latest_snapshot(dir.path, meta, data) == errc::unavailable);
  REQUIRE(!write_snapshot_file(dir.path, kMeta1, to_bytes("state one")));
  REQUIRE(!read_latest_snapshot(dir.path, meta, data));
  CHECK(meta == kMeta1);
  CHECK(to_string(data) == "state one");
  const Bytes big = make_entry(1, 1, 3 << 20).payload;
  REQUIRE(!write_snapshot_file(dir.path, kMeta2, big));
  REQUIRE(!read_latest_snapshot(dir.path, meta, data));
  CHECK(meta == kMeta2);
  CHECK(data == big);
  REQUIRE(!write_snapshot_file(dir.path, SnapshotMeta{Index{30}, Term{3}, {}}, {}));
  REQUIRE(!read_latest_snapshot(dir.path, meta, data));
  CHECK(data.empty());
}

TEST_CASE("snapshot file: a bit flip anywhere is corruption", "[storage][snapshot]") {
  auto fs = std::make_shared<FaultFs>();
  REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta1, to_bytes("some state machine bytes"), nullptr));
  const std::string p = "/snap/snap-000000000000000a-0000000000000002.snap";
  const std::size_t size = fs->contents(p).size();
  for (std::size_t off = 0; off < size; ++off) {
    auto c = fs->clone();
    c->flip_bit(p, off, static_cast<int>(off % 8));
    SnapshotMeta meta;
    Bytes data;
    std::string detail;
    INFO("offset " << off);
    CHECK(storage::read_latest_snapshot(*c, "/snap", meta, data, &detail) == errc::corrupted);
    CHECK(detail.find(p) != std::string::npos);
  }
}

TEST_CASE("snapshot file: a crash while writing keeps the previous snapshot", "[storage][snapshot]") {
  // Die after every mutation of writing the second snapshot; then lose
  // whatever was not synced, or keep all of it.
  std::int64_t total = 0;
  {
    auto fs = std::make_shared<FaultFs>();
    REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta1, to_bytes("one"), nullptr));
    const std::int64_t before = fs->mutations();
    REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta2, to_bytes("two"), nullptr));
    total = fs->mutations() - before;
  }
  for (std::int64_t n = 0; n <= total; ++n) {
    for (bool keep_all : {false, true}) {
      auto fs = std::make_shared<FaultFs>();
      REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta1, to_bytes("one"), nullptr));
      fs->die_after(fs->mutations() + n);
      const bool ok = !storage::write_snapshot_file(*fs, "/snap", kMeta2, to_bytes("two"), nullptr);
      fs->crash(keep_all ? fs->pending() : 0);
      SnapshotMeta meta;
      Bytes data;
      INFO("died after " << n << " keep_all " << keep_all);
      REQUIRE(!storage::read_latest_snapshot(*fs, "/snap", meta, data, nullptr));
      if (ok) CHECK(meta == kMeta2);  // acknowledged: durable
      CHECK(((meta == kMeta1 && to_string(data) == "one") || (meta == kMeta2 && to_string(data) == "two")));
    }
  }
}

TEST_CASE("snapshot file: write errors are reported and leave the old snapshot", "[storage][snapshot]") {
  auto fs = std::make_shared<FaultFs>();
  REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta1, to_bytes("one"), nullptr));
  fs->hook = [](FaultFs::Op op, const std::string&) { return op == FaultFs::Op::write ? ENOSPC : 0; };
  std::string detail;
  CHECK(storage::write_snapshot_file(*fs, "/snap", kMeta2, to_bytes("two"), &detail) == errc::no_space);
  fs->hook = [](FaultFs::Op op, const std::string&) { return op == FaultFs::Op::sync ? EIO : 0; };
  CHECK(storage::write_snapshot_file(*fs, "/snap", kMeta2, to_bytes("two"), &detail) == errc::io_error);
  fs->hook = nullptr;
  SnapshotMeta meta;
  Bytes data;
  REQUIRE(!storage::read_latest_snapshot(*fs, "/snap", meta, data, nullptr));
  CHECK(meta == kMeta1);
  std::vector<std::string> names;
  REQUIRE(!fs->list("/snap", names));
  CHECK(names.size() == 1);  // no temp file left behind
}

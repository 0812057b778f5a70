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
  const Bytes big = make_entry(1, 1, 3 << 20).payload.to_bytes();
  REQUIRE(!write_snapshot_file(dir.path, kMeta2, big));
  REQUIRE(!read_latest_snapshot(dir.path, meta, data));
  CHECK(meta == kMeta2);
  CHECK(data == big);
  REQUIRE(!write_snapshot_file(dir.path, SnapshotMeta{Index{30}, Term{3}, {}}, BytesView{}));
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

namespace {
// Writes `data` in pieces of `piece` bytes, as a state machine's capture does.
SnapshotProducer in_pieces(const Bytes& data, std::size_t piece) {
  return [&data, piece](SnapshotWriter& w) -> std::error_code {
    for (std::size_t at = 0; at < data.size(); at += piece) {
      if (auto ec = w.write(BytesView(data).subspan(at, std::min(piece, data.size() - at)))) return ec;
    }
    return {};
  };
}
}  // namespace

TEST_CASE("snapshot file: a streamed write is the same file as a write of the whole data", "[storage][snapshot]") {
  // Rule: the file has one encoding per value, however the producer cuts its
  // bytes (the header's length and checksum are completed after the data).
  const Bytes big = make_entry(1, 1, (5 << 20) / 2 + 77).payload.to_bytes();
  auto whole = std::make_shared<FaultFs>();
  REQUIRE(!storage::write_snapshot_file(*whole, "/snap", kMeta2, big, nullptr));
  const std::string p = "/snap/snap-0000000000000019-0000000000000003.snap";
  for (std::size_t piece : {std::size_t{1} << 20, std::size_t{300000}, std::size_t{4096}, std::size_t{3} << 20}) {
    auto fs = std::make_shared<FaultFs>();
    REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta2, in_pieces(big, piece), nullptr));
    INFO("piece " << piece);
    CHECK(fs->contents(p) == whole->contents(p));
    // Streamed back: the consumer sees the metadata and exactly the data.
    Bytes back;
    SnapshotMeta meta;
    REQUIRE(!storage::read_latest_snapshot(
        *fs, "/snap",
        [&](const SnapshotMeta& m, SnapshotReader& in) {
          meta = m;
          CHECK(in.remaining() == big.size());
          Bytes chunk(777);
          for (;;) {
            std::size_t got = 0;
            if (auto ec = in.read(chunk, got)) return ec;
            if (got == 0) break;
            back.insert(back.end(), chunk.begin(), chunk.begin() + static_cast<std::ptrdiff_t>(got));
          }
          return std::error_code{};
        },
        nullptr));
    CHECK(meta == kMeta2);
    CHECK(back == big);
  }
}

TEST_CASE("snapshot file: a producer's error abandons the snapshot and keeps the previous one", "[storage][snapshot]") {
  auto fs = std::make_shared<FaultFs>();
  REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta1, to_bytes("one"), nullptr));
  std::string detail;
  const auto ec = storage::write_snapshot_file(
      *fs, "/snap", kMeta2,
      [](SnapshotWriter& w) -> std::error_code {
        if (auto e = w.write(to_bytes("half of it"))) return e;
        return errc::shutting_down;
      },
      &detail);
  CHECK(ec == errc::shutting_down);
  CHECK(detail.find("producing the data") != std::string::npos);
  SnapshotMeta meta;
  Bytes data;
  REQUIRE(!storage::read_latest_snapshot(*fs, "/snap", meta, data, nullptr));
  CHECK(meta == kMeta1);
  std::vector<std::string> names;
  REQUIRE(!fs->list("/snap", names));
  CHECK(names.size() == 1);  // the temp file is gone
}

TEST_CASE("snapshot file: the consumer sees nothing of a file whose checksum fails", "[storage][snapshot]") {
  // Rule: the checksum is verified before the first data byte is handed out.
  auto fs = std::make_shared<FaultFs>();
  const Bytes big = make_entry(1, 1, 3 << 20).payload.to_bytes();
  REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta2, big, nullptr));
  const std::string p = "/snap/snap-0000000000000019-0000000000000003.snap";
  fs->flip_bit(p, (2 << 20) + 5, 3);  // deep in the data, past the first chunk
  bool consumed = false;
  std::string detail;
  CHECK(storage::read_latest_snapshot(
            *fs, "/snap", [&](const SnapshotMeta&, SnapshotReader&) { return consumed = true, std::error_code{}; },
            &detail) == errc::corrupted);
  CHECK(!consumed);
  CHECK(detail.find("checksum") != std::string::npos);
}

TEST_CASE("snapshot file: a crash at any write or sync of a streamed snapshot leaves the old or the new one",
          "[storage][snapshot][crash]") {
  // Die after every mutation of writing a multi-chunk snapshot; then keep any
  // prefix of the writes that were not synced.
  const Bytes one = to_bytes("the old state");
  const Bytes two = make_entry(2, 2, (5 << 20) / 2).payload.to_bytes();
  std::int64_t total = 0;
  {
    auto fs = std::make_shared<FaultFs>();
    REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta1, one, nullptr));
    const std::int64_t before = fs->mutations();
    REQUIRE(!storage::write_snapshot_file(*fs, "/snap", kMeta2, in_pieces(two, 400000), nullptr));
    total = fs->mutations() - before;
  }
  REQUIRE(total >= 8);  // several data writes, header rewrite, tail, sync, rename, dir sync
  for (std::int64_t n = 0; n <= total; ++n) {
    auto base = std::make_shared<FaultFs>();
    REQUIRE(!storage::write_snapshot_file(*base, "/snap", kMeta1, one, nullptr));
    base->die_after(base->mutations() + n);
    const bool ok = !storage::write_snapshot_file(*base, "/snap", kMeta2, in_pieces(two, 400000), nullptr);
    for (std::size_t keep = 0; keep <= base->pending(); ++keep) {
      auto fs = base->clone();
      fs->crash(keep);
      SnapshotMeta meta;
      Bytes data;
      INFO("died after " << n << ", kept " << keep << " unsynced writes");
      REQUIRE(!storage::read_latest_snapshot(*fs, "/snap", meta, data, nullptr));
      if (ok) CHECK(meta == kMeta2);  // acknowledged: durable
      CHECK(((meta == kMeta1 && data == one) || (meta == kMeta2 && data == two)));
    }
  }
}

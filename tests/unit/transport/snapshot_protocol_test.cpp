// The snapshot-streaming protocol without sockets (transport/snapshot_stream.hpp):
// a SnapshotTransfer and a SnapshotReceiver wired by hand, every chunk and
// acknowledgement passed (or lost, reordered, corrupted) by the test, time
// given explicitly. The same protocol over TCP is in snapshot_stream_test.cpp.
#include <catch2/catch.hpp>

#include <numeric>

#include "storage/crc32c.hpp"
#include "transport/snapshot_stream.hpp"

using namespace raftkit;
using namespace raftkit::transport;
using Status = SnapshotAck::Status;
using Clock = std::chrono::steady_clock;

namespace {

constexpr NodeId kLeader{1};
constexpr NodeId kFollower{2};

SnapshotStreamLimits small_limits() {
  SnapshotStreamLimits l;
  l.chunk_bytes = 100;
  l.window_chunks = 3;
  l.max_snapshot_bytes = 10000;
  return l;
}

Message metadata(std::uint64_t term = 5, GroupId group = 0) {
  Message m;
  m.group = group;
  m.type = MessageType::snapshot;
  m.from = kLeader;
  m.to = kFollower;
  m.term = Term{term};
  m.snapshot = SnapshotMeta{Index{40}, Term{term}, {}};
  return m;
}

std::shared_ptr<const Bytes> data_of(std::size_t n) {
  Bytes b(n);
  std::iota(b.begin(), b.end(), std::uint8_t{7});
  return std::make_shared<const Bytes>(std::move(b));
}

SnapshotTransfer transfer_of(std::shared_ptr<const Bytes> data, std::uint64_t id = 11, std::uint64_t term = 5,
                             GroupId group = 0) {
  const auto crc = storage::crc32c(data->data(), data->size());
  return SnapshotTransfer(metadata(term, group), std::move(data), crc, id);
}

// Passes one chunk to the receiver and its acknowledgement back to the sender.
TransferVerdict pass(SnapshotTransfer& t, SnapshotReceiver& r, const SnapshotChunk& chunk,
                     const SnapshotStreamLimits& limits) {
  std::string why;
  return t.on_ack(r.on_chunk(kFollower, kLeader, chunk, Clock::time_point{}, limits).ack, why);
}

// Passes every chunk to the receiver and every acknowledgement back, until
// the sender has nothing to send; returns the last verdict.
TransferVerdict run(SnapshotTransfer& t, SnapshotReceiver& r, std::optional<Message>& delivered,
                    const SnapshotStreamLimits& limits, Clock::time_point now = Clock::time_point{}) {
  TransferVerdict verdict = TransferVerdict::sending;
  for (auto chunks = t.next_chunks(limits); !chunks.empty() && verdict == TransferVerdict::sending;
       chunks = t.next_chunks(limits)) {
    for (const auto& chunk : chunks) {
      auto step = r.on_chunk(kFollower, kLeader, chunk, now, limits);
      if (step.complete) delivered = std::move(step.complete);
      std::string why;
      verdict = t.on_ack(step.ack, why);
      if (verdict != TransferVerdict::sending) break;
    }
  }
  return verdict;
}

}  // namespace

TEST_CASE("snapshot protocol: chunks within the window arrive whole and the sender hears it was delivered",
          "[snapshot][protocol]") {
  const auto limits = small_limits();
  const auto data = data_of(1050);
  auto t = transfer_of(data);
  // Before any acknowledgement the sender stops at the window: 3 chunks of 100 bytes.
  auto first = t.next_chunks(limits);
  REQUIRE(first.size() == 3);
  CHECK(first[0].offset == 0);
  CHECK(first[2].offset == 200);
  CHECK(first[0].total == 1050);
  CHECK(t.next_chunks(limits).empty());
  SnapshotReceiver r;
  std::optional<Message> delivered;
  for (const auto& chunk : first) {
    auto step = r.on_chunk(kFollower, kLeader, chunk, Clock::time_point{}, limits);
    std::string why;
    CHECK(t.on_ack(step.ack, why) == TransferVerdict::sending);
  }
  CHECK(t.acknowledged() == 300);
  CHECK(run(t, r, delivered, limits) == TransferVerdict::delivered);
  REQUIRE(delivered);
  CHECK(delivered->snapshot_data == *data);
  CHECK(delivered->snapshot->index == Index{40});
  CHECK(!r.receiving());
}

TEST_CASE("snapshot protocol: an empty snapshot is one chunk", "[snapshot][protocol]") {
  const auto limits = small_limits();
  auto t = transfer_of(data_of(0));
  SnapshotReceiver r;
  std::optional<Message> delivered;
  CHECK(run(t, r, delivered, limits) == TransferVerdict::delivered);
  REQUIRE(delivered);
  CHECK(delivered->snapshot_data.empty());
}

TEST_CASE("snapshot protocol: a lost chunk is answered with a gap and the sender rewinds to it",
          "[snapshot][protocol]") {
  const auto limits = small_limits();
  const auto data = data_of(500);
  auto t = transfer_of(data);
  SnapshotReceiver r;
  auto chunks = t.next_chunks(limits);
  REQUIRE(chunks.size() == 3);
  std::string why;
  CHECK(pass(t, r, chunks[0], limits) == TransferVerdict::sending);
  // chunks[1] is lost; chunks[2] arrives past the held bytes.
  const auto gap = r.on_chunk(kFollower, kLeader, chunks[2], {}, limits).ack;
  CHECK(gap.status == Status::gap);
  CHECK(gap.received == 100);
  CHECK(t.on_ack(gap, why) == TransferVerdict::sending);
  const auto resent = t.next_chunks(limits);
  REQUIRE(!resent.empty());
  CHECK(resent[0].offset == 100);
  // A duplicate is acknowledged with what is held and changes nothing.
  const auto dup = r.on_chunk(kFollower, kLeader, chunks[0], {}, limits).ack;
  CHECK(dup.status == Status::receiving);
  CHECK(dup.received == 100);
  std::optional<Message> delivered;
  for (const auto& c : resent) CHECK(pass(t, r, c, limits) == TransferVerdict::sending);
  CHECK(run(t, r, delivered, limits) == TransferVerdict::delivered);
  REQUIRE(delivered);
  CHECK(delivered->snapshot_data == *data);
}

TEST_CASE("snapshot protocol: a stall rewinds to the acknowledged offset; three in a row fail the transfer",
          "[snapshot][protocol]") {
  const auto limits = small_limits();
  auto t = transfer_of(data_of(1000));
  SnapshotReceiver r;
  auto chunks = t.next_chunks(limits);
  CHECK(pass(t, r, chunks[0], limits) == TransferVerdict::sending);
  CHECK(t.on_stall_check(limits) == TransferVerdict::sending);  // progress since the start: no stall
  CHECK(t.next_chunks(limits).size() == 1);                     // the window moved by the one acknowledged chunk
  CHECK(t.on_stall_check(limits) == TransferVerdict::sending);  // stall 1: rewind to 100
  const auto again = t.next_chunks(limits);
  REQUIRE(again.size() == 3);
  CHECK(again[0].offset == 100);
  CHECK(t.on_stall_check(limits) == TransferVerdict::sending);  // stall 2
  CHECK(t.on_stall_check(limits) == TransferVerdict::failed);   // stall 3
}

TEST_CASE("snapshot protocol: a new connection resends from the acknowledged offset", "[snapshot][protocol]") {
  const auto limits = small_limits();
  auto t = transfer_of(data_of(1000));
  SnapshotReceiver r;
  auto chunks = t.next_chunks(limits);
  CHECK(pass(t, r, chunks[0], limits) == TransferVerdict::sending);
  t.next_chunks(limits);
  t.rewind();
  const auto resent = t.next_chunks(limits);
  REQUIRE(!resent.empty());
  CHECK(resent[0].offset == 100);
}

TEST_CASE("snapshot protocol: oversized, corrupted or inconsistent streams are refused and never delivered",
          "[snapshot][protocol]") {
  const auto limits = small_limits();
  std::string why;
  {  // larger than max_snapshot_bytes
    auto t = transfer_of(data_of(20000));
    SnapshotReceiver r;
    auto step = r.on_chunk(kFollower, kLeader, t.next_chunks(limits)[0], {}, limits);
    CHECK(step.ack.status == Status::failed);
    CHECK(step.refusal.find("max_snapshot_bytes") != std::string::npos);
    CHECK(t.on_ack(step.ack, why) == TransferVerdict::failed);
  }
  {  // a checksum that does not match the data
    const auto data = data_of(250);
    SnapshotTransfer t(metadata(), data, 12345, 3);
    SnapshotReceiver r;
    std::optional<Message> delivered;
    CHECK(run(t, r, delivered, limits) == TransferVerdict::failed);
    CHECK(!delivered);
    CHECK(!r.receiving());
  }
  {  // a chunk whose total differs from its transfer's
    auto t = transfer_of(data_of(300));
    SnapshotReceiver r;
    auto chunks = t.next_chunks(limits);
    r.on_chunk(kFollower, kLeader, chunks[0], {}, limits);
    auto odd = chunks[1];
    odd.total = 299;
    CHECK(r.on_chunk(kFollower, kLeader, odd, {}, limits).ack.status == Status::failed);
    CHECK(!r.receiving());
  }
  {  // an acknowledgement of more bytes than the snapshot has
    auto t = transfer_of(data_of(300));
    t.next_chunks(limits);
    CHECK(t.on_ack(SnapshotAck{kFollower, kLeader, 11, 301, Status::receiving}, why) == TransferVerdict::failed);
    CHECK(why.find("abandoning") != std::string::npos);
  }
  {  // an acknowledgement of another transfer changes nothing
    auto t = transfer_of(data_of(300));
    t.next_chunks(limits);
    CHECK(t.on_ack(SnapshotAck{kFollower, kLeader, 99, 0, Status::failed}, why) == TransferVerdict::sending);
  }
}

TEST_CASE("snapshot protocol: a newer leader's stream replaces a partial one; the older term is refused",
          "[snapshot][protocol]") {
  const auto limits = small_limits();
  auto old_t = transfer_of(data_of(500), 11, 5);
  auto new_t = transfer_of(data_of(300), 12, 6);
  SnapshotReceiver r;
  auto old_chunks = old_t.next_chunks(limits);
  r.on_chunk(kFollower, kLeader, old_chunks[0], {}, limits);
  auto new_chunks = new_t.next_chunks(limits);
  auto step = r.on_chunk(kFollower, kLeader, new_chunks[0], {}, limits);
  CHECK(step.started);
  CHECK(step.ack.status == Status::receiving);
  // The old leader's next chunk (term 5) is refused while term 6's is held.
  auto refused = r.on_chunk(kFollower, kLeader, old_chunks[1], {}, limits);
  CHECK(refused.ack.status == Status::failed);
  CHECK(refused.refusal.find("older") != std::string::npos);
  // A chunk from the middle of an unknown stream asks for its beginning.
  auto other = transfer_of(data_of(300), 13, 7);
  other.next_chunks(limits);
  std::string why;
  other.on_ack(SnapshotAck{kFollower, kLeader, 13, 100, Status::gap}, why);
  auto middle = other.next_chunks(limits);
  REQUIRE(!middle.empty());
  CHECK(r.on_chunk(kFollower, kLeader, middle[0], {}, limits).ack.status == Status::gap);
}

TEST_CASE("snapshot protocol: a partial snapshot with no chunk for the limit expires", "[snapshot][protocol]") {
  const auto limits = small_limits();
  auto t = transfer_of(data_of(500));
  SnapshotReceiver r;
  const Clock::time_point start{};
  r.on_chunk(kFollower, kLeader, t.next_chunks(limits)[0], start, limits);
  CHECK(r.expire(start + std::chrono::seconds(14), std::chrono::seconds(15)).empty());
  CHECK(r.receiving());
  const auto dropped = r.expire(start + std::chrono::seconds(15), std::chrono::seconds(15));
  REQUIRE(dropped.size() == 1);
  CHECK(dropped[0].find("100 of 500 bytes") != std::string::npos);
  CHECK(!r.receiving());
}

TEST_CASE("snapshot protocol: groups stream to one receiver side by side; a group past the cap is refused",
          "[snapshot][protocol]") {
  auto limits = small_limits();
  limits.max_partial_snapshots = 2;
  const auto a_data = data_of(450);
  const auto b_data = data_of(250);
  // Group 7 is led by a later term than group 8: terms of different groups do not compare.
  auto a = transfer_of(a_data, 11, 9, 7);
  auto b = transfer_of(b_data, 12, 2, 8);
  auto c = transfer_of(data_of(100), 13, 1, 9);
  SnapshotReceiver r;
  std::optional<Message> delivered;
  auto feed = [&](SnapshotTransfer& t, const SnapshotChunk& chunk) {
    auto step = r.on_chunk(kFollower, kLeader, chunk, Clock::time_point{}, limits);
    CHECK(step.ack.group == chunk.message.group);
    if (step.complete) delivered = std::move(step.complete);
    std::string why;
    return t.on_ack(step.ack, why);
  };
  // The first chunks of a and b interleave; both partials are held.
  auto a_first = a.next_chunks(limits);
  auto b_first = b.next_chunks(limits);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(feed(a, a_first[i]) == TransferVerdict::sending);
    CHECK(feed(b, b_first[i]) == (i == 2 ? TransferVerdict::delivered : TransferVerdict::sending));
  }
  REQUIRE(delivered);
  CHECK(delivered->group == 8);
  CHECK(delivered->snapshot_data == *b_data);
  delivered.reset();
  // b is done, so c fits beside a.
  CHECK(run(c, r, delivered, limits) == TransferVerdict::delivered);
  REQUIRE(delivered);
  CHECK(delivered->group == 9);
  delivered.reset();
  // A third group while two are held is refused; the held ones go on.
  auto d = transfer_of(data_of(300), 14, 1, 10);
  auto e = transfer_of(data_of(300), 15, 1, 11);
  CHECK(feed(d, d.next_chunks(limits)[0]) == TransferVerdict::sending);
  std::string why;
  auto refused = r.on_chunk(kFollower, kLeader, e.next_chunks(limits)[0], Clock::time_point{}, limits);
  CHECK(refused.ack.status == Status::failed);
  CHECK(refused.refusal.find("max_partial_snapshots") != std::string::npos);
  CHECK(e.on_ack(refused.ack, why) == TransferVerdict::failed);
  CHECK(run(a, r, delivered, limits) == TransferVerdict::delivered);
  REQUIRE(delivered);
  CHECK(delivered->group == 7);
  CHECK(delivered->snapshot_data == *a_data);
}

// In-process checks of the counter's membership plumbing that the process
// tests reach only by chance: the replicated client-address book survives a
// snapshot (a node that catches up from one can still redirect to members
// added before it), old and damaged snapshots load without a crash, and the
// new requests and status fields cross the wire protocol intact.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "counter_state_machine.hpp"
#include "protocol.hpp"

namespace {

using namespace raftkit;
using namespace raftkit::counter;

Entry command(Bytes payload) {
  Entry e;
  e.type = EntryType::normal;
  e.payload = std::move(payload);
  return e;
}

std::vector<std::uint8_t> body_of(const std::vector<std::uint8_t>& frame) {
  return {frame.begin() + static_cast<std::ptrdiff_t>(kFrameHeader), frame.end()};
}

// What a snapshot of `c` holds, through the stream API the node uses.
Bytes save(const Counter& c) {
  MemorySnapshotWriter out;
  REQUIRE(!c.capture_snapshot()->write_to(out));
  return out.bytes;
}
std::error_code load(Counter& c, const Bytes& snapshot) {
  MemorySnapshotReader in(snapshot);
  return c.restore_snapshot(in);
}

}  // namespace

TEST_CASE("counter: client addresses committed with 'C' survive a snapshot; an empty address forgets one",
          "[counter]") {
  Counter a;
  a.apply(command(add_command(5)));
  CHECK(decode_i64(a.apply(command(client_address_command(4, "127.0.0.1:8004")))) == 5);  // the value, unchanged
  a.apply(command(client_address_command(5, "10.0.0.5:8001")));
  a.apply(command(client_address_command(5, "")));
  CHECK(a.client_address(4) == "127.0.0.1:8004");
  CHECK(a.client_address(5).empty());

  Counter b;
  REQUIRE(!load(b, save(a)));
  CHECK(b.local_value() == 5);
  CHECK(b.client_address(4) == "127.0.0.1:8004");
  CHECK(b.client_address(5).empty());
}

TEST_CASE("counter: a value-only snapshot (the old format) loads; a truncated address book keeps what is whole",
          "[counter]") {
  Counter c;
  REQUIRE(!load(c, encode_i64(42)));
  CHECK(c.local_value() == 42);

  Counter a;
  a.apply(command(client_address_command(2, "127.0.0.1:8002")));
  a.apply(command(client_address_command(3, "127.0.0.1:8003")));
  Bytes snap = save(a);
  snap.resize(snap.size() - 3);  // cut into node 3's address
  Counter b;
  REQUIRE(!load(b, snap));
  CHECK(b.client_address(2) == "127.0.0.1:8002");
  CHECK(b.client_address(3).empty());
}

TEST_CASE("counter: a snapshot shorter than its value is refused as corrupted", "[counter]") {
  Counter c;
  CHECK(load(c, Bytes{1, 2, 3}) == errc::corrupted);
}

TEST_CASE("counter: an oversized 'C' command is ignored on every node alike", "[counter]") {
  Counter c;
  CHECK(c.apply(command(client_address_command(7, std::string(Counter::kMaxAddress + 1, 'x')))).empty());
  CHECK(c.client_address(7).empty());
}

TEST_CASE("counter protocol: add-server, remove-server and snapshot requests and the status configuration round-trip",
          "[counter]") {
  std::string err;
  auto add = decode_request(body_of(encode_request(AddServerRequest{4, "127.0.0.1:7004", "127.0.0.1:8004"})), err);
  REQUIRE(add.has_value());
  const auto& a = std::get<AddServerRequest>(*add);
  CHECK(a.id == 4);
  CHECK(a.raft_address == "127.0.0.1:7004");
  CHECK(a.client_address == "127.0.0.1:8004");
  auto remove = decode_request(body_of(encode_request(RemoveServerRequest{2})), err);
  REQUIRE(remove.has_value());
  CHECK(std::get<RemoveServerRequest>(*remove).id == 2);
  auto update = decode_request(body_of(encode_request(UpdateServerRequest{3, "10.0.0.3:7013", "10.0.0.3:8013"})), err);
  REQUIRE(update.has_value());
  const auto& u = std::get<UpdateServerRequest>(*update);  // not taken for an add-server
  CHECK(u.id == 3);
  CHECK(u.raft_address == "10.0.0.3:7013");
  CHECK(u.client_address == "10.0.0.3:8013");
  auto snap = decode_request(body_of(encode_request(SnapshotRequest{})), err);
  REQUIRE(snap.has_value());
  CHECK(std::holds_alternative<SnapshotRequest>(*snap));

  Reply r;
  r.kind = ReplyKind::ok;
  NodeInfo i;
  i.id = 3;
  i.voters = {1, 2, 3};
  i.learners = {6};
  i.staging = {4};
  i.voters_outgoing = {1, 2, 5};
  i.replacing = true;
  i.incarnation = 0xfeedface12345678ULL;
  i.snapshot_index = 77;
  r.info = i;
  auto back = decode_reply(body_of(encode_reply(r)), err);
  REQUIRE(back.has_value());
  REQUIRE(back->info.has_value());
  CHECK(back->info->voters == i.voters);
  CHECK(back->info->learners == i.learners);
  CHECK(back->info->staging == i.staging);
  CHECK(back->info->voters_outgoing == i.voters_outgoing);
  CHECK(back->info->replacing);
  CHECK(back->info->incarnation == 0xfeedface12345678ULL);
  CHECK(back->info->snapshot_index == 77);
}

// Snapshot streaming over TCP (see raftkit/tcp_transport.hpp): a snapshot
// message travels as checksummed chunks under a window, and the receiver
// delivers it only whole and verified. Every wait is bounded (run_until).
#include <catch2/catch.hpp>

#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include "raftkit/tcp_transport.hpp"
#include "storage/crc32c.hpp"
#include "transport/codec.hpp"
#include "unit/transport/run_until.hpp"

using namespace raftkit;
using raftkit::test::run_until;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

struct Peer {
  std::shared_ptr<TcpTransport> transport;
  std::vector<Message> inbox;
  std::vector<std::pair<NodeId, bool>> statuses;
};

TcpTransportOptions options_for(std::uint64_t id) {
  TcpTransportOptions o;
  o.self = NodeId{id};
  o.cluster_id = "snap-test";
  o.reconnect_initial = std::chrono::milliseconds(10);
  o.reconnect_max = std::chrono::milliseconds(100);
  o.snapshot_chunk_bytes = 1 << 20;
  o.snapshot_window_chunks = 2;
  return o;
}

std::unique_ptr<Peer> start_peer(asio::io_context& io, TcpTransportOptions o) {
  auto p = std::make_unique<Peer>();
  p->transport = make_tcp_transport(io.get_executor(), std::move(o));
  auto* raw = p.get();
  p->transport->set_snapshot_status_handler([raw](NodeId id, GroupId, bool ok) { raw->statuses.emplace_back(id, ok); });
  REQUIRE(!p->transport->start([raw](Message m) { raw->inbox.push_back(std::move(m)); }));
  return p;
}

std::string address(const Peer& p) { return fmt::format("127.0.0.1:{}", p.transport->local_port()); }

Message snapshot_message(std::uint64_t from, std::uint64_t to, std::size_t size) {
  Message m;
  m.type = MessageType::snapshot;
  m.from = NodeId{from};
  m.to = NodeId{to};
  m.term = Term{4};
  m.snapshot = SnapshotMeta{Index{1000}, Term{3}, {{NodeId{1}, NodeId{2}}, {}, {}, {}, {}}};
  m.snapshot_data.resize(size);
  for (std::size_t i = 0; i < size; ++i) m.snapshot_data[i] = static_cast<std::uint8_t>((i * 131) >> 7);
  return m;
}

void shutdown(asio::io_context& io, std::initializer_list<Peer*> peers) {
  for (auto* p : peers) p->transport->stop();
  io.restart();
  io.run_for(std::chrono::seconds(3));
}

Bytes frame_bytes(transport::FramePayload payload) {
  transport::EncodedFrame f;
  REQUIRE(!transport::encode_frame(std::move(payload), f));
  return f.to_bytes();
}

}  // namespace

TEST_CASE("snapshot stream: a multi-chunk snapshot arrives whole and the sender hears it was delivered",
          "[tcp][snapshot]") {
  asio::io_context io;
  auto a = start_peer(io, options_for(1));
  auto b = start_peer(io, options_for(2));
  a->transport->set_peer(NodeId{2}, address(*b));
  b->transport->set_peer(NodeId{1}, address(*a));  // acknowledgements travel back on b's own connection
  const Message sent = snapshot_message(1, 2, (11 << 20) / 2 + 3);  // 5.5 MiB: six chunks, odd tail
  a->transport->send(sent);
  REQUIRE(run_until(io, [&] { return !b->inbox.empty() && !a->statuses.empty(); }, std::chrono::seconds(20)));
  REQUIRE(b->inbox.size() == 1);
  CHECK(b->inbox[0] == sent);
  CHECK(a->statuses == std::vector<std::pair<NodeId, bool>>{{NodeId{2}, true}});
  // An empty snapshot is one chunk.
  const Message empty = snapshot_message(1, 2, 0);
  a->transport->send(empty);
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 2 && a->statuses.size() == 2; }, std::chrono::seconds(10)));
  CHECK(b->inbox[1] == empty);
  CHECK(a->statuses[1].second);
  shutdown(io, {a.get(), b.get()});
}

TEST_CASE("snapshot stream: after a lost connection the transfer resumes at the acknowledged offset",
          "[tcp][snapshot]") {
  asio::io_context io;
  auto oa = options_for(1);
  oa.snapshot_window_chunks = 1;
  auto a = start_peer(io, oa);
  auto b = start_peer(io, options_for(2));
  a->transport->set_peer(NodeId{2}, address(*b));
  b->transport->set_peer(NodeId{1}, address(*a));
  const Message sent = snapshot_message(1, 2, 8 << 20);
  a->transport->send(sent);
  REQUIRE(run_until(io, [&] { return a->transport->stats().bytes_sent >= (4u << 20); }, std::chrono::seconds(20)));
  a->transport->set_peer(NodeId{2}, address(*b));  // same address: the connection is closed and dialled again
  REQUIRE(run_until(io, [&] { return !b->inbox.empty() && !a->statuses.empty(); }, std::chrono::seconds(20)));
  CHECK(b->inbox[0] == sent);
  CHECK(a->statuses[0].second);
  // Resumed, not restarted: at most the window in flight (and the chunk in
  // the cut write) was sent twice; a restart would have sent 4 MiB + 8 MiB.
  CHECK(a->transport->stats().bytes_sent < (11u << 20));
  shutdown(io, {a.get(), b.get()});
}

TEST_CASE("snapshot stream: a follower that cannot be reached is reported as a failed snapshot", "[tcp][snapshot]") {
  asio::io_context io;
  auto o = options_for(1);
  o.peers[NodeId{2}] = "127.0.0.1:1";  // nothing listens there
  auto a = start_peer(io, o);
  a->transport->send(snapshot_message(1, 2, 3 << 20));
  REQUIRE(run_until(io, [&] { return !a->statuses.empty(); }, std::chrono::seconds(10)));
  CHECK(a->statuses[0] == std::pair<NodeId, bool>{NodeId{2}, false});
  shutdown(io, {a.get()});
}

TEST_CASE("snapshot stream: chunks out of order, oversized, or failing the checksum are refused, never delivered",
          "[tcp][snapshot]") {
  asio::io_context io;
  auto o = options_for(2);
  o.max_snapshot_bytes = 8 << 20;
  o.peers[NodeId{1}] = "127.0.0.1:1";  // acknowledgements to node 1 go nowhere; what matters is what b delivers
  auto b = start_peer(io, o);
  // The hostile peer writes from its own thread and io_context: the node's
  // loop must keep running to read what it writes.
  asio::io_context raw_io;
  tcp::socket raw(raw_io);
  raw.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b->transport->local_port()));
  std::vector<Bytes> frames;
  frames.push_back(frame_bytes(transport::Handshake{"snap-test", NodeId{1}, transport::kProtocolVersion, NodeId{2}}));

  Message meta = snapshot_message(1, 2, 0);
  const Bytes data(2 << 20, 0x5a);
  const std::uint32_t crc = storage::crc32c(data.data(), data.size());
  auto chunk = [&](std::uint64_t transfer, std::uint64_t offset, std::uint64_t total, std::uint32_t checksum,
                   std::size_t length) {
    transport::SnapshotChunk c;
    c.message = meta;
    c.transfer = transfer;
    c.offset = offset;
    c.total = total;
    c.checksum = checksum;
    c.data.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(length));
    return frame_bytes(std::move(c));
  };
  const std::size_t half = 1 << 20;
  // Out of order: the second half of a transfer b never saw the start of.
  frames.push_back(chunk(7, half, data.size(), crc, half));
  // Larger than max_snapshot_bytes.
  frames.push_back(chunk(8, 0, 9 << 20, crc, half));
  // Whole, but the checksum does not match.
  frames.push_back(chunk(9, 0, data.size(), crc ^ 1, half));
  frames.push_back(chunk(9, half, data.size(), crc ^ 1, half));
  // And then a good one, which must be delivered: the connection survived.
  frames.push_back(chunk(10, 0, data.size(), crc, half));
  frames.push_back(chunk(10, half, data.size(), crc, half));
  std::thread writer([&] {
    boost::system::error_code ec;
    for (const Bytes& f : frames) asio::write(raw, asio::buffer(f), ec);
  });
  const bool delivered = run_until(io, [&] { return !b->inbox.empty(); }, std::chrono::seconds(10));
  writer.join();
  REQUIRE(delivered);
  REQUIRE(b->inbox.size() == 1);
  CHECK(b->inbox[0].snapshot_data == data);
  CHECK(b->inbox[0].snapshot == meta.snapshot);
  CHECK(b->transport->stats().protocol_errors == 0);  // refusals are answers, not broken connections
  raw.close();
  shutdown(io, {b.get()});
}

TEST_CASE("snapshot stream codec: chunks and acknowledgements round-trip; a chunk past its total is malformed",
          "[codec][snapshot]") {
  transport::SnapshotChunk c;
  c.message = snapshot_message(1, 2, 0);
  c.transfer = 42;
  c.offset = 8;
  c.total = 24;
  c.checksum = 0xdeadbeef;
  auto shared = std::make_shared<const Bytes>(Bytes(24, 7));
  c.shared = shared;
  c.shared_length = 16;
  transport::FramePayload back;
  REQUIRE(!transport::decode_frame(frame_bytes(c), back));
  REQUIRE(std::holds_alternative<transport::SnapshotChunk>(back));
  CHECK(std::get<transport::SnapshotChunk>(back) == c);
  CHECK(std::get<transport::SnapshotChunk>(back).data == Bytes(16, 7));

  const transport::SnapshotAck ack{NodeId{2}, NodeId{1}, 42, 16, transport::SnapshotAck::Status::gap, 77};
  REQUIRE(!transport::decode_frame(frame_bytes(ack), back));
  CHECK(std::get<transport::SnapshotAck>(back) == ack);

  transport::SnapshotChunk bad = c;
  bad.shared.reset();
  bad.data = Bytes(16, 7);
  bad.total = 20;  // offset 8 + 16 bytes > 20
  CHECK(transport::decode_frame(frame_bytes(bad), back) == errc::protocol_error);
  transport::SnapshotChunk not_snapshot = c;
  not_snapshot.message.type = MessageType::append;
  CHECK(transport::decode_frame(frame_bytes(not_snapshot), back) == errc::protocol_error);
}

TEST_CASE("snapshot stream: a new leader's stream replaces a partial one; the old leader's rest is refused",
          "[tcp][snapshot]") {
  // Rule: one partial snapshot is held at a time; a stream from a later term
  // restarts reassembly cleanly, and chunks of the older term are refused.
  asio::io_context io;
  auto o = options_for(2);
  o.peers[NodeId{1}] = "127.0.0.1:1";  // acknowledgements go nowhere: what matters is what b delivers
  o.peers[NodeId{3}] = "127.0.0.1:1";
  auto b = start_peer(io, o);
  const std::size_t half = 1 << 20;
  const Bytes data(2 * half, 0x33);
  const std::uint32_t crc = storage::crc32c(data.data(), data.size());
  auto chunk = [&](std::uint64_t from, std::uint64_t term, std::uint64_t transfer, std::uint64_t offset) {
    transport::SnapshotChunk c;
    c.message = snapshot_message(from, 2, 0);
    c.message.term = Term{term};
    c.transfer = transfer;
    c.offset = offset;
    c.total = data.size();
    c.checksum = crc;
    c.data.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(half));
    return frame_bytes(std::move(c));
  };
  asio::io_context raw_io;
  auto connect_as = [&](std::uint64_t id) {
    auto s = std::make_unique<tcp::socket>(raw_io);
    s->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b->transport->local_port()));
    asio::write(*s, asio::buffer(frame_bytes(transport::Handshake{"snap-test", NodeId{id}, transport::kProtocolVersion, NodeId{2}})));
    return s;
  };
  auto old_leader = connect_as(1);
  auto new_leader = connect_as(3);
  auto write_all = [](tcp::socket& s, std::vector<Bytes> frames) {
    return std::thread([&s, frames = std::move(frames)] {
      boost::system::error_code ec;
      for (const Bytes& f : frames) asio::write(s, asio::buffer(f), ec);
    });
  };
  // The old leader (term 4) sends half; b holds it.
  auto t1 = write_all(*old_leader, {chunk(1, 4, 100, 0)});
  REQUIRE(run_until(io, [&] { return b->transport->stats().bytes_received >= half; }, std::chrono::seconds(10)));
  t1.join();
  // The new leader (term 5) streams a whole snapshot: it replaces the partial one.
  auto t2 = write_all(*new_leader, {chunk(3, 5, 200, 0), chunk(3, 5, 200, half)});
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 1; }, std::chrono::seconds(10)));
  t2.join();
  CHECK(b->inbox[0].from == NodeId{3});
  CHECK(b->inbox[0].term == Term{5});
  CHECK(b->inbox[0].snapshot_data == data);
  // The old leader's second half belongs to a stream b no longer holds: not
  // delivered (b asks for a restart, which the old leader's core would
  // refuse anyway in its later term).
  const std::uint64_t before = b->transport->stats().bytes_received;
  auto t3 = write_all(*old_leader, {chunk(1, 4, 100, half)});
  REQUIRE(run_until(io, [&] { return b->transport->stats().bytes_received >= before + half; },
                    std::chrono::seconds(10)));
  t3.join();
  CHECK(b->inbox.size() == 1);
  old_leader->close();
  new_leader->close();
  shutdown(io, {b.get()});
}

TEST_CASE("snapshot stream: a partial snapshot whose sender went silent is dropped", "[tcp][snapshot]") {
  // Rule: after three stall timeouts without a chunk the follower forgets a
  // partial snapshot; a late rest of it is then not delivered.
  asio::io_context io;
  auto o = options_for(2);
  o.peers[NodeId{1}] = "127.0.0.1:1";
  o.snapshot_stall_timeout = std::chrono::milliseconds(50);
  auto b = start_peer(io, o);
  const std::size_t half = 1 << 20;
  const Bytes data(2 * half, 0x44);
  const std::uint32_t crc = storage::crc32c(data.data(), data.size());
  auto chunk = [&](std::uint64_t transfer, std::uint64_t offset) {
    transport::SnapshotChunk c;
    c.message = snapshot_message(1, 2, 0);
    c.transfer = transfer;
    c.offset = offset;
    c.total = data.size();
    c.checksum = crc;
    c.data.assign(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(half));
    return frame_bytes(std::move(c));
  };
  asio::io_context raw_io;
  tcp::socket raw(raw_io);
  raw.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), b->transport->local_port()));
  asio::write(raw, asio::buffer(frame_bytes(transport::Handshake{"snap-test", NodeId{1}, transport::kProtocolVersion, NodeId{2}})));
  auto send = [&](Bytes f) {
    const std::uint64_t before = b->transport->stats().bytes_received;
    std::thread t([&raw, f = std::move(f)] {
      boost::system::error_code ec;
      asio::write(raw, asio::buffer(f), ec);
    });
    REQUIRE(run_until(io, [&] { return b->transport->stats().bytes_received >= before + half; },
                      std::chrono::seconds(10)));
    t.join();
  };
  send(chunk(5, 0));
  // Three stall timeouts (150 ms) and the timer's own period: the wait is the behaviour under test.
  run_until(io, [] { return false; }, std::chrono::milliseconds(400));
  send(chunk(5, half));
  CHECK(b->inbox.empty());
  // A fresh stream is taken as usual.
  send(chunk(6, 0));
  send(chunk(6, half));
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 1; }, std::chrono::seconds(10)));
  CHECK(b->inbox[0].snapshot_data == data);
  raw.close();
  shutdown(io, {b.get()});
}

// TCP transport on 127.0.0.1 with ephemeral ports, several nodes in one
// process: delivery, handshake refusal, hostile peers, reconnect, and sends
// from another thread. Every wait is bounded (run_until), none is a sleep.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>

#include "raftkit/tcp_transport.hpp"
#include "transport/codec.hpp"
#include "unit/transport/run_until.hpp"
#include "unit/transport/test_messages.hpp"

using namespace raftkit;
using raftkit::test::run_until;
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

struct TestNode {
  std::shared_ptr<TcpTransport> transport;
  std::vector<Message> inbox;
  std::vector<NodeId> unreachable;
};

TcpTransportOptions options_for(std::uint64_t id, std::string cluster = "test-cluster") {
  TcpTransportOptions o;
  o.self = NodeId{id};
  o.cluster_id = std::move(cluster);
  o.reconnect_initial = std::chrono::milliseconds(10);
  o.reconnect_max = std::chrono::milliseconds(100);
  o.handshake_timeout = std::chrono::milliseconds(1000);
  return o;
}

std::unique_ptr<TestNode> start_node(asio::io_context& io, TcpTransportOptions o) {
  auto node = std::make_unique<TestNode>();
  node->transport = make_tcp_transport(io.get_executor(), std::move(o));
  auto* raw = node.get();
  REQUIRE(!node->transport->start([raw](Message m) { raw->inbox.push_back(std::move(m)); },
                                  [raw](NodeId id) { raw->unreachable.push_back(id); }));
  REQUIRE(node->transport->local_port() != 0);
  return node;
}

std::string address(const TestNode& n) { return fmt::format("127.0.0.1:{}", n.transport->local_port()); }

Message message(std::uint64_t from, std::uint64_t to, std::uint64_t context) {
  Message m = test::full_message(MessageType::append);
  m.from = NodeId{from};
  m.to = NodeId{to};
  m.context = context;
  return m;
}

void shutdown(asio::io_context& io, std::initializer_list<TestNode*> nodes) {
  for (auto* n : nodes) n->transport->stop();
  io.restart();
  io.run_for(std::chrono::seconds(3));  // returns as soon as every coroutine has unwound
  CHECK(io.stopped());
}

// A raw client socket that speaks whatever bytes the test wants.
struct RawClient {
  tcp::socket socket;
  bool closed_by_server = false;
  explicit RawClient(asio::io_context& io, std::uint16_t port) : socket(io) {
    socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  void send(const Bytes& bytes) { asio::write(socket, asio::buffer(bytes)); }
  // Reads until the server closes the connection (discarding what it sends).
  void watch(std::shared_ptr<std::array<std::uint8_t, 256>> buf = std::make_shared<std::array<std::uint8_t, 256>>()) {
    socket.async_read_some(asio::buffer(*buf), [this, buf](boost::system::error_code ec, std::size_t) {
      if (ec) {
        closed_by_server = true;
        return;
      }
      watch(buf);
    });
  }
};

Bytes handshake_bytes(std::string cluster, std::uint64_t from, std::uint64_t to) {
  transport::EncodedFrame f;
  REQUIRE(!transport::encode_frame(transport::Handshake{std::move(cluster), NodeId{from}, transport::kProtocolVersion, NodeId{to}}, f));
  return f.to_bytes();
}

}  // namespace

TEST_CASE("tcp: three nodes exchange messages, in order, payloads intact", "[tcp]") {
  asio::io_context io;
  auto a = start_node(io, options_for(1));
  auto b = start_node(io, options_for(2));
  auto c = start_node(io, options_for(3));
  TestNode* nodes[] = {a.get(), b.get(), c.get()};
  for (auto* n : nodes)
    for (auto* p : nodes)
      if (n != p) n->transport->set_peer(p->transport->self(), address(*p));

  constexpr std::uint64_t kCount = 300;  // enough to exercise coalesced writes
  for (std::uint64_t i = 0; i < kCount; ++i) {
    a->transport->send(message(1, 2, i));
    a->transport->send(message(1, 3, i));
  }
  b->transport->send(message(2, 1, 7));
  c->transport->send(message(3, 2, 8));
  REQUIRE(run_until(io, [&] { return b->inbox.size() == kCount + 1 && c->inbox.size() == kCount && a->inbox.size() == 1; }));
  std::uint64_t next = 0;
  for (const auto& m : b->inbox) {
    if (m.from == NodeId{1}) CHECK(m == message(1, 2, next++));
    else CHECK(m == message(3, 2, 8));
  }
  for (std::uint64_t i = 0; i < kCount; ++i) CHECK(c->inbox[i] == message(1, 3, i));
  CHECK(a->inbox[0] == message(2, 1, 7));
  CHECK(a->transport->connected_peers() == 2);
  CHECK(a->transport->stats().sent == 2 * kCount);
  CHECK(b->transport->stats().received == kCount + 1);
  CHECK(a->transport->stats().protocol_errors == 0);

  // A message to an unknown node is dropped and counted.
  a->transport->send(message(1, 42, 0));
  REQUIRE(run_until(io, [&] { return a->transport->stats().dropped == 1; }));
  shutdown(io, {a.get(), b.get(), c.get()});
}

TEST_CASE("tcp: the address book follows the configuration: new members are reached, removed ones dropped",
          "[tcp][membership]") {
  asio::io_context io;
  auto a = start_node(io, options_for(1));
  auto b = start_node(io, options_for(2));
  auto c = start_node(io, options_for(3));
  // a and b know each other; c is a server being added, known to nobody.
  a->transport->update_peers({{NodeId{1}, address(*a)}, {NodeId{2}, address(*b)}});
  b->transport->update_peers({{NodeId{1}, address(*a)}, {NodeId{2}, address(*b)}});
  c->transport->update_peers({{NodeId{1}, address(*a)}, {NodeId{3}, address(*c)}});
  a->transport->send(message(1, 3, 0));
  REQUIRE(run_until(io, [&] { return a->transport->stats().dropped == 1; }));  // not a member yet
  // The configuration that adds c reaches a (and b): a dials c, and c's
  // answers are accepted because c is in a's book now.
  const std::map<NodeId, std::string> with_c = {
      {NodeId{1}, address(*a)}, {NodeId{2}, address(*b)}, {NodeId{3}, address(*c)}};
  a->transport->update_peers(with_c);
  b->transport->update_peers(with_c);
  a->transport->send(message(1, 3, 1));
  REQUIRE(run_until(io, [&] { return c->inbox.size() == 1; }));
  c->transport->send(message(3, 1, 2));
  REQUIRE(run_until(io, [&] { return a->inbox.size() == 1; }));
  CHECK(a->inbox[0] == message(3, 1, 2));
  // b is removed, and b's configuration drops a: neither dials the other.
  // Once b's connection to a is gone, a has no way to b: a message to it is
  // dropped (counted). An empty book (a node that has not learned its
  // configuration) changes nothing.
  a->transport->update_peers({{NodeId{1}, address(*a)}, {NodeId{3}, address(*c)}});
  b->transport->update_peers({{NodeId{2}, address(*b)}, {NodeId{3}, address(*c)}});
  REQUIRE(run_until(io, [&] { return a->transport->inbound_connections() == 1; }));  // c's alone
  a->transport->update_peers({});
  const auto dropped = a->transport->stats().dropped;
  a->transport->send(message(1, 2, 3));
  REQUIRE(run_until(io, [&] { return a->transport->stats().dropped == dropped + 1; }));
  a->transport->send(message(1, 3, 4));
  REQUIRE(run_until(io, [&] { return c->inbox.size() == 2; }));
  shutdown(io, {a.get(), b.get(), c.get()});
}

TEST_CASE("tcp: a peer of another cluster is refused; a node of this cluster outside the peer list is heard",
          "[tcp][handshake]") {
  asio::io_context io;
  auto a = start_node(io, options_for(1));
  auto stranger = start_node(io, options_for(2, "other-cluster"));  // id 2 is known to a, cluster is not
  auto newcomer = start_node(io, options_for(9));                     // right cluster, not in a's peers
  a->transport->set_peer(NodeId{2}, address(*stranger));
  stranger->transport->set_peer(NodeId{1}, address(*a));
  newcomer->transport->set_peer(NodeId{1}, address(*a));
  stranger->transport->send(message(2, 1, 0));
  newcomer->transport->send(message(9, 1, 0));
  REQUIRE(run_until(io, [&] {
    return a->transport->stats().protocol_errors >= 2 && stranger->transport->stats().protocol_errors >= 1 &&
           a->inbox.size() == 1;
  }));
  CHECK(a->inbox[0] == message(9, 1, 0));
  CHECK(stranger->transport->connected_peers() == 0);
  CHECK(newcomer->transport->connected_peers() == 1);
  CHECK(newcomer->transport->stats().protocol_errors == 0);
  CHECK(!stranger->unreachable.empty());
  // a's own dial to the stranger is refused by the stranger in turn.
  REQUIRE(run_until(io, [&] { return stranger->transport->stats().protocol_errors >= 2; }));
  CHECK(a->transport->connected_peers() == 0);
  shutdown(io, {a.get(), stranger.get(), newcomer.get()});
}

// Issue 20, hole G: a node catching up from an old configuration (one that
// lacks the current leader) must hear the leader and answer it. The
// configuration tells the transport whom to dial, not whom to hear.
TEST_CASE("tcp: a node whose peer list lacks the sender hears it and answers it over the sender's connection",
          "[tcp][membership]") {
  asio::io_context io;
  auto leader = std::make_unique<TestNode>();
  std::vector<std::pair<NodeId, bool>> statuses;
  leader->transport = make_tcp_transport(io.get_executor(), options_for(7));
  leader->transport->set_snapshot_status_handler([&](NodeId id, GroupId, bool ok) { statuses.emplace_back(id, ok); });
  auto* raw = leader.get();
  REQUIRE(!leader->transport->start([raw](Message m) { raw->inbox.push_back(std::move(m)); }));
  auto follower = start_node(io, options_for(2));
  auto other = start_node(io, options_for(3));
  // The follower applied the bootstrap configuration {2, 3}; node 7 joined later.
  follower->transport->update_peers({{NodeId{2}, address(*follower)}, {NodeId{3}, address(*other)}});
  leader->transport->update_peers(
      {{NodeId{7}, address(*leader)}, {NodeId{2}, address(*follower)}, {NodeId{3}, address(*other)}});

  leader->transport->send(message(7, 2, 1));
  REQUIRE(run_until(io, [&] { return follower->inbox.size() == 1; }));
  CHECK(follower->inbox[0] == message(7, 2, 1));
  follower->transport->send(message(2, 7, 2));  // the acknowledgement
  REQUIRE(run_until(io, [&] { return leader->inbox.size() == 1; }));
  CHECK(leader->inbox[0] == message(2, 7, 2));

  // A snapshot too: its chunks' acknowledgements travel back the same way.
  Message snap = message(7, 2, 3);
  snap.type = MessageType::snapshot;
  snap.entries.clear();
  snap.snapshot = SnapshotMeta{Index{10}, Term{1}, {}};
  snap.snapshot_data.assign(3000, 0x5a);
  leader->transport->send(snap);
  REQUIRE(run_until(io, [&] { return statuses.size() == 1 && follower->inbox.size() == 2; }));
  CHECK(statuses[0] == std::make_pair(NodeId{2}, true));
  CHECK(follower->inbox[1] == snap);

  CHECK(follower->transport->stats().dropped == 0);
  CHECK(follower->transport->stats().protocol_errors == 0);
  CHECK(leader->transport->stats().protocol_errors == 0);
  shutdown(io, {leader.get(), follower.get(), other.get()});
}

TEST_CASE("tcp: garbage, oversized frames and spoofed senders close that connection only", "[tcp][hostile]") {
  asio::io_context io;
  auto a = start_node(io, options_for(1));
  auto b = start_node(io, options_for(2));
  a->transport->set_peer(NodeId{2}, address(*b));
  b->transport->set_peer(NodeId{1}, address(*a));
  // A third id the hostile clients can claim in their handshake.
  a->transport->set_peer(NodeId{3}, "127.0.0.1:1");

  std::uint64_t errors = 0;
  auto expect_disconnect = [&](const Bytes& bytes) {
    RawClient raw(io, a->transport->local_port());
    raw.send(bytes);
    raw.watch();
    REQUIRE(run_until(io, [&] { return raw.closed_by_server; }));
    CHECK(a->transport->stats().protocol_errors == ++errors);
  };

  // 1. Not even a frame header.
  expect_disconnect(to_bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  // 2. A header announcing 1 GiB: refused before allocating.
  expect_disconnect(Bytes{'R', 'K', transport::kFrameVersion, 0, 0, 0, 0, 0x40});
  // 3. A valid handshake, then a well-framed body of garbage.
  {
    Bytes bytes = handshake_bytes("test-cluster", 3, 1);
    Bytes junk{'R', 'K', transport::kFrameVersion, 0, 16, 0, 0, 0};
    for (int i = 0; i < 16; ++i) junk.push_back(static_cast<std::uint8_t>(0xA5 ^ i));
    bytes.insert(bytes.end(), junk.begin(), junk.end());
    expect_disconnect(bytes);
  }
  // 4. A valid handshake as node 3, then a message claiming to come from node 2.
  {
    Bytes bytes = handshake_bytes("test-cluster", 3, 1);
    Bytes spoof = transport::encode_to_bytes(message(2, 1, 0));
    bytes.insert(bytes.end(), spoof.begin(), spoof.end());
    expect_disconnect(bytes);
  }
  // 5. A handshake dialling the wrong node id.
  expect_disconnect(handshake_bytes("test-cluster", 3, 5));

  // The node still works: b's messages keep arriving.
  b->transport->send(message(2, 1, 1));
  REQUIRE(run_until(io, [&] { return a->inbox.size() == 1; }));
  CHECK(a->inbox[0] == message(2, 1, 1));
  shutdown(io, {a.get(), b.get()});
}

TEST_CASE("tcp: the sender reconnects after its peer restarts on the same port", "[tcp][reconnect]") {
  asio::io_context io;
  auto a = start_node(io, options_for(1));
  auto b = start_node(io, options_for(2));
  const auto b_port = b->transport->local_port();
  a->transport->set_peer(NodeId{2}, address(*b));
  b->transport->set_peer(NodeId{1}, address(*a));
  a->transport->send(message(1, 2, 1));
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 1; }));

  b->transport->stop();
  REQUIRE(run_until(io, [&] { return !a->unreachable.empty() && a->transport->connected_peers() == 0; }));
  b.reset();

  auto opts = options_for(2);
  opts.listen_port = b_port;
  opts.peers[NodeId{1}] = address(*a);
  auto b2 = start_node(io, opts);
  // Keep sending (Raft would retry too) until the restarted peer hears us.
  REQUIRE(run_until(io, [&] {
    a->transport->send(message(1, 2, 2));
    return !b2->inbox.empty();
  }));
  CHECK(b2->inbox.front() == message(1, 2, 2));
  CHECK(a->transport->connected_peers() == 1);
  shutdown(io, {a.get(), b2.get()});
}

TEST_CASE("tcp: send() from another thread while the io_context runs elsewhere", "[tcp][threads]") {
  asio::io_context io;
  std::atomic<std::uint64_t> received{0};
  auto make = [&](std::uint64_t id) {
    auto t = make_tcp_transport(io.get_executor(), options_for(id));
    REQUIRE(!t->start([&received](Message) { received.fetch_add(1); }));
    return t;
  };
  auto a = make(1);
  auto b = make(2);
  a->set_peer(NodeId{2}, fmt::format("127.0.0.1:{}", b->local_port()));
  b->set_peer(NodeId{1}, fmt::format("127.0.0.1:{}", a->local_port()));
  auto guard = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  constexpr std::uint64_t kCount = 500;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (a->connected_peers() == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  REQUIRE(a->connected_peers() == 1);
  for (std::uint64_t i = 0; i < kCount; ++i) {
    Message m;
    m.type = MessageType::heartbeat;
    m.from = NodeId{1};
    m.to = NodeId{2};
    m.context = i;
    a->send(std::move(m));
  }
  while (received.load() < kCount && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  CHECK(received.load() == kCount);
  a->stop();
  b->stop();
  guard.reset();
  runner.join();
}

// The probe a node runs before it bootstraps (Transport::probe_peers): the
// answering transports run on their own thread, as a running cluster's do;
// the probe blocks the test's thread and needs no running executor.
TEST_CASE("tcp: a probe reads each peer's standing; a peer that is down, silent or of another cluster is not reached",
          "[tcp][probe]") {
  asio::io_context io;
  auto guard = asio::make_work_guard(io);
  auto member = start_node(io, options_for(2));
  auto fresh = start_node(io, options_for(3));
  auto other = start_node(io, options_for(4, "another-cluster"));
  member->transport->set_standing(ClusterStanding{true, NodeId{2}, Index{57}});
  // A port nobody listens on, and one that accepts but never answers.
  std::uint16_t down_port = 0;
  {
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    down_port = a.local_endpoint().port();
  }
  tcp::acceptor silent(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  std::thread runner([&io] { io.run(); });

  auto asker = make_tcp_transport(io.get_executor(), options_for(1));  // not started: a node before its start
  const std::map<NodeId, std::string> peers = {
      {NodeId{1}, "127.0.0.1:1"},  // itself: skipped
      {NodeId{2}, address(*member)},
      {NodeId{3}, address(*fresh)},
      {NodeId{4}, address(*other)},
      {NodeId{5}, fmt::format("127.0.0.1:{}", down_port)},
      {NodeId{6}, fmt::format("127.0.0.1:{}", silent.local_endpoint().port())}};
  const auto began = std::chrono::steady_clock::now();
  const auto answers = asker->probe_peers(peers, std::chrono::milliseconds(700));
  const auto took = std::chrono::steady_clock::now() - began;
  REQUIRE(answers.has_value());
  REQUIRE(answers->size() == 5);
  std::map<std::uint64_t, PeerStanding> by_id;
  for (const auto& a : *answers) by_id[a.id.value] = a;
  CHECK(by_id[2].reached);
  CHECK(by_id[2].standing == ClusterStanding{true, NodeId{2}, Index{57}});
  CHECK(by_id[3].reached);
  CHECK_FALSE(by_id[3].standing.member);  // told nothing: not a member
  CHECK_FALSE(by_id[4].reached);
  CHECK(by_id[4].problem.find("cluster id") != std::string::npos);
  CHECK_FALSE(by_id[5].reached);
  CHECK_FALSE(by_id[5].problem.empty());
  CHECK_FALSE(by_id[6].reached);
  CHECK(by_id[6].problem.find("no answer within 700 ms") != std::string::npos);
  CHECK(took < std::chrono::milliseconds(1500));  // one deadline for all, not one per peer

  // Without a silent peer the probe returns as soon as every answer is in.
  const std::map<NodeId, std::string> quick = {{NodeId{2}, address(*member)}, {NodeId{3}, address(*fresh)}};
  const auto quick_began = std::chrono::steady_clock::now();
  const auto quick_answers = asker->probe_peers(quick, std::chrono::seconds(20));
  CHECK(std::chrono::steady_clock::now() - quick_began < std::chrono::seconds(10));
  REQUIRE(quick_answers.has_value());
  CHECK(quick_answers->size() == 2);

  silent.close();
  guard.reset();
  for (auto* n : {member.get(), fresh.get(), other.get()}) n->transport->stop();
  runner.join();
}

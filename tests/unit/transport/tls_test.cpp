// Mutual TLS on the TCP transport and the hostile-input limits of its port.
// Each refusal test also checks that nothing got through (no message
// delivered from the intruder) and that the real peers keep exchanging
// messages. Certificates come from scripts/make-certs.sh at test time
// (test_pki.hpp). Every wait is bounded (run_until); none is a sleep.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>

#include "raftkit/tcp_transport.hpp"
#include "raftkit/tls.hpp"
#include "transport/codec.hpp"
#include "unit/transport/run_until.hpp"
#include "unit/transport/test_messages.hpp"
#include "unit/transport/test_pki.hpp"

using namespace raftkit;
using raftkit::test::run_until;
using raftkit::test::TestPki;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

struct TestNode {
  std::shared_ptr<TcpTransport> transport;
  std::vector<Message> inbox;
};

TcpTransportOptions tls_options(std::uint64_t id, TlsOptions tls) {
  TcpTransportOptions o;
  o.self = NodeId{id};
  o.cluster_id = TestPki::kCluster;
  o.reconnect_initial = std::chrono::milliseconds(10);
  o.reconnect_max = std::chrono::milliseconds(100);
  // Generous: one thread serves every node of a test, and sanitizer builds on
  // a shared machine are slow; the timeout's own tests set their own.
  o.handshake_timeout = std::chrono::milliseconds(5000);
  o.tls = std::move(tls);
  return o;
}

std::unique_ptr<TestNode> start_node(asio::io_context& io, TcpTransportOptions o) {
  auto node = std::make_unique<TestNode>();
  node->transport = make_tcp_transport(io.get_executor(), std::move(o));
  auto* raw = node.get();
  REQUIRE(!node->transport->start([raw](Message m) { raw->inbox.push_back(std::move(m)); }));
  REQUIRE(node->transport->local_port() != 0);
  return node;
}

std::string address(const TestNode& n) { return fmt::format("127.0.0.1:{}", n.transport->local_port()); }

Message message(std::uint64_t from, std::uint64_t to, std::uint64_t context) {
  Message m;
  m.type = MessageType::heartbeat;
  m.from = NodeId{from};
  m.to = NodeId{to};
  m.term = Term{1};
  m.context = context;
  return m;
}

void shutdown(asio::io_context& io, std::initializer_list<TestNode*> nodes) {
  for (auto* n : nodes) n->transport->stop();
  io.restart();
  io.run_for(std::chrono::seconds(3));
  CHECK(io.stopped());
}

// Nodes 1 and 2 with their real certificates, each knowing the other, plus
// node 3 known to node 1 at a dead address (an id intruders can claim).
struct RealPair {
  std::unique_ptr<TestNode> a, b;
  std::uint64_t next = 1000;
  explicit RealPair(asio::io_context& io, TcpTransportOptions (*tweak)(TcpTransportOptions) = nullptr) {
    auto oa = tls_options(1, TestPki::get().node(1));
    auto ob = tls_options(2, TestPki::get().node(2));
    if (tweak) oa = tweak(oa);
    a = start_node(io, oa);
    b = start_node(io, ob);
    a->transport->set_peer(NodeId{2}, address(*b));
    a->transport->set_peer(NodeId{3}, "127.0.0.1:1");
    b->transport->set_peer(NodeId{1}, address(*a));
  }
  // Both directions deliver, and nothing came from anyone else.
  void check_delivery(asio::io_context& io) {
    const auto ctx = ++next;
    a->transport->send(message(1, 2, ctx));
    b->transport->send(message(2, 1, ctx));
    REQUIRE(run_until(io, [&] {
      return !a->inbox.empty() && a->inbox.back() == message(2, 1, ctx) && !b->inbox.empty() &&
             b->inbox.back() == message(1, 2, ctx);
    }));
    for (const auto& m : a->inbox) CHECK(m.from == NodeId{2});
    for (const auto& m : b->inbox) CHECK(m.from == NodeId{1});
  }
};

// A hand-driven TLS client: any certificate, any bytes.
struct RawTls {
  std::shared_ptr<ssl::context> context;
  std::unique_ptr<ssl::stream<tcp::socket>> stream;
  bool closed_by_server = false;

  RawTls(asio::io_context& io, std::uint16_t port, const TlsOptions& tls) {
    std::string error;
    auto creds = TlsCredentials::load(tls, error);
    REQUIRE(creds);
    context = creds->context();
    stream = std::make_unique<ssl::stream<tcp::socket>>(io, *context);
    stream->next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  }
  // Our side of the handshake (TLS 1.3: the server judges our certificate after it).
  boost::system::error_code handshake(asio::io_context& io) {
    bool done = false;
    boost::system::error_code result;
    stream->async_handshake(ssl::stream_base::client, [&](boost::system::error_code ec) {
      result = ec;
      done = true;
    });
    REQUIRE(run_until(io, [&] { return done; }));
    return result;
  }
  void send(asio::io_context& io, const Bytes& bytes) {
    bool done = false;
    asio::async_write(*stream, asio::buffer(bytes), [&](boost::system::error_code, std::size_t) { done = true; });
    REQUIRE(run_until(io, [&] { return done; }));
  }
  void watch(std::shared_ptr<std::array<std::uint8_t, 256>> buf = std::make_shared<std::array<std::uint8_t, 256>>()) {
    stream->async_read_some(asio::buffer(*buf), [this, buf](boost::system::error_code ec, std::size_t) {
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
  REQUIRE(!transport::encode_frame(
      transport::Handshake{std::move(cluster), NodeId{from}, transport::kProtocolVersion, NodeId{to}}, f));
  return f.to_bytes();
}

// Connects with `tls`, says hello as `claimed` node, and waits for node a to
// close the connection. Returns whether it did.
bool intruder_is_refused(asio::io_context& io, RealPair& pair, const TlsOptions& tls, std::uint64_t claimed,
                         const std::string& cluster = TestPki::kCluster) {
  const auto errors = pair.a->transport->stats().protocol_errors;
  RawTls raw(io, pair.a->transport->local_port(), tls);
  if (!raw.handshake(io)) raw.send(io, handshake_bytes(cluster, claimed, 1));
  raw.watch();
  const bool closed = run_until(io, [&] { return raw.closed_by_server; });
  CHECK(pair.a->transport->stats().protocol_errors == errors + 1);
  return closed;
}

}  // namespace

TEST_CASE("tls: identity URIs parse strictly", "[tls]") {
  auto n = parse_identity_uri("raftkit://c1/node/7");
  REQUIRE(n);
  CHECK(n->kind == CertIdentity::Kind::node);
  CHECK(n->cluster_id == "c1");
  CHECK(n->node == NodeId{7});
  auto c = parse_identity_uri("raftkit://c1/client/bob?role=write");
  REQUIRE(c);
  CHECK(c->kind == CertIdentity::Kind::client);
  CHECK(c->client_name == "bob");
  CHECK(c->role == ClientRole::write);
  for (const char* bad : {"raftkit://c1/node/0", "raftkit://c1/node/07", "raftkit://c1/node/7x", "raftkit:///node/1",
                          "https://c1/node/1", "raftkit://c1/client/bob", "raftkit://c1/client/bob?role=root",
                          "raftkit://c1/client/?role=read", "raftkit://c1/node/"})
    CHECK_FALSE(parse_identity_uri(bad));
  CHECK(node_identity_uri("c1", NodeId{7}) == "raftkit://c1/node/7");
  CHECK(client_identity_uri("c1", "bob", ClientRole::admin) == "raftkit://c1/client/bob?role=admin");
}

TEST_CASE("tls: three nodes with mutual TLS exchange messages in order", "[tls]") {
  asio::io_context io;
  auto a = start_node(io, tls_options(1, TestPki::get().node(1)));
  auto b = start_node(io, tls_options(2, TestPki::get().node(2)));
  auto c = start_node(io, tls_options(3, TestPki::get().node(3)));
  TestNode* nodes[] = {a.get(), b.get(), c.get()};
  for (auto* n : nodes)
    for (auto* p : nodes)
      if (n != p) n->transport->set_peer(p->transport->self(), address(*p));
  constexpr std::uint64_t kCount = 300;
  for (std::uint64_t i = 0; i < kCount; ++i) {
    Message m = test::full_message(MessageType::append);
    m.context = i;
    a->transport->send(m);  // 1 -> 2, with entries and a snapshot payload
    a->transport->send(message(1, 3, i));
  }
  REQUIRE(run_until(io, [&] { return b->inbox.size() == kCount && c->inbox.size() == kCount; }));
  for (std::uint64_t i = 0; i < kCount; ++i) {
    Message m = test::full_message(MessageType::append);
    m.context = i;
    CHECK(b->inbox[i] == m);
    CHECK(c->inbox[i] == message(1, 3, i));
  }
  CHECK(a->transport->stats().protocol_errors == 0);
  CHECK(b->transport->stats().protocol_errors == 0);
  shutdown(io, {a.get(), b.get(), c.get()});
}

TEST_CASE("tls: a certificate from another CA is refused", "[tls][refuse]") {
  asio::io_context io;
  RealPair pair(io);
  pair.check_delivery(io);
  // The intruder holds node 3's name, signed by a CA the cluster does not trust.
  auto other = TestPki::get().options("other-ca", "node-3");
  other.ca_file = (TestPki::get().dir("other-ca") / "ca.pem").string();
  CHECK(intruder_is_refused(io, pair, other, 3));
  CHECK(pair.a->inbox.size() == 1);
  pair.check_delivery(io);
  // And a transport configured that way cannot join either.
  auto o = tls_options(3, other);
  o.peers[NodeId{1}] = address(*pair.a);
  auto intruder = start_node(io, o);
  intruder->transport->send(message(3, 1, 0));
  REQUIRE(run_until(io, [&] {
    return pair.a->transport->stats().protocol_errors >= 2 && intruder->transport->stats().protocol_errors >= 1;
  }));
  CHECK(intruder->transport->connected_peers() == 0);
  pair.check_delivery(io);
  shutdown(io, {pair.a.get(), pair.b.get(), intruder.get()});
}

TEST_CASE("tls: an expired certificate is refused", "[tls][refuse]") {
  asio::io_context io;
  RealPair pair(io);
  pair.check_delivery(io);
  CHECK(intruder_is_refused(io, pair, TestPki::get().options("expired", "node-3"), 3));
  pair.check_delivery(io);
  shutdown(io, {pair.a.get(), pair.b.get()});
}

TEST_CASE("tls: node 2's certificate presented by a process claiming node 3 is refused", "[tls][refuse]") {
  asio::io_context io;
  RealPair pair(io);
  pair.check_delivery(io);
  // Inbound: the handshake frame claims 3, the certificate says 2.
  CHECK(intruder_is_refused(io, pair, TestPki::get().node(2), 3));
  pair.check_delivery(io);
  // A transport cannot even start with a certificate that does not name it.
  {
    auto t = make_tcp_transport(io.get_executor(), tls_options(3, TestPki::get().node(2)));
    CHECK(t->start([](Message) {}) == errc::invalid_argument);
  }
  // Outbound: node 1 believes node 3 lives where node 2 listens; node 2's
  // certificate does not name node 3, so node 1 refuses the connection.
  const auto errors = pair.a->transport->stats().protocol_errors;
  pair.a->transport->set_peer(NodeId{3}, address(*pair.b));
  pair.a->transport->send(message(1, 3, 5));
  REQUIRE(run_until(io, [&] { return pair.a->transport->stats().protocol_errors > errors; }));
  for (const auto& m : pair.b->inbox) CHECK(m.to == NodeId{2});
  pair.check_delivery(io);
  shutdown(io, {pair.a.get(), pair.b.get()});
}

TEST_CASE("tls: another cluster's certificate is refused, though signed by the same CA", "[tls][refuse]") {
  asio::io_context io;
  RealPair pair(io);
  pair.check_delivery(io);
  CHECK(intruder_is_refused(io, pair, TestPki::get().options("other-cluster", "node-3"), 3));
  pair.check_delivery(io);
  shutdown(io, {pair.a.get(), pair.b.get()});
}

TEST_CASE("tls: a plaintext peer cannot talk to a TLS node, nor a TLS node to a plaintext one", "[tls][refuse]") {
  asio::io_context io;
  RealPair pair(io);
  pair.check_delivery(io);
  // A plaintext transport claiming node 3 dials node 1.
  TcpTransportOptions plain = tls_options(3, {});
  plain.peers[NodeId{1}] = address(*pair.a);
  auto intruder = start_node(io, plain);
  intruder->transport->send(message(3, 1, 0));
  REQUIRE(run_until(io, [&] { return pair.a->transport->stats().protocol_errors >= 1; }));
  CHECK(intruder->transport->connected_peers() == 0);
  // Node 1 dials the plaintext node (as its node 3): the TLS handshake fails.
  pair.a->transport->set_peer(NodeId{3}, address(*intruder));
  pair.a->transport->send(message(1, 3, 0));
  REQUIRE(run_until(io, [&] { return intruder->transport->stats().protocol_errors >= 1; }));
  CHECK(intruder->inbox.empty());
  CHECK(intruder->transport->stats().received == 0);
  pair.check_delivery(io);  // also: everything node 1 received came from node 2
  shutdown(io, {pair.a.get(), pair.b.get(), intruder.get()});
}

TEST_CASE("tls: a message whose sender is not the authenticated node closes the connection", "[tls][refuse]") {
  asio::io_context io;
  RealPair pair(io);
  pair.check_delivery(io);
  const auto errors = pair.a->transport->stats().protocol_errors;
  const auto received = pair.a->transport->stats().received;
  RawTls raw(io, pair.a->transport->local_port(), TestPki::get().node(3));
  REQUIRE(!raw.handshake(io));
  Bytes bytes = handshake_bytes(TestPki::kCluster, 3, 1);
  const Bytes spoof = transport::encode_to_bytes(message(2, 1, 77));  // node 3 speaking as node 2
  bytes.insert(bytes.end(), spoof.begin(), spoof.end());
  raw.send(io, bytes);
  raw.watch();
  REQUIRE(run_until(io, [&] { return raw.closed_by_server; }));
  CHECK(pair.a->transport->stats().protocol_errors == errors + 1);
  CHECK(pair.a->transport->stats().received == received);
  for (const auto& m : pair.a->inbox) CHECK(m.context != 77);
  pair.check_delivery(io);
  shutdown(io, {pair.a.get(), pair.b.get()});
}

TEST_CASE("tls: a connection that opens and sends nothing is closed after the handshake timeout", "[tls][limits]") {
  asio::io_context io;
  RealPair pair(io, [](TcpTransportOptions o) {
    o.handshake_timeout = std::chrono::milliseconds(300);
    return o;
  });
  pair.check_delivery(io);
  tcp::socket silent(io);
  silent.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), pair.a->transport->local_port()));
  const auto opened = std::chrono::steady_clock::now();
  bool closed = false;
  std::array<std::uint8_t, 16> buf{};
  silent.async_read_some(asio::buffer(buf), [&](boost::system::error_code ec, std::size_t) { closed = !!ec; });
  REQUIRE(run_until(io, [&] { return closed; }));
  const auto after = std::chrono::steady_clock::now() - opened;
  CHECK(after >= std::chrono::milliseconds(250));
  CHECK(after < std::chrono::milliseconds(3000));
  pair.check_delivery(io);
  shutdown(io, {pair.a.get(), pair.b.get()});
}

TEST_CASE("tls: an authenticated connection that goes silent is closed after the idle timeout", "[tls][limits]") {
  asio::io_context io;
  RealPair pair(io, [](TcpTransportOptions o) {
    o.idle_timeout = std::chrono::milliseconds(400);
    return o;
  });
  pair.check_delivery(io);
  RawTls raw(io, pair.a->transport->local_port(), TestPki::get().node(3));
  REQUIRE(!raw.handshake(io));
  raw.send(io, handshake_bytes(TestPki::kCluster, 3, 1));
  const auto opened = std::chrono::steady_clock::now();
  raw.watch();  // reads the handshake reply, then waits for the close
  REQUIRE(run_until(io, [&] { return raw.closed_by_server; }));
  CHECK(std::chrono::steady_clock::now() - opened >= std::chrono::milliseconds(350));
  // The real peers' connections stay: node 2 dials again if it was idle.
  pair.check_delivery(io);
  shutdown(io, {pair.a.get(), pair.b.get()});
}

TEST_CASE("tls: 1,000 connections from one address are capped; the node keeps serving its peers", "[tls][limits]") {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < 4096 && lim.rlim_max >= 4096) {
    lim.rlim_cur = 4096;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  asio::io_context io;
  RealPair pair(io, [](TcpTransportOptions o) {
    o.max_connections_per_address = 16;
    o.max_inbound_connections = 64;
    o.handshake_timeout = std::chrono::milliseconds(1500);
    return o;
  });
  pair.check_delivery(io);
  constexpr int kFlood = 1000;
  std::vector<std::unique_ptr<tcp::socket>> flood;
  int closed = 0, connect_failed = 0;
  std::array<std::uint8_t, 16> buf{};
  for (int i = 0; i < kFlood; ++i) {
    auto s = std::make_unique<tcp::socket>(io);
    boost::system::error_code ec;
    s->connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), pair.a->transport->local_port()), ec);
    if (ec) {
      ++closed;  // the listen backlog overflowed: refused as well
      ++connect_failed;
      continue;
    }
    s->async_read_some(asio::buffer(buf), [&](boost::system::error_code e, std::size_t) { closed += !!e; });
    flood.push_back(std::move(s));
    if (i % 50 == 0) io.poll();
  }
  // All but the cap's worth (16 per address, node 2's connection included)
  // are closed at once, well before the handshake timeout.
  REQUIRE(run_until(io, [&] { return closed >= kFlood - 15; }, std::chrono::seconds(10)));
  CHECK(pair.a->transport->inbound_connections() <= 16);
  CHECK(pair.a->transport->refused_connections() + connect_failed >= kFlood - 15);
  // Node 2's established connection kept working through the flood.
  pair.check_delivery(io);
  // The flood's survivors time out of the handshake, and then everything is closed.
  REQUIRE(run_until(io, [&] { return closed == kFlood; }, std::chrono::seconds(10)));
  REQUIRE(run_until(io, [&] { return pair.a->transport->inbound_connections() <= 1; }));
  pair.check_delivery(io);
  flood.clear();
  shutdown(io, {pair.a.get(), pair.b.get()});
}

TEST_CASE("tls: certificates reload without a restart; open connections keep working", "[tls][reload]") {
  // A private copy of node 1's files that the test can rewrite.
  const auto& pki = TestPki::get();
  const auto dir = pki.dir("rotate");
  std::filesystem::create_directories(dir);
  for (const char* f : {"node-1.pem", "node-1.key"})
    std::filesystem::copy_file(pki.dir("main") / f, dir / f, std::filesystem::copy_options::overwrite_existing);
  auto tls = pki.options("rotate", "node-1");
  asio::io_context io;
  auto a = start_node(io, tls_options(1, tls));
  auto b = start_node(io, tls_options(2, pki.node(2)));
  a->transport->set_peer(NodeId{2}, address(*b));
  b->transport->set_peer(NodeId{1}, address(*a));
  a->transport->send(message(1, 2, 1));
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 1; }));

  // A bad reload (node 2's key with node 1's certificate) is refused and
  // changes nothing.
  std::filesystem::copy_file(pki.dir("main") / "node-2.key", dir / "node-1.key",
                             std::filesystem::copy_options::overwrite_existing);
  CHECK(!a->transport->reload_credentials().empty());
  a->transport->send(message(1, 2, 2));
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 2; }));

  // Rotation: a new certificate and key from the same CA.
  pki.make("rotate-new", fmt::format("{} --ca '{}' --nodes 1", TestPki::kCluster, pki.dir("main").string()));
  for (const char* f : {"node-1.pem", "node-1.key"})
    std::filesystem::copy_file(pki.dir("rotate-new") / f, dir / f, std::filesystem::copy_options::overwrite_existing);
  CHECK(a->transport->reload_credentials().empty());
  // The connection made with the old certificate still carries messages.
  a->transport->send(message(1, 2, 3));
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 3; }));
  CHECK(b->transport->stats().protocol_errors == 0);
  // A new connection (node 1 told to reconnect) uses the new certificate.
  a->transport->set_peer(NodeId{2}, address(*b));
  REQUIRE(run_until(io, [&] {
    a->transport->send(message(1, 2, 4));
    return !b->inbox.empty() && b->inbox.back() == message(1, 2, 4);
  }));
  CHECK(b->transport->stats().protocol_errors == 0);
  shutdown(io, {a.get(), b.get()});
}

TEST_CASE("tls: the periodic check picks up changed files", "[tls][reload]") {
  const auto& pki = TestPki::get();
  const auto dir = pki.dir("rotate-timer");
  std::filesystem::create_directories(dir);
  for (const char* f : {"node-1.pem", "node-1.key"})
    std::filesystem::copy_file(pki.dir("main") / f, dir / f, std::filesystem::copy_options::overwrite_existing);
  std::string error;
  auto creds = TlsCredentials::load(pki.options("rotate-timer", "node-1"), error);
  REQUIRE(creds);
  const auto before = creds->context();
  CHECK_FALSE(creds->reload_if_changed(error));  // nothing changed
  CHECK(creds->context() == before);
  pki.make("rotate-timer-new", fmt::format("{} --ca '{}' --nodes 1", TestPki::kCluster, pki.dir("main").string()));
  for (const char* f : {"node-1.pem", "node-1.key"})
    std::filesystem::copy_file(pki.dir("rotate-timer-new") / f, dir / f,
                               std::filesystem::copy_options::overwrite_existing);
  CHECK(creds->reload_if_changed(error));
  CHECK(error.empty());
  CHECK(creds->context() != before);
  REQUIRE(creds->own_identities().size() == 1);
  CHECK(creds->own_identities()[0].node == NodeId{1});
}

TEST_CASE("tls: plaintext on a non-loopback address needs allow_insecure", "[tls][insecure]") {
  asio::io_context io;
  TcpTransportOptions o = tls_options(1, {});
  o.listen_host = "0.0.0.0";
  auto refused = make_tcp_transport(io.get_executor(), o);
  CHECK(refused->start([](Message) {}) == errc::invalid_argument);
  o.allow_insecure = true;
  auto allowed = make_tcp_transport(io.get_executor(), o);
  CHECK(!allowed->start([](Message) {}));
  allowed->stop();
  // With TLS, any address is fine.
  TcpTransportOptions t = tls_options(1, TestPki::get().node(1));
  t.listen_host = "0.0.0.0";
  auto secure = make_tcp_transport(io.get_executor(), t);
  CHECK(!secure->start([](Message) {}));
  secure->stop();
  io.run_for(std::chrono::seconds(1));
}

TEST_CASE("tls: the transport's periodic file check reloads without a call", "[tls][reload]") {
  // Node 1's files are replaced by a certificate from a CA node 2 does not
  // trust: once the timer has reloaded them, node 1's new connections are
  // refused by node 2 — observable proof that the reload happened on its own.
  const auto& pki = TestPki::get();
  const auto dir = pki.dir("rotate-periodic");
  std::filesystem::create_directories(dir);
  for (const char* f : {"node-1.pem", "node-1.key"})
    std::filesystem::copy_file(pki.dir("main") / f, dir / f, std::filesystem::copy_options::overwrite_existing);
  auto tls = pki.options("rotate-periodic", "node-1");
  tls.reload_check_interval = std::chrono::milliseconds(50);
  asio::io_context io;
  auto a = start_node(io, tls_options(1, tls));
  auto b = start_node(io, tls_options(2, pki.node(2)));
  a->transport->set_peer(NodeId{2}, address(*b));
  b->transport->set_peer(NodeId{1}, address(*a));
  a->transport->send(message(1, 2, 1));
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 1; }));
  CHECK(b->transport->stats().protocol_errors == 0);

  for (const char* f : {"node-1.pem", "node-1.key"})
    std::filesystem::copy_file(pki.dir("other-ca") / f, dir / f, std::filesystem::copy_options::overwrite_existing);
  // The open connection keeps working with the certificate it was made with.
  a->transport->send(message(1, 2, 2));
  REQUIRE(run_until(io, [&] { return b->inbox.size() == 2; }));
  // New connections (node 1 told to reconnect, again and again) are refused
  // once the timer has picked up the files.
  REQUIRE(run_until(io, [&] {
    a->transport->set_peer(NodeId{2}, address(*b));
    return b->transport->stats().protocol_errors > 0;
  }));
  shutdown(io, {a.get(), b.get()});
}

TEST_CASE("tls: a snapshot streams in chunks over mutual TLS and arrives whole", "[tls][snapshot]") {
  asio::io_context io;
  auto oa = tls_options(1, TestPki::get().node(1));
  auto ob = tls_options(2, TestPki::get().node(2));
  auto a = start_node(io, oa);
  auto b = start_node(io, ob);
  a->transport->set_peer(NodeId{2}, address(*b));
  b->transport->set_peer(NodeId{1}, address(*a));
  Message m;
  m.type = MessageType::snapshot;
  m.from = NodeId{1};
  m.to = NodeId{2};
  m.term = Term{2};
  m.snapshot = SnapshotMeta{Index{77}, Term{2}, {{NodeId{1}, NodeId{2}}, {}, {}, {}, {}}};
  m.snapshot_data.resize((5 << 20) / 2 + 1);  // three chunks of the default 1 MiB
  for (std::size_t i = 0; i < m.snapshot_data.size(); ++i) m.snapshot_data[i] = static_cast<std::uint8_t>(i * 7);
  a->transport->send(m);
  REQUIRE(run_until(io, [&] { return !b->inbox.empty(); }));
  CHECK(b->inbox[0] == m);
  CHECK(b->transport->stats().protocol_errors == 0);
  shutdown(io, {a.get(), b.get()});
}

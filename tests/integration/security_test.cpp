// The counter cluster with TLS against hostile or under-privileged clients,
// real server processes on loopback: each refused request is refused with a
// clear error, changes nothing, and the cluster keeps serving. Certificates
// are made for the run by scripts/make-certs.sh (LocalCluster, and here for
// the intruders). Every wait is bounded.
#include <catch2/catch.hpp>

#include <array>
#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <fmt/format.h>

#include "client.hpp"
#include "integration_support.hpp"
#include "local_cluster.hpp"

namespace {

using namespace raftkit::counter;
using namespace raftkit::integration;
using std::chrono::milliseconds;
namespace asio = boost::asio;
using asio::ip::tcp;

LocalClusterOptions secure_options() {
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_COUNTER_SERVER;
  o.nodes = 3;
  o.tick_ms = 25;
  o.cluster_id = "secure";
  o.extra_server_args = {"--handshake-timeout-ms", "500", "--max-client-connections-per-address", "32"};
  return o;
}

ClientOptions as(const LocalCluster& c, const std::string& who) {
  ClientOptions o = c.client_options(who);
  o.connect_timeout = T(1000);
  o.attempt_timeout = T(3000);
  o.call_timeout = T(10000);
  return o;
}

}  // namespace

TEST_CASE("counter over TLS: each request needs its role; a refused one changes nothing", "[integration][security]") {
  LocalCluster c(secure_options());
  std::string err;
  REQUIRE(c.start_all(T(20000), err));
  REQUIRE(c.wait_for_leader(T(15000)));
  INFO(outputs(c));

  Client writer(as(c, "writer"));
  auto r = writer.incr(5);
  REQUIRE(r.outcome == Outcome::ok);
  CHECK(r.value == 5);

  // read: may read, may not increment nor transfer leadership.
  Client reader(as(c, "reader"));
  auto g = reader.get();
  REQUIRE(g.outcome == Outcome::ok);
  CHECK(g.value == 5);
  auto denied = reader.incr(100);
  CHECK(denied.outcome == Outcome::failed);
  CHECK(denied.message.find("incr needs the 'write' role; client 'reader' has 'read'") != std::string::npos);
  CHECK(reader.transfer_leader(1).outcome == Outcome::failed);

  // write: may increment and read, may not transfer leadership.
  auto t = writer.transfer_leader(2);
  CHECK(t.outcome == Outcome::failed);
  CHECK(t.message.find("transfer-leader needs the 'admin' role") != std::string::npos);

  // admin: everything.
  Client admin(as(c, "admin"));
  auto leader = c.wait_for_leader(T(5000));
  REQUIRE(leader);
  const std::uint64_t target = leader->id == 3 ? 2 : 3;
  // A transfer is refused while the target is a little behind (never to
  // leave the cluster leaderless): retried within a bounded time.
  Result moved;
  LocalCluster::wait_until([&] { return (moved = admin.transfer_leader(target)).outcome == Outcome::ok; }, T(5000));
  CHECK(moved.outcome == Outcome::ok);
  CHECK(admin.incr(1).outcome == Outcome::ok);

  // Nothing the refused requests asked for happened.
  auto final_value = writer.get();
  REQUIRE(final_value.outcome == Outcome::ok);
  CHECK(final_value.value == 6);
  CHECK(c.sanitizer_reports() == 0);
}

TEST_CASE("counter over TLS: intruders are refused and the cluster keeps serving", "[integration][security]") {
  LocalCluster c(secure_options());
  std::string err;
  REQUIRE(c.start_all(T(20000), err));
  REQUIRE(c.wait_for_leader(T(15000)));
  INFO(outputs(c));
  Client writer(as(c, "writer"));
  REQUIRE(writer.incr(1).outcome == Outcome::ok);

  // Certificates of a CA nobody trusts, and of another cluster under the run's own CA.
  const std::string intruders = c.directory() + "/intruders";
  const std::string script = RAFTKIT_SOURCE_DIR "/scripts/make-certs.sh";
  REQUIRE(std::system(fmt::format("bash '{}' '{}/rogue' secure --client mallory:admin >/dev/null 2>&1", script,
                                  intruders).c_str()) == 0);
  REQUIRE(std::system(fmt::format("bash '{}' '{}/other' other --ca '{}' --client eve:admin >/dev/null 2>&1", script,
                                  intruders, c.certs_directory()).c_str()) == 0);

  {  // A client certificate from another CA: the TLS handshake is refused; nothing was sent.
    ClientOptions o = as(c, "writer");
    o.tls.cert_file = intruders + "/rogue/client-mallory.pem";
    o.tls.key_file = intruders + "/rogue/client-mallory.key";
    o.call_timeout = T(2000);
    Client rogue(o);
    auto r = rogue.incr(1000);
    CHECK(r.outcome == Outcome::failed);
    INFO(r.message);
  }
  {  // Another cluster's client certificate, signed by this cluster's CA: no role here.
    ClientOptions o = as(c, "writer");
    o.tls.cert_file = intruders + "/other/client-eve.pem";
    o.tls.key_file = intruders + "/other/client-eve.key";
    Client eve(o);
    auto r = eve.incr(1000);
    CHECK(r.outcome == Outcome::failed);
    CHECK(r.message.find("cluster 'other'") != std::string::npos);
  }
  {  // A plaintext client against the TLS port: a read finds no server that answers.
    ClientOptions o = as(c, "writer");
    o.tls = {};
    o.call_timeout = T(2000);
    Client plain(o);
    CHECK(plain.get().outcome == Outcome::failed);
  }

  asio::io_context io;
  const auto port = static_cast<std::uint16_t>(std::stoi(c.client_address(1).substr(c.client_address(1).rfind(':') + 1)));
  const tcp::endpoint ep(asio::ip::make_address("127.0.0.1"), port);
  {  // A connection that opens and sends nothing is closed after the handshake timeout (500 ms).
    tcp::socket silent(io);
    silent.connect(ep);
    const auto opened = std::chrono::steady_clock::now();
    std::array<char, 16> buf{};
    boost::system::error_code ec;
    silent.read_some(asio::buffer(buf), ec);  // returns when the server closes it
    CHECK(ec);
    const auto waited = std::chrono::steady_clock::now() - opened;
    CHECK(waited >= milliseconds(400));
    CHECK(waited < T(5000));
  }
  {  // 200 connections from one address: at most 32 stay open, the rest are closed at once.
    std::vector<std::unique_ptr<tcp::socket>> flood;
    for (int i = 0; i < 200; ++i) {
      auto s = std::make_unique<tcp::socket>(io);
      boost::system::error_code ec;
      s->connect(ep, ec);
      if (!ec) flood.push_back(std::move(s));
    }
    // The writer's pooled connection to node 1 (if any) and the flood share 127.0.0.1.
    std::size_t closed = 0;
    const auto deadline = std::chrono::steady_clock::now() + T(400);  // well under the handshake timeout
    for (auto& s : flood) {
      s->non_blocking(true);
      std::array<char, 1> b{};
      boost::system::error_code ec;
      for (;;) {
        s->read_some(asio::buffer(b), ec);
        if (ec != asio::error::would_block || std::chrono::steady_clock::now() >= deadline) break;
        std::this_thread::yield();
      }
      if (ec && ec != asio::error::would_block) ++closed;
    }
    CHECK(closed >= 200 - 32);
    // The cluster serves its real clients meanwhile.
    auto r = writer.incr(1);
    CHECK(r.outcome == Outcome::ok);
  }

  auto v = writer.get();
  REQUIRE(v.outcome == Outcome::ok);
  CHECK(v.value == 2);  // only the writer's two increments
  CHECK(c.sanitizer_reports() == 0);
}

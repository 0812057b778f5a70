// libFuzzer target for what an authenticated TLS peer can send first: the
// bytes after a completed mutual-TLS handshake, where the accepting node
// decodes the Raft-level hello, checks it against the certificate, and then
// reads messages. The intruder holds node 3's valid certificate; node 1 runs
// the real TcpTransport with TLS on loopback. Whatever the bytes, node 1
// must not crash or hang, and every message it delivers must come from node
// 3 (the certificate's identity) — a peer cannot speak for another.
//
// A first byte of 0 fuzzes parse_identity_uri instead (the certificate URI
// parser): anything it accepts must print back to the same URI.
//
// Certificates are made at start-up by scripts/make-certs.sh (the openssl
// command) into a temporary directory.
#include <stdlib.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/write.hpp>
#include <fmt/format.h>

#include "raftkit/tcp_transport.hpp"
#include "raftkit/tls.hpp"

#ifndef RAFTKIT_SOURCE_DIR
#error "RAFTKIT_SOURCE_DIR must name the source tree (for scripts/make-certs.sh)"
#endif

using namespace raftkit;
namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

[[noreturn]] void fail(const std::string& why) {
  fmt::print(stderr, "fuzz_tls_hello: {}\n", why);
  std::abort();
}

struct World {
  std::string dir;
  asio::io_context io;
  std::shared_ptr<TcpTransport> node;
  std::shared_ptr<ssl::context> intruder;
  std::uint64_t delivered_from_others = 0;

  World() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "raftkit-fuzz-pki-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) fail("mkdtemp failed");
    dir = tmpl;
    const auto cmd = fmt::format("bash '{}/scripts/make-certs.sh' '{}' fuzz --nodes 1,3 >/dev/null 2>&1",
                                 RAFTKIT_SOURCE_DIR, dir);
    if (std::system(cmd.c_str()) != 0) fail("make-certs.sh failed: " + cmd);
    auto files = [&](int id) {
      TlsOptions t;
      t.ca_file = dir + "/ca.pem";
      t.cert_file = fmt::format("{}/node-{}.pem", dir, id);
      t.key_file = fmt::format("{}/node-{}.key", dir, id);
      t.reload_check_interval = std::chrono::milliseconds(0);
      return t;
    };
    TcpTransportOptions o;
    o.self = NodeId{1};
    o.cluster_id = "fuzz";
    o.peers[NodeId{3}] = "127.0.0.1:1";  // known, never dialled successfully
    o.tls = files(1);
    o.handshake_timeout = std::chrono::seconds(10);
    node = make_tcp_transport(io.get_executor(), o);
    if (node->start([this](Message m) {
          if (m.from != NodeId{3}) ++delivered_from_others;
        }))
      fail("the transport did not start");
    std::string error;
    auto creds = TlsCredentials::load(files(3), error);
    if (!creds) fail(error);
    intruder = creds->context();
  }
  ~World() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  bool run_until(const bool& done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done && std::chrono::steady_clock::now() < deadline) {
      io.restart();
      io.run_for(std::chrono::milliseconds(2));
    }
    return done;
  }

  void send(const std::uint8_t* data, std::size_t size) {
    ssl::stream<tcp::socket> stream(io, *intruder);
    boost::system::error_code ec;
    stream.next_layer().connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), node->local_port()), ec);
    if (ec) fail("connect: " + ec.message());
    bool done = false;
    stream.async_handshake(ssl::stream_base::client, [&](boost::system::error_code e) {
      ec = e;
      done = true;
    });
    if (!run_until(done)) fail("TLS handshake did not finish within 20 s");
    if (ec) fail("TLS handshake failed: " + ec.message());  // a valid certificate must get through
    done = false;
    asio::async_write(stream, asio::buffer(data, size), [&](boost::system::error_code, std::size_t) { done = true; });
    run_until(done);
    // End of input: the node must close the connection (it never waits forever).
    stream.next_layer().shutdown(tcp::socket::shutdown_send, ec);
    bool closed = false;
    std::array<std::uint8_t, 512> buf{};
    std::function<void()> drain = [&] {
      stream.async_read_some(asio::buffer(buf), [&](boost::system::error_code e, std::size_t) {
        if (e) {
          closed = true;
          return;
        }
        drain();
      });
    };
    drain();
    if (!run_until(closed)) fail("the node kept a finished connection open for 20 s");
    if (delivered_from_others != 0) fail("a message from another node than the certificate's was delivered");
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size > 0 && data[0] == 0) {
    const std::string_view uri(reinterpret_cast<const char*>(data + 1), size - 1);
    if (auto id = parse_identity_uri(uri)) {
      const auto back = id->kind == CertIdentity::Kind::node
                            ? node_identity_uri(id->cluster_id, id->node)
                            : client_identity_uri(id->cluster_id, id->client_name, id->role);
      if (back != uri) fail(fmt::format("'{}' parsed, but prints back as '{}'", uri, back));
    }
    return 0;
  }
  static World world;
  world.send(data, size);
  return 0;
}

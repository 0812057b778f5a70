// GET /raft on the counter server's metrics port, with real processes: the
// JSON and HTML views of a 3-node cluster, then the survivor of a lost
// majority naming the two nodes it cannot reach — on its page and in
// `raftkit-counter status` (the same raftkit::diagnose() line).
#include <catch2/catch.hpp>

#include <chrono>
#include <map>
#include <set>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>

#include "client.hpp"
#include "http_client.hpp"
#include "integration_support.hpp"
#include "local_cluster.hpp"
#include "raft_page.hpp"

namespace {

using namespace raftkit::counter;
using namespace raftkit::integration;

// Ports nothing listens on right now (the kernel's choice), one per node.
std::map<std::uint64_t, std::uint16_t> free_ports(std::size_t n) {
  boost::asio::io_context io;
  std::vector<boost::asio::ip::tcp::acceptor> held;  // held open together, so they differ
  std::map<std::uint64_t, std::uint16_t> out;
  for (std::uint64_t id = 1; id <= n; ++id) {
    held.emplace_back(io, boost::asio::ip::tcp::endpoint{boost::asio::ip::make_address("127.0.0.1"), 0});
    out[id] = held.back().local_endpoint().port();
  }
  return out;
}

// GET `target` on 127.0.0.1:port; the reply, or a failed REQUIRE.
raftkit::examples::HttpReply get(std::uint16_t port, const std::string& target, const LocalCluster& c) {
  std::string error;
  auto r = raftkit::examples::http_request(fmt::format("127.0.0.1:{}", port), "GET", target, "", T(3000), error);
  INFO(target << ": " << error << "\n" << outputs(c));
  REQUIRE(r);
  REQUIRE(r->status == 200);
  return *r;
}

boost::json::object raft_json(std::uint16_t port, const LocalCluster& c, const std::string& target = "/raft.json") {
  const auto r = get(port, target, c);
  CHECK(r.headers.at("content-type") == "application/json");
  boost::system::error_code ec;
  auto doc = boost::json::parse(r.body, ec);
  INFO(r.body);
  REQUIRE(!ec);
  return doc.as_object();
}

std::uint64_t u64(const boost::json::object& o, const char* key) { return o.at(key).to_number<std::uint64_t>(); }

// The leader's page, once every follower has every entry.
void check_leader_page(const boost::json::object& doc, std::uint64_t leader) {
  CHECK(doc.at("role").as_string() == "leader");
  CHECK(u64(doc, "id") == leader);
  CHECK(u64(doc, "leader") == leader);
  CHECK(u64(doc, "term") >= 1);
  CHECK(u64(doc, "commit") == u64(doc, "last_index"));
  CHECK(u64(doc, "applied") <= u64(doc, "commit"));
  CHECK(doc.at("diagnosis").as_string() == "");
  CHECK(doc.contains("disk_write_ms"));
  const auto& config = doc.at("configuration").as_object();
  CHECK(config.at("voters") == boost::json::array{1, 2, 3});
  CHECK(config.at("joint").as_bool() == false);
  CHECK(config.at("learners").as_array().empty());
  CHECK(config.at("staging").as_array().empty());
  CHECK(config.at("addresses").as_object().size() == 3);
  CHECK(config.at("incarnations").as_object().size() == 3);
  const auto& peers = doc.at("peers").as_array();
  REQUIRE(peers.size() == 2);
  for (const auto& p : peers) {
    const auto& o = p.as_object();
    INFO(boost::json::serialize(o));
    CHECK(o.at("state").as_string() == "replicate");
    CHECK(o.at("active").as_bool());
    CHECK(u64(o, "match") == u64(doc, "last_index"));
    CHECK(u64(o, "next") == u64(doc, "last_index") + 1);
    CHECK(o.at("replacing").as_bool() == false);
    CHECK(!o.at("incarnation").as_string().empty());
  }
  const auto& contacts = doc.at("contacts").as_array();
  REQUIRE(contacts.size() == 2);
  for (const auto& ct : contacts) CHECK(ct.as_object().at("last_heard_ms_ago").is_int64());
}

}  // namespace

TEST_CASE("/raft: a 3-node counter cluster's pages; the survivor of a lost majority names the nodes it lost",
          "[integration]") {
  const auto ports = free_ports(3);
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_COUNTER_SERVER;
  o.client_binary = RAFTKIT_COUNTER_CLIENT;
  o.nodes = 3;
  o.tick_ms = scale() > 1 ? 50 : 25;
  o.request_timeout_ms = static_cast<int>(T(1500).count());
  o.cluster_id = "integration";
  o.server_args = [ports](std::uint64_t id) {
    return std::vector<std::string>{"--metrics-port", std::to_string(ports.at(id))};
  };
  LocalCluster c(o);
  NoSanitizerReports guard{c};
  std::string err;
  INFO(err);
  REQUIRE(c.start_all(T(15000), err));
  const auto leader = c.wait_for_leader(T(10000));
  INFO(outputs(c));
  REQUIRE(leader);
  ClientOptions co = c.client_options("writer");
  co.call_timeout = T(10000);
  Client client(co);
  for (int i = 0; i < 5; ++i) REQUIRE(client.incr(1).outcome == Outcome::ok);

  // The leader's view: every follower caught up, replicating, active.
  REQUIRE(LocalCluster::wait_until(
      [&] {
        const auto doc = raft_json(ports.at(leader->id), c);
        const auto& peers = doc.at("peers").as_array();
        return peers.size() == 2 && u64(peers[0].as_object(), "match") == u64(doc, "last_index") &&
               u64(peers[1].as_object(), "match") == u64(doc, "last_index");
      },
      T(10000)));
  check_leader_page(raft_json(ports.at(leader->id), c), leader->id);
  std::set<std::uint64_t> followers;
  for (auto id : c.ids()) {
    if (id == leader->id) continue;
    followers.insert(id);
    const auto doc = raft_json(ports.at(id), c, "/raft?format=json");  // the other spelling
    CHECK(doc.at("role").as_string() == "follower");
    CHECK(u64(doc, "leader") == leader->id);
    CHECK(doc.at("peers").as_array().empty());  // only a leader has a view of the others' logs
    CHECK(doc.at("diagnosis").as_string() == "");
  }
  const auto html = get(ports.at(leader->id), "/raft", c);
  CHECK(html.headers.at("content-type") == "text/html; charset=utf-8");
  CHECK(html.body.starts_with("<!DOCTYPE html>"));
  CHECK(html.body.find(fmt::format("<h1>raftkit node {}: leader</h1>", leader->id)) != std::string::npos);
  CHECK(html.body.find("<th>match</th>") != std::string::npos);
  CHECK(html.body.find("http://") == std::string::npos);  // self-contained: nothing fetched from elsewhere

  // Kill the leader and one follower: the other follower cannot elect anyone.
  const std::uint64_t survivor = *followers.begin();
  std::set<std::uint64_t> lost = {leader->id, *followers.rbegin()};
  for (auto id : lost) c.kill(id);
  const std::string expected =
      fmt::format("no quorum: nodes {} and {} unreachable for ", *lost.begin(), *lost.rbegin());
  std::string diagnosis;
  const bool named = LocalCluster::wait_until(
      [&] {
        const auto doc = raft_json(ports.at(survivor), c);
        diagnosis = std::string(doc.at("diagnosis").as_string());
        // Whole seconds: the loss has lasted a while, not a passing election.
        return u64(doc, "leader") == 0 && diagnosis.starts_with(expected) && diagnosis.ends_with(" s");
      },
      T(10000));
  INFO("survivor " << survivor << " says: " << diagnosis << "\n" << outputs(c));
  REQUIRE(named);
  fmt::print("    node {} on /raft: {}\n", survivor, diagnosis);
  const auto page = get(ports.at(survivor), "/raft", c);
  CHECK(page.body.find("<p class=\"why\">No leader: " + expected) != std::string::npos);

  // The client's status prints the same line under the survivor's row.
  std::string out;
  const int rc = c.run_client({"status"}, T(5000), out);
  INFO(out);
  CHECK(rc == 1);  // two servers do not answer
  CHECK(out.find("no leader: " + expected) != std::string::npos);
}

TEST_CASE("/raft's HTML escapes every text it shows; its JSON carries the diagnosis", "[integration]") {
  raftkit::NodeStatus s;
  s.id = raftkit::NodeId{7};
  s.role = raftkit::NodeRole::stopped;
  s.failure = "<script>alert('x')</script> & \"more\"";
  s.membership.voters = {raftkit::NodeId{7}};
  s.membership.addresses = {{raftkit::NodeId{7}, "<b>host</b>:1"}};
  const std::string html = raftkit::examples::raft_status_html(s);
  CHECK(html.find("<script>") == std::string::npos);
  CHECK(html.find("<b>host") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;more&quot;") != std::string::npos);
  CHECK(html.find("No leader: stopped: &lt;script&gt;") != std::string::npos);
  CHECK(html.find("&lt;b&gt;host&lt;/b&gt;:1") != std::string::npos);
  const auto doc = raftkit::examples::raft_status_json(s);
  CHECK(doc.at("diagnosis").as_string() == "stopped: " + s.failure);
  CHECK(doc.at("configuration").at("incarnations").at("7").as_string() == "1");
}

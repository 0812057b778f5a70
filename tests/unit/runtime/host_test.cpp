// raftkit::Host: many groups per process on one transport and one shared
// log. Real Asio and threads; the groups are ordinary Nodes, so what these
// tests check is what the host adds: routing by group, one log for all,
// restart from it, per-group snapshot streams over TCP, and the host's
// refusals. Waits are bounded polls of observable state.
#include <filesystem>
#include <future>
#include <thread>

#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "raftkit/host.hpp"
#include "raftkit/tcp_transport.hpp"
#include "support/catch_printers.hpp"
#include "unit/runtime/counter_machine.hpp"

using namespace raftkit;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using raftkit::test::Counter;

namespace {

using Result = std::pair<std::error_code, std::string>;

Result wait(std::future<Result> f) {
  if (f.wait_for(30s) != std::future_status::ready) return {errc::timeout, {}};
  return f.get();
}

template <class Pred>
bool wait_until(Pred pred, std::chrono::milliseconds limit = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);  // polling interval, not a synchronization
  }
  return pred();
}

// Three hosts in one process, each with its data directory, over the
// in-process hub or TCP on 127.0.0.1.
struct Hosts {
  enum class Net { inproc, tcp };

  Hosts(Net net, std::string root) : net_(net), root_(std::move(root)) {
    std::filesystem::remove_all(root_);
    hub_ = make_inproc_network();
    for (std::uint64_t i = 1; i <= 3; ++i) {
      if (net_ == Net::inproc) {
        peers_[NodeId{i}] = fmt::format("inproc:{}", i);
        continue;
      }
      asio::ip::tcp::acceptor probe(io_, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
      peers_[NodeId{i}] = fmt::format("127.0.0.1:{}", probe.local_endpoint().port());
    }
    for (int t = 0; t < 2; ++t) threads_.emplace_back([this] { io_.run(); });
  }
  ~Hosts() {
    hosts_.clear();
    work_.reset();
    io_.stop();
    for (auto& t : threads_) t.join();
    std::filesystem::remove_all(root_);
  }

  std::string dir(std::uint64_t i) const { return fmt::format("{}/host{}", root_, i); }

  Host& start_host(std::uint64_t i) {
    HostOptions ho;
    ho.id = NodeId{i};
    ho.data_dir = dir(i);
    ho.segment_bytes = 64 << 10;  // several segments, so compaction deletes some
    ho.logger = Logger::discard();
    ho.balance_interval = balance_interval;
    std::shared_ptr<Transport> t;
    if (net_ == Net::inproc) {
      t = hub_->make_transport(NodeId{i}, io_.get_executor());
    } else {
      Options o = Options::from_peers(NodeId{i}, peers_);
      o.logger = Logger::discard();
      TcpTransportOptions to = TcpTransportOptions::from(o);
      to.snapshot_chunk_bytes = 64;  // the sums' snapshots are small: several chunks anyway
      t = make_tcp_transport(io_.get_executor(), to);
    }
    hosts_[i] = std::make_unique<Host>(io_.get_executor(), ho, t);
    std::string detail;
    const auto ec = hosts_[i]->start(&detail);
    INFO(detail);
    REQUIRE(!ec);
    return *hosts_[i];
  }

  void stop_host(std::uint64_t i) { hosts_.erase(i); }

  Options group_options(std::uint64_t i, bool bootstrap) const {
    Options o = Options::from_peers(NodeId{i}, peers_);
    o.cluster_id = "hosts";
    o.bootstrap = bootstrap;
    o.tick_interval = 10ms;
    o.request_timeout = 10s;
    o.snapshot_interval = snapshot_interval;
    o.snapshot_trailing_entries = 0;
    o.logger = Logger::discard();
    return o;
  }

  std::shared_ptr<Node> start_group(std::uint64_t i, GroupId g, bool bootstrap = true) {
    std::shared_ptr<Node> node;
    const auto ec = hosts_.at(i)->start_group(g, group_options(i, bootstrap), std::make_shared<Counter>(), node);
    REQUIRE(!ec);
    REQUIRE(node);
    return node;
  }

  std::shared_ptr<Node> leader_of(GroupId g) {
    for (auto& [i, h] : hosts_)
      if (auto n = h->group(g); n && n->status().role == NodeRole::leader) return n;
    return nullptr;
  }
  // How many groups each host leads.
  std::map<std::uint64_t, std::size_t> leaders_per_host() {
    std::map<std::uint64_t, std::size_t> led;
    for (auto& [i, h] : hosts_) {
      led[i] += 0;
      for (GroupId g : h->groups())
        if (auto n = h->group(g); n && n->status().role == NodeRole::leader) ++led[i];
    }
    return led;
  }

  std::shared_ptr<Node> wait_for_leader(GroupId g) {
    std::shared_ptr<Node> l;
    wait_until([&] { return (l = leader_of(g)) != nullptr; });
    return l;
  }

  static Result propose(Node& n, std::int64_t v) {
    auto p = std::make_shared<std::promise<Result>>();
    auto f = p->get_future();
    n.async_propose(to_bytes(std::to_string(v)),
                    [p](boost::system::error_code ec, Response r) { p->set_value({ec, to_string(r.value)}); });
    return wait(std::move(f));
  }
  static Result read(Node& n) {
    auto p = std::make_shared<std::promise<Result>>();
    auto f = p->get_future();
    n.async_read(Bytes{}, [p](boost::system::error_code ec, Response r) { p->set_value({ec, to_string(r.value)}); });
    return wait(std::move(f));
  }
  // Proposes `v` to group g's leader, retrying across a leader change.
  Result propose_to_group(GroupId g, std::int64_t v) {
    Result r{errc::timeout, {}};
    for (int attempt = 0; attempt < 20; ++attempt) {
      auto l = wait_for_leader(g);
      if (!l) break;
      r = propose(*l, v);
      if (!r.first) break;
    }
    return r;
  }

  Net net_;
  std::string root_;
  std::uint64_t snapshot_interval = 0;
  std::chrono::milliseconds balance_interval{0};
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  std::shared_ptr<InprocNetwork> hub_;
  std::map<NodeId, std::string> peers_;
  std::map<std::uint64_t, std::unique_ptr<Host>> hosts_;
  std::vector<std::thread> threads_;
};

std::string temp_root(const char* name) {
  return (std::filesystem::temp_directory_path() / fmt::format("raftkit-host-{}-{}", name, ::getpid())).string();
}

}  // namespace

TEST_CASE("Host: groups on one transport and one log each keep their own state, and come back from the log") {
  // Rule: a message reaches the group it names and no other; every group's
  // entries go to its host's one shared log, and a restarted host finds
  // every group there with what it had acknowledged.
  constexpr GroupId kGroups = 8;
  Hosts c(Hosts::Net::inproc, temp_root("inproc"));
  for (std::uint64_t i = 1; i <= 3; ++i) c.start_host(i);
  for (std::uint64_t i = 1; i <= 3; ++i)
    for (GroupId g = 1; g <= kGroups; ++g) c.start_group(i, g);
  // Group g gets g proposals of g each: a sum of g*g, different in every group.
  for (GroupId g = 1; g <= kGroups; ++g)
    for (GroupId k = 0; k < g; ++k) {
      const auto r = c.propose_to_group(g, static_cast<std::int64_t>(g));
      REQUIRE(!r.first);
    }
  for (GroupId g = 1; g <= kGroups; ++g) {
    const auto r = Hosts::read(*c.wait_for_leader(g));
    REQUIRE(!r.first);
    CHECK(r.second == std::to_string(g * g));
  }
  for (std::uint64_t i = 1; i <= 3; ++i) {
    const HostStats s = c.hosts_.at(i)->stats();
    CHECK(s.groups == kGroups);
    CHECK(s.log_syncs > 0);
    CHECK(c.hosts_.at(i)->stored_groups().size() == kGroups);
  }

  // Every host stops; they come back from their logs, the groups with them.
  for (std::uint64_t i = 1; i <= 3; ++i) c.stop_host(i);
  for (std::uint64_t i = 1; i <= 3; ++i) {
    Host& h = c.start_host(i);
    REQUIRE(h.stored_groups().size() == kGroups);
    for (GroupId g : h.stored_groups()) c.start_group(i, g, /*bootstrap=*/false);
  }
  for (GroupId g = 1; g <= kGroups; ++g) {
    const auto r = c.propose_to_group(g, 1);
    REQUIRE(!r.first);
    CHECK(r.second == std::to_string(g * g + 1));
  }
}

TEST_CASE("Host: a stopped group's messages are dropped and counted; its state waits in the log") {
  Hosts c(Hosts::Net::inproc, temp_root("stopped"));
  for (std::uint64_t i = 1; i <= 3; ++i) c.start_host(i);
  for (std::uint64_t i = 1; i <= 3; ++i)
    for (GroupId g = 1; g <= 2; ++g) c.start_group(i, g);
  REQUIRE(!c.propose_to_group(2, 5).first);
  // Group 2 stops on host 3 only: the others' messages to it there are not routed.
  c.hosts_.at(3)->stop_group(2);
  CHECK(c.hosts_.at(3)->group(2) == nullptr);
  CHECK(c.hosts_.at(3)->groups() == std::vector<GroupId>{1});
  const auto before = c.hosts_.at(3)->stats().unrouted;
  REQUIRE(!c.propose_to_group(2, 5).first);  // a majority without host 3
  CHECK(wait_until([&] { return c.hosts_.at(3)->stats().unrouted > before; }));
  // Group 1 on host 3 is untouched.
  REQUIRE(!c.propose_to_group(1, 3).first);
  CHECK(wait_until([&] { return c.hosts_.at(3)->group(1)->status().applied >= c.leader_of(1)->status().applied; }));
  // Started again, group 2 catches up from where its log left it.
  auto again = c.start_group(3, 2, /*bootstrap=*/false);
  CHECK(wait_until([&] { return again->status().applied >= c.leader_of(2)->status().applied; }));
  auto p = std::make_shared<std::promise<Result>>();
  auto f = p->get_future();
  again->async_read_stale(Bytes{}, [p](boost::system::error_code ec, Response r) { p->set_value({ec, to_string(r.value)}); });
  CHECK(wait(std::move(f)).second == "10");
}

TEST_CASE("Host: start and start_group refuse what they cannot run") {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::thread runner([&] { io.run(); });
  auto hub = make_inproc_network();
  HostOptions ho;
  ho.id = NodeId{1};
  ho.logger = Logger::discard();
  {
    Host wrong(io.get_executor(), ho, hub->make_transport(NodeId{2}, io.get_executor()));
    std::string detail;
    CHECK(wrong.start(&detail) == errc::invalid_argument);
    CHECK(detail.find("not bound to node 1") != std::string::npos);
  }
  Host h(io.get_executor(), ho, hub->make_transport(NodeId{1}, io.get_executor()));
  std::shared_ptr<Node> node;
  Options o = Options::from_peers(NodeId{1}, {{NodeId{1}, "inproc:1"}});
  o.logger = Logger::discard();
  CHECK(h.start_group(1, o, std::make_shared<Counter>(), node) == errc::invalid_argument);  // not started
  REQUIRE(!h.start());
  CHECK(h.start() == errc::invalid_argument);
  Options other = Options::from_peers(NodeId{2}, {{NodeId{2}, "inproc:2"}});
  other.logger = Logger::discard();
  CHECK(h.start_group(1, other, std::make_shared<Counter>(), node) == errc::invalid_argument);  // another id
  REQUIRE(!h.start_group(1, o, std::make_shared<Counter>(), node));
  CHECK(h.start_group(1, o, std::make_shared<Counter>(), node) == errc::invalid_argument);  // runs already
  h.stop();
  CHECK(node->status().role == NodeRole::stopped);
  CHECK(h.start_group(2, o, std::make_shared<Counter>(), node) == errc::invalid_argument);  // stopped
  work.reset();
  runner.join();
}

TEST_CASE("Host: over TCP, a host that joins late gets every group's snapshot, streamed side by side") {
  // Rule: snapshot streams are per follower and group. Six groups compact
  // their logs while host 3 is away; when it starts they all stream to it
  // at once over its one connection. The receiver holds at most
  // max_partial_snapshots (4) at a time; the others are refused and
  // retried, and every group catches up.
  constexpr GroupId kGroups = 6;
  Hosts c(Hosts::Net::tcp, temp_root("tcp"));
  c.snapshot_interval = 10;
  for (std::uint64_t i = 1; i <= 2; ++i) c.start_host(i);
  for (std::uint64_t i = 1; i <= 2; ++i)
    for (GroupId g = 1; g <= kGroups; ++g) c.start_group(i, g);
  for (GroupId g = 1; g <= kGroups; ++g)
    for (int k = 0; k < 25; ++k) REQUIRE(!c.propose_to_group(g, static_cast<std::int64_t>(g)).first);
  for (GroupId g = 1; g <= kGroups; ++g)
    REQUIRE(wait_until([&] { return c.leader_of(g)->status().snapshot_index >= Index{20}; }));
  c.start_host(3);
  std::map<GroupId, std::shared_ptr<Node>> late;
  for (GroupId g = 1; g <= kGroups; ++g) late[g] = c.start_group(3, g, /*bootstrap=*/false);
  for (GroupId g = 1; g <= kGroups; ++g) {
    INFO("group " << g);
    CHECK(wait_until([&] { return late[g]->status().applied >= Index{26}; }, 60s));
    CHECK(late[g]->status().snapshot_index >= Index{20});
    CHECK(late[g]->metrics().snapshots_installed >= 1);
  }
  // Each group's state on host 3 is its own.
  for (GroupId g = 1; g <= kGroups; ++g) {
    auto p = std::make_shared<std::promise<Result>>();
    auto f = p->get_future();
    late[g]->async_read_stale(Bytes{},
                              [p](boost::system::error_code ec, Response r) { p->set_value({ec, to_string(r.value)}); });
    CHECK(wait(std::move(f)).second == std::to_string(25 * g));
  }
}

TEST_CASE("Host: leader balance spreads the leaders evenly and gives a restarted host its share back") {
  // Rule: with balance_interval set, a host leading more than its share
  // (groups over hosts, rounded up) transfers one group at a time to a
  // caught-up voter below its share; a voter that is down is never chosen.
  constexpr GroupId kGroups = 12;
  Hosts c(Hosts::Net::inproc, temp_root("balance"));
  c.balance_interval = 50ms;
  for (std::uint64_t i = 1; i <= 3; ++i) c.start_host(i);
  for (std::uint64_t i = 1; i <= 3; ++i)
    for (GroupId g = 1; g <= kGroups; ++g) c.start_group(i, g);
  const std::map<std::uint64_t, std::size_t> even{{1, 4}, {2, 4}, {3, 4}};
  CHECK(wait_until([&] { return c.leaders_per_host() == even; }));
  // Host 3 goes away: its groups elect leaders on hosts 1 and 2, which keep
  // them (host 3, the only one below its share, is not reachable).
  c.stop_host(3);
  CHECK(wait_until([&] {
    auto led = c.leaders_per_host();
    return led[1] + led[2] == kGroups;
  }));
  // Back with its log, it is caught up and handed its share again.
  Host& back = c.start_host(3);
  for (GroupId g : back.stored_groups()) c.start_group(3, g, /*bootstrap=*/false);
  CHECK(wait_until([&] { return c.leaders_per_host() == even; }));
  CHECK(c.hosts_.at(1)->stats().balance_transfers + c.hosts_.at(2)->stats().balance_transfers >= 4);
  for (GroupId g = 1; g <= kGroups; ++g) REQUIRE(!c.propose_to_group(g, 1).first);
}

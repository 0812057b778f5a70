// In-process hub and the fault-injecting wrapper.
#include <catch2/catch.hpp>

#include <map>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "raftkit/testing/faulty_transport.hpp"
#include "raftkit/transport.hpp"
#include "unit/transport/run_until.hpp"
#include "unit/transport/test_messages.hpp"

using namespace raftkit;
using raftkit::test::run_until;

namespace {

Message msg(std::uint64_t from, std::uint64_t to, std::uint64_t context) {
  Message m = test::full_message(MessageType::heartbeat);
  m.from = NodeId{from};
  m.to = NodeId{to};
  m.context = context;
  return m;
}

}  // namespace

TEST_CASE("inproc: messages reach the addressed node, in order, on its executor", "[inproc]") {
  boost::asio::io_context io;
  auto net = make_inproc_network();
  std::map<std::uint64_t, std::vector<Message>> inbox;
  std::vector<std::shared_ptr<Transport>> nodes;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    nodes.push_back(net->make_transport(NodeId{id}, io.get_executor()));
    REQUIRE(!nodes.back()->start([&inbox, id](Message m) { inbox[id].push_back(std::move(m)); }));
  }
  for (std::uint64_t i = 0; i < 10; ++i) nodes[0]->send(msg(1, 2, i));
  nodes[2]->send(msg(3, 1, 99));
  CHECK(inbox.empty());  // delivery is posted, never inside send()
  REQUIRE(run_until(io, [&] { return inbox[2].size() == 10 && inbox[1].size() == 1; }));
  for (std::uint64_t i = 0; i < 10; ++i) CHECK(inbox[2][i] == msg(1, 2, i));
  CHECK(inbox[1][0] == msg(3, 1, 99));
  CHECK(nodes[0]->stats().sent == 10);
  CHECK(nodes[1]->stats().received == 10);
}

TEST_CASE("inproc: unknown or stopped receivers drop; a duplicate id is refused", "[inproc]") {
  boost::asio::io_context io;
  auto net = make_inproc_network();
  int received = 0;
  auto a = net->make_transport(NodeId{1}, io.get_executor());
  auto b = net->make_transport(NodeId{2}, io.get_executor());
  auto b2 = net->make_transport(NodeId{2}, io.get_executor());
  REQUIRE(!a->start([](Message) {}));
  REQUIRE(!b->start([&](Message) { ++received; }));
  CHECK(b2->start([](Message) {}) == errc::invalid_argument);
  a->send(msg(1, 9, 0));
  CHECK(a->stats().dropped == 1);
  a->send(msg(1, 2, 0));
  b->stop();  // stopped before the posted delivery runs: never delivered
  io.run();
  CHECK(received == 0);
  a->send(msg(1, 2, 0));
  CHECK(a->stats().dropped == 2);
}

TEST_CASE("faulty: partitions block both ways until healed; drops are seeded and counted", "[faulty]") {
  boost::asio::io_context io;
  auto net = make_inproc_network();
  std::map<std::uint64_t, int> inbox;
  std::vector<std::shared_ptr<FaultyTransport>> nodes;
  for (std::uint64_t id = 1; id <= 3; ++id) {
    nodes.push_back(std::make_shared<FaultyTransport>(net->make_transport(NodeId{id}, io.get_executor()),
                                                      io.get_executor(), id));
    REQUIRE(!nodes.back()->start([&inbox, id](Message) { ++inbox[id]; }));
  }
  nodes[0]->block(NodeId{2});  // 1 <-/-> 2, one-sided rule on node 1 only
  nodes[0]->send(msg(1, 2, 0));
  nodes[1]->send(msg(2, 1, 0));
  nodes[0]->send(msg(1, 3, 0));
  REQUIRE(run_until(io, [&] { return inbox[3] == 1; }));
  io.restart();
  io.poll();
  CHECK(inbox[1] == 0);
  CHECK(inbox[2] == 0);
  CHECK(nodes[0]->stats().dropped == 2);  // one outbound, one inbound

  nodes[0]->heal();
  nodes[0]->send(msg(1, 2, 0));
  nodes[1]->send(msg(2, 1, 0));
  REQUIRE(run_until(io, [&] { return inbox[1] == 1 && inbox[2] == 1; }));

  nodes[2]->set_drop_probability(0.5);
  for (int i = 0; i < 1000; ++i) nodes[2]->send(msg(3, 1, 0));
  const auto dropped = nodes[2]->stats().dropped;
  CHECK(dropped > 400);
  CHECK(dropped < 600);
  REQUIRE(run_until(io, [&] { return inbox[1] == 1 + static_cast<int>(1000 - dropped); }));

  nodes[1]->isolate();
  nodes[1]->send(msg(2, 3, 0));
  nodes[2]->set_drop_probability(0);
  nodes[2]->send(msg(3, 2, 0));
  io.restart();
  io.poll();
  CHECK(inbox[2] == 1);
  CHECK(inbox[3] == 1);
}

TEST_CASE("faulty: delayed messages arrive after the delay", "[faulty]") {
  boost::asio::io_context io;
  auto net = make_inproc_network();
  int received = 0;
  auto a = std::make_shared<FaultyTransport>(net->make_transport(NodeId{1}, io.get_executor()), io.get_executor(), 7);
  auto b = net->make_transport(NodeId{2}, io.get_executor());
  REQUIRE(!a->start([](Message) {}));
  REQUIRE(!b->start([&](Message) { ++received; }));
  a->set_delay(std::chrono::milliseconds(40), std::chrono::milliseconds(60));
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 5; ++i) a->send(msg(1, 2, 0));
  REQUIRE(run_until(io, [&] { return received == 5; }));
  CHECK(std::chrono::steady_clock::now() - t0 >= std::chrono::milliseconds(40));
}

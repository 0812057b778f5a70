// A one-node raftkit cluster built only from the installed public API: a
// memory store, the in-process transport, one proposal committed and applied.
// Exits 0 when the proposal completed with the state machine's answer, 1
// otherwise (including when nothing happened within ten seconds).
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <raftkit/node.hpp>

namespace {

struct Register : raftkit::StateMachine {
  std::string value;
  raftkit::Bytes apply(const raftkit::Entry& e) override {
    value = raftkit::to_string(e.payload);
    return raftkit::to_bytes("stored " + value);
  }
  raftkit::Bytes query(raftkit::BytesView) const override { return raftkit::to_bytes(value); }
  std::unique_ptr<raftkit::SnapshotCapture> capture_snapshot() const override {
    return std::make_unique<raftkit::CopiedSnapshot>(raftkit::to_bytes(value));
  }
  std::error_code restore_snapshot(raftkit::SnapshotReader& in) override {
    raftkit::Bytes b;
    if (auto ec = raftkit::read_all(in, b)) return ec;
    value = raftkit::to_string(b);
    return {};
  }
};

}  // namespace

int main() {
  boost::asio::io_context io;
  const raftkit::NodeId self{1};
  auto options = raftkit::Options::from_peers(self, {{self, "inproc:1"}});
  options.tick_interval = std::chrono::milliseconds(10);
  options.bootstrap = true;  // a new one-node cluster
  auto network = raftkit::make_inproc_network();
  raftkit::Node node(io.get_executor(), options, std::make_shared<Register>(), raftkit::make_memory_store(),
                     network->make_transport(self, io.get_executor()));
  if (auto ec = node.start()) {
    std::fprintf(stderr, "consumer: start failed: %s\n", ec.message().c_str());
    return 1;
  }

  int exit_code = 1;
  boost::asio::steady_timer deadline(io, std::chrono::seconds(10));
  deadline.async_wait([&](boost::system::error_code ec) {
    if (ec) return;
    std::fprintf(stderr, "consumer: no commit within 10 s (role %s)\n", std::string(raftkit::to_string(node.status().role)).c_str());
    node.stop();
    io.stop();
  });
  // A single voter elects itself after one election timeout; propose once it leads.
  boost::asio::steady_timer poll(io);
  std::function<void()> propose_when_leader = [&] {
    if (node.status().leader != self) {
      poll.expires_after(std::chrono::milliseconds(10));
      poll.async_wait([&](boost::system::error_code ec) {
        if (!ec) propose_when_leader();
      });
      return;
    }
    node.async_propose(raftkit::to_bytes("hello"), [&](boost::system::error_code ec, raftkit::Response response) {
      const raftkit::Bytes& result = response.value;
      if (ec) {
        std::fprintf(stderr, "consumer: proposal failed: %s\n", ec.message().c_str());
      } else {
        const auto status = node.status();
        std::printf("consumer: committed at index %llu in term %llu: %s\n",
                    static_cast<unsigned long long>(status.commit.value),
                    static_cast<unsigned long long>(status.term.value), raftkit::to_string(result).c_str());
        if (raftkit::to_string(result) == "stored hello") exit_code = 0;
      }
      deadline.cancel();
      node.stop();
      io.stop();
    });
  };
  propose_when_leader();
  io.run();
  return exit_code;
}

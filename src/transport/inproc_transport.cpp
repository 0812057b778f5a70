// transport/inproc_transport.cpp — nodes of one process, joined by a hub.
//
// The hub maps node ids to endpoints. send() looks the receiver up under the
// hub's mutex and posts the handler call to the receiver's executor; the
// posted call holds the endpoint alive and checks, under the endpoint's own
// mutex, that it is still running, so a stopped node never sees a message.
// No queue bound: the executor's queue is the queue, and in-process senders
// are the test's own code. No serialization: messages are moved, not encoded
// (codec coverage lives in the codec tests and the TCP transport). A probe
// before a bootstrap (probe_peers) reads the standing each endpoint was
// told (set_standing), under that endpoint's mutex.
#include <map>
#include <mutex>

#include <boost/asio/post.hpp>

#include "raftkit/transport.hpp"

namespace raftkit {
namespace {

struct Endpoint {
  NodeId id;
  boost::asio::any_io_executor executor;
  std::mutex mutex;
  Transport::MessageHandler on_message;
  bool running = false;
  ClusterStanding standing;  // what a probe of this node finds
  std::atomic<std::uint64_t> sent{0}, received{0}, dropped{0};
};

struct Hub {
  std::mutex mutex;
  std::map<NodeId, std::shared_ptr<Endpoint>> endpoints;
};

class InprocTransport final : public Transport {
 public:
  InprocTransport(std::shared_ptr<Hub> hub, NodeId self, boost::asio::any_io_executor executor)
      : hub_(std::move(hub)), endpoint_(std::make_shared<Endpoint>()) {
    endpoint_->id = self;
    endpoint_->executor = std::move(executor);
  }
  ~InprocTransport() override { stop(); }

  std::error_code start(MessageHandler on_message, UnreachableHandler) override {
    if (endpoint_->id.is_none() || !on_message) return errc::invalid_argument;
    std::scoped_lock lock(hub_->mutex, endpoint_->mutex);
    if (endpoint_->running || hub_->endpoints.count(endpoint_->id)) return errc::invalid_argument;
    endpoint_->on_message = std::move(on_message);
    endpoint_->running = true;
    hub_->endpoints[endpoint_->id] = endpoint_;
    return {};
  }

  void send(Message msg) override {
    std::shared_ptr<Endpoint> to;
    {
      std::lock_guard lock(hub_->mutex);
      auto it = hub_->endpoints.find(msg.to);
      if (it != hub_->endpoints.end()) to = it->second;
    }
    if (!to || !running()) {
      endpoint_->dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    endpoint_->sent.fetch_add(1, std::memory_order_relaxed);
    boost::asio::post(to->executor, [to, msg = std::move(msg)]() mutable {
      MessageHandler handler;
      {
        std::lock_guard lock(to->mutex);
        if (!to->running) return;
        handler = to->on_message;
      }
      to->received.fetch_add(1, std::memory_order_relaxed);
      handler(std::move(msg));
    });
  }

  void stop() override {
    std::scoped_lock lock(hub_->mutex, endpoint_->mutex);
    if (!endpoint_->running) return;
    endpoint_->running = false;
    endpoint_->on_message = nullptr;
    auto it = hub_->endpoints.find(endpoint_->id);
    if (it != hub_->endpoints.end() && it->second == endpoint_) hub_->endpoints.erase(it);
  }

  NodeId self() const override { return endpoint_->id; }

  void set_standing(const ClusterStanding& standing) override {
    std::lock_guard lock(endpoint_->mutex);
    endpoint_->standing = standing;
  }

  // A peer's answer is read from its endpoint at once: a started one
  // answers, one not started (or stopped) is not reached.
  std::optional<std::vector<PeerStanding>> probe_peers(const std::map<NodeId, std::string>& peers,
                                                        std::chrono::milliseconds) override {
    std::vector<PeerStanding> out;
    for (const auto& [id, address] : peers) {
      if (id == endpoint_->id) continue;
      PeerStanding p{id, address, false, {}, "not started"};
      std::shared_ptr<Endpoint> peer;
      {
        std::lock_guard lock(hub_->mutex);
        if (auto it = hub_->endpoints.find(id); it != hub_->endpoints.end()) peer = it->second;
      }
      if (peer) {
        std::lock_guard lock(peer->mutex);
        if (peer->running) p = PeerStanding{id, address, true, peer->standing, {}};
      }
      out.push_back(std::move(p));
    }
    return out;
  }

  TransportStats stats() const override {
    TransportStats s;
    s.sent = endpoint_->sent.load(std::memory_order_relaxed);
    s.received = endpoint_->received.load(std::memory_order_relaxed);
    s.dropped = endpoint_->dropped.load(std::memory_order_relaxed);
    return s;
  }

 private:
  bool running() const {
    std::lock_guard lock(endpoint_->mutex);
    return endpoint_->running;
  }

  std::shared_ptr<Hub> hub_;
  std::shared_ptr<Endpoint> endpoint_;
};

class InprocNetworkImpl final : public InprocNetwork {
 public:
  std::shared_ptr<Transport> make_transport(NodeId self, boost::asio::any_io_executor executor) override {
    return std::make_shared<InprocTransport>(hub_, self, std::move(executor));
  }

 private:
  std::shared_ptr<Hub> hub_ = std::make_shared<Hub>();
};

}  // namespace

std::shared_ptr<InprocNetwork> make_inproc_network() { return std::make_shared<InprocNetworkImpl>(); }

}  // namespace raftkit

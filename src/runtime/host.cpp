// runtime/host.cpp — many groups on one transport, one shared log and one
// disk lane (raftkit/host.hpp).
//
// Each group is a Node built on the host's resources: a GroupTransport that
// stamps the group on what it sends and receives what the host routes to
// it, a LogStore view of the shared log, and the host's disk lane and
// snapshot thread. The Node's Ready cycle is the one a single node runs.
#include "raftkit/host.hpp"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>

#include "raftkit/error.hpp"
#include "runtime/disk_lane.hpp"
#include "storage/file_system.hpp"
#include "storage/shared_log.hpp"

namespace raftkit {

namespace asio = boost::asio;

namespace {

// What a started group's transport asked to be told.
struct Handlers {
  Transport::MessageHandler on_message;
  Transport::UnreachableHandler on_unreachable;
  Transport::SnapshotStatusHandler on_snapshot_status;
};

// Every group's handlers, and what the host transport must dial: the union
// of every group's members. A handler is called without the lock held (a
// node may step the message right there, inline, and tell its new members
// back); a group's handler may thus run once more just after its transport
// stopped, which its node ignores as it ignores any input after stop().
class Router {
 public:
  explicit Router(std::shared_ptr<Transport> transport) : transport_(std::move(transport)) {}

  bool add(GroupId g, Handlers h) {
    std::lock_guard lock(mu_);
    return routes_.emplace(g, std::make_shared<const Handlers>(std::move(h))).second;
  }
  void remove(GroupId g) {
    {
      std::lock_guard lock(mu_);
      routes_.erase(g);
    }
    set_addresses(g, std::nullopt);
  }
  // Before a group's transport starts: kept for start().
  void set_snapshot_handler(GroupId g, Transport::SnapshotStatusHandler h) {
    std::lock_guard lock(mu_);
    early_snapshot_handlers_[g] = std::move(h);
  }
  Transport::SnapshotStatusHandler take_snapshot_handler(GroupId g) {
    std::lock_guard lock(mu_);
    auto h = std::move(early_snapshot_handlers_[g]);
    early_snapshot_handlers_.erase(g);
    return h;
  }
  // The group's members (none: it stopped). The host transport dials every
  // member of every group; one id is one host, so one address.
  void set_addresses(GroupId g, std::optional<std::map<NodeId, std::string>> addresses) {
    std::lock_guard lock(peers_mu_);
    if (addresses)
      addresses_[g] = std::move(*addresses);
    else
      addresses_.erase(g);
    std::map<NodeId, std::string> all;
    for (const auto& [group, members] : addresses_) all.insert(members.begin(), members.end());
    if (all == dialled_) return;
    dialled_ = std::move(all);
    transport_->update_peers(dialled_);
  }

  void deliver(Message m) {
    if (auto h = find(m.group))
      h->on_message(std::move(m));
    else
      unrouted_.fetch_add(1, std::memory_order_relaxed);
  }
  void unreachable(NodeId peer) {
    std::vector<std::shared_ptr<const Handlers>> told;
    {
      std::lock_guard lock(mu_);
      for (const auto& [g, h] : routes_)
        if (h->on_unreachable) told.push_back(h);
    }
    for (const auto& h : told) h->on_unreachable(peer);
  }
  void snapshot_status(NodeId peer, GroupId g, bool delivered) {
    if (auto h = find(g); h && h->on_snapshot_status) h->on_snapshot_status(peer, g, delivered);
  }

  std::uint64_t unrouted() const { return unrouted_.load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<const Handlers> find(GroupId g) const {
    std::lock_guard lock(mu_);
    auto it = routes_.find(g);
    return it == routes_.end() ? nullptr : it->second;
  }

  std::shared_ptr<Transport> transport_;
  mutable std::mutex mu_;  // routes_, early_snapshot_handlers_
  std::map<GroupId, std::shared_ptr<const Handlers>> routes_;
  std::map<GroupId, Transport::SnapshotStatusHandler> early_snapshot_handlers_;
  std::mutex peers_mu_;  // addresses_, dialled_, and the order of update_peers calls
  std::map<GroupId, std::map<NodeId, std::string>> addresses_;
  std::map<NodeId, std::string> dialled_;
  std::atomic<std::uint64_t> unrouted_{0};
};

// One group's view of the host transport.
class GroupTransport final : public Transport {
 public:
  GroupTransport(GroupId group, std::shared_ptr<Transport> host, std::shared_ptr<Router> router)
      : group_(group), host_(std::move(host)), router_(std::move(router)) {}
  ~GroupTransport() override { stop(); }

  std::error_code start(MessageHandler on_message, UnreachableHandler on_unreachable) override {
    if (started_.exchange(true)) return errc::invalid_argument;
    Handlers h{std::move(on_message), std::move(on_unreachable), router_->take_snapshot_handler(group_)};
    return router_->add(group_, std::move(h)) ? std::error_code{} : std::error_code(errc::invalid_argument);
  }
  void send(Message msg) override {
    if (!started_.load() || stopped_.load()) return;
    msg.group = group_;
    host_->send(std::move(msg));
  }
  void stop() override {
    if (started_.load() && !stopped_.exchange(true)) router_->remove(group_);
  }
  NodeId self() const override { return host_->self(); }
  void set_snapshot_status_handler(SnapshotStatusHandler handler) override {
    router_->set_snapshot_handler(group_, std::move(handler));
  }
  TransportStats stats() const override { return host_->stats(); }
  void update_peers(const std::map<NodeId, std::string>& addresses) override {
    if (!stopped_.load()) router_->set_addresses(group_, addresses);
  }

 private:
  const GroupId group_;
  std::shared_ptr<Transport> host_;
  std::shared_ptr<Router> router_;
  std::atomic<bool> started_{false};
  std::atomic<bool> stopped_{false};
};

}  // namespace

struct Host::Impl : std::enable_shared_from_this<Host::Impl> {
  Impl(asio::any_io_executor ex, HostOptions opt, std::shared_ptr<Transport> tr)
      : executor(ex),
        options(std::move(opt)),
        transport(std::move(tr)),
        router(std::make_shared<Router>(transport)),
        balance_timer(asio::make_strand(ex)) {}

  asio::any_io_executor executor;
  HostOptions options;
  std::shared_ptr<Transport> transport;
  std::shared_ptr<Router> router;
  std::unique_ptr<storage::SharedLog> log;
  std::shared_ptr<runtime::DiskLane> disk;
  std::shared_ptr<asio::thread_pool> snapshots = std::make_shared<asio::thread_pool>(1);

  mutable std::mutex mu;  // the fields below
  bool started = false;
  bool stopped = false;
  std::map<GroupId, std::shared_ptr<Node>> nodes;

  asio::steady_timer balance_timer;  // only its own handler touches it after start()
  std::atomic<std::uint64_t> balance_transfers{0};

  void schedule_balance() {
    balance_timer.expires_after(options.balance_interval);
    balance_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
      auto self = weak.lock();
      if (ec || !self) return;
      {
        std::lock_guard lock(self->mu);
        if (self->stopped) return;
      }
      self->balance();
      self->schedule_balance();
    });
  }

  // One round of the leader balance (HostOptions::balance_interval): at
  // most one transfer, from this host, to the least-loaded caught-up voter
  // below its share.
  void balance() {
    std::vector<std::shared_ptr<Node>> running;
    {
      std::lock_guard lock(mu);
      for (const auto& [g, node] : nodes) running.push_back(node);
    }
    std::map<NodeId, std::size_t> led;
    std::vector<std::pair<std::shared_ptr<Node>, NodeStatus>> leading;
    for (auto& node : running) {
      NodeStatus s = node->status();
      for (NodeId v : s.membership.voters) led[v] += 0;
      if (!s.leader.is_none()) ++led[s.leader];
      if (s.role == NodeRole::leader) leading.emplace_back(node, std::move(s));
    }
    if (led.empty()) return;
    const std::size_t share = (running.size() + led.size() - 1) / led.size();
    if (led[options.id] <= share) return;
    std::shared_ptr<Node> from;
    NodeId to;
    for (const auto& [node, s] : leading)
      for (const PeerStatus& p : s.peers) {
        const bool voter = std::find(s.membership.voters.begin(), s.membership.voters.end(), p.id) !=
                           s.membership.voters.end();
        if (!voter || !p.active || p.replacing || p.state != "replicate" || led[p.id] >= share) continue;
        if (to.is_none() || led[p.id] < led[to]) from = node, to = p.id;
      }
    if (!from) return;
    balance_transfers.fetch_add(1, std::memory_order_relaxed);
    from->async_transfer_leader(to, [](boost::system::error_code, LeaderHint) {});
  }

  std::error_code fail(std::error_code ec, std::string why, std::string* detail) {
    options.logger.error(options.id, Term{}, "host cannot start: {}", why);
    if (detail != nullptr) *detail = std::move(why);
    return ec;
  }
};

Host::Host(asio::any_io_executor executor, HostOptions options, std::shared_ptr<Transport> transport)
    : impl_(std::make_shared<Impl>(executor, std::move(options), std::move(transport))) {}

Host::~Host() { stop(); }

std::error_code Host::start(std::string* detail) {
  Impl& h = *impl_;
  {
    std::lock_guard lock(h.mu);
    if (h.started || h.stopped) return h.fail(errc::invalid_argument, "start() called twice", detail);
    h.started = true;
  }
  if (h.options.id.is_none()) return h.fail(errc::invalid_argument, "HostOptions::id is 0", detail);
  if (!h.transport || h.transport->self() != h.options.id)
    return h.fail(errc::invalid_argument, fmt::format("the transport is not bound to node {}", h.options.id), detail);
  if (!h.options.data_dir.empty()) {
    std::error_code fs_ec;
    std::filesystem::create_directories(std::filesystem::path(h.options.data_dir) / "groups", fs_ec);
    if (fs_ec)
      return h.fail(errc::io_error, fmt::format("cannot create {}: {}", h.options.data_dir, fs_ec.message()), detail);
    storage::SharedLogOptions lo;
    lo.segment_bytes = h.options.segment_bytes;
    lo.logger = h.options.logger;
    std::string why;
    if (auto ec = storage::open_shared_log(posix_file_system(), h.options.data_dir + "/log", lo, h.log, &why))
      return h.fail(ec, why, detail);
    h.disk = std::make_shared<runtime::DiskLane>([log = h.log.get()] { return log->sync(); });
  }
  // The router holds the transport: the transport's handlers hold the router weakly.
  std::weak_ptr<Router> router = h.router;
  h.transport->set_snapshot_status_handler([router](NodeId peer, GroupId g, bool delivered) {
    if (auto r = router.lock()) r->snapshot_status(peer, g, delivered);
  });
  if (auto ec = h.transport->start(
          [router](Message m) {
            if (auto r = router.lock()) r->deliver(std::move(m));
          },
          [router](NodeId peer) {
            if (auto r = router.lock()) r->unreachable(peer);
          }))
    return h.fail(ec, "starting the transport: " + ec.message(), detail);
  if (h.options.balance_interval.count() > 0) asio::dispatch(h.balance_timer.get_executor(), [impl = impl_] {
    impl->schedule_balance();
  });
  return {};
}

void Host::stop() {
  Impl& h = *impl_;
  std::map<GroupId, std::shared_ptr<Node>> nodes;
  {
    std::lock_guard lock(h.mu);
    if (h.stopped) return;
    h.stopped = true;
    nodes = std::move(h.nodes);
    if (!h.started) return;
  }
  for (auto& [g, node] : nodes) node->stop();
  h.transport->stop();
  // Every group has stopped and its disk work is done; the nodes' last
  // references (in handlers still queued) may go later, and with them the
  // log's views. The directory is free now, for a host started again.
  if (h.log) h.log->close();
}

std::vector<GroupId> Host::stored_groups() const { return impl_->log ? impl_->log->groups() : std::vector<GroupId>{}; }

std::error_code Host::start_group(GroupId group, Options options, std::shared_ptr<StateMachine> state_machine,
                                  std::shared_ptr<Node>& out) {
  Impl& h = *impl_;
  {
    std::lock_guard lock(h.mu);
    if (!h.started || h.stopped || h.nodes.count(group)) return errc::invalid_argument;
  }
  if (options.id.is_none()) options.id = h.options.id;
  if (options.id != h.options.id) return errc::invalid_argument;
  std::unique_ptr<LogStore> store = h.log ? h.log->group(group) : make_memory_store();
  if (options.snapshot_dir.empty() && !h.options.data_dir.empty())
    options.snapshot_dir = fmt::format("{}/groups/{}", h.options.data_dir, group);
  auto transport = std::make_shared<GroupTransport>(group, h.transport, h.router);
  auto node = std::shared_ptr<Node>(new Node(h.executor, std::move(options), std::move(state_machine),
                                             std::move(store), std::move(transport), Node::Threads{h.disk, h.snapshots}));
  {
    std::lock_guard lock(h.mu);
    if (h.stopped || !h.nodes.emplace(group, node).second) return errc::invalid_argument;
  }
  if (auto ec = node->start()) {
    std::lock_guard lock(h.mu);
    h.nodes.erase(group);
    return ec;
  }
  out = std::move(node);
  return {};
}

void Host::stop_group(GroupId group) {
  std::shared_ptr<Node> node;
  {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->nodes.find(group);
    if (it == impl_->nodes.end()) return;
    node = std::move(it->second);
    impl_->nodes.erase(it);
  }
  node->stop();
}

std::shared_ptr<Node> Host::group(GroupId group) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->nodes.find(group);
  return it == impl_->nodes.end() ? nullptr : it->second;
}

std::vector<GroupId> Host::groups() const {
  std::lock_guard lock(impl_->mu);
  std::vector<GroupId> out;
  for (const auto& [g, node] : impl_->nodes) out.push_back(g);
  return out;
}

HostStats Host::stats() const {
  HostStats s;
  s.transport = impl_->transport->stats();
  s.unrouted = impl_->router->unrouted();
  s.log_syncs = impl_->disk ? impl_->disk->syncs() : 0;
  s.balance_transfers = impl_->balance_transfers.load(std::memory_order_relaxed);
  std::lock_guard lock(impl_->mu);
  s.groups = impl_->nodes.size();
  return s;
}

NodeId Host::id() const { return impl_->options.id; }

}  // namespace raftkit

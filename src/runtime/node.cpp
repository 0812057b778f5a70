// runtime/node.cpp — the Asio shell around the runtime's Driver.
//
// The Ready cycle, pending requests, snapshots and disk-stall detection live
// in runtime/driver.hpp, which the simulator runs too. Node adds what needs
// Asio: a strand that every driver call runs on, a steady timer that ticks
// it, a disk thread that performs each DiskWrite and its sync while the
// strand keeps stepping messages, a thread that serialises snapshots beside
// the log writes, the transport's handlers, and a status
// copy that any thread may read.
#include "raftkit/node.hpp"

#include <algorithm>
#include <atomic>
#include <future>
#include <random>
#include <mutex>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>

#include "runtime/bootstrap_check.hpp"
#include "runtime/disk_lane.hpp"
#include "runtime/driver.hpp"
#include "runtime/snapshot_store.hpp"

namespace raftkit {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Node::Impl : std::enable_shared_from_this<Node::Impl>, runtime::DriverIo {
  Impl(asio::any_io_executor ex, Options opt, std::shared_ptr<StateMachine> machine, std::unique_ptr<LogStore> st,
       std::shared_ptr<Transport> tr, Threads threads)
      : executor(ex),
        strand(asio::make_strand(ex)),
        sm(std::move(machine)),
        store(std::move(st)),
        transport(std::move(tr)),
        snapshots(opt.snapshot_dir.empty() ? runtime::make_memory_snapshot_store()
                                           : runtime::make_file_snapshot_store(
                                                 opt.snapshot_dir, {opt.snapshot_write_bytes_per_second})),
        id(opt.id),
        logger(opt.logger),
        tick_interval(opt.tick_interval),
        driver(std::move(opt), *sm, *store, *snapshots, *this, random_nonce()),
        ticker(strand),
        disk(threads.disk || !store->performs_io()
                 ? std::move(threads.disk)
                 : std::make_shared<runtime::DiskLane>([s = store.get()] { return s->sync(); })),
        snapshotter(threads.snapshots ? std::move(threads.snapshots) : std::make_shared<asio::thread_pool>(1)) {}

  asio::any_io_executor executor;
  asio::strand<asio::any_io_executor> strand;
  std::shared_ptr<StateMachine> sm;
  std::unique_ptr<LogStore> store;
  std::shared_ptr<Transport> transport;
  std::unique_ptr<runtime::SnapshotStore> snapshots;
  NodeId id;
  Logger logger;
  std::chrono::milliseconds tick_interval;
  runtime::Driver driver;  // touched only on the strand
  asio::steady_timer ticker;
  // The threads below are the node's own, or its host's. Work handed to
  // them captures the node by a plain pointer and is counted in
  // `background`, which stop() waits for: the node outlives its work there,
  // and its last reference is never dropped on one of those threads.
  std::shared_ptr<runtime::DiskLane> disk;  // none for a store that performs no I/O
  std::shared_ptr<asio::thread_pool> snapshotter;  // snapshot serialisation, beside the log writes
  std::shared_ptr<runtime::Outstanding> background = std::make_shared<runtime::Outstanding>();
  bool started = false;
  bool stopped = false;
  bool flush_scheduled = false;
  std::atomic<bool> accepting{false};  // the driver has started: the transport's input goes to it
  ClusterStanding told_standing;

  mutable std::mutex status_mu;
  NodeStatus status;
  Index status_config{~std::uint64_t{0}};  // the configuration and role `status` lists were built for
  NodeRole status_role = NodeRole::starting;

  static std::uint64_t random_nonce() {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd();
  }
  static runtime::TimePoint now() { return Clock::now().time_since_epoch(); }

  // The transport starts first, so a node about to bootstrap already
  // answers the peers that ask it while it asks them (a whole cluster
  // started at once finds each other at once), saying what its store says
  // (a restarted member is a member while its snapshot loads). Its input is
  // dropped until the driver has started: no handler touches the driver
  // before that, whichever thread runs the executor.
  std::error_code start() {
    if (transport->self() != id) {
      logger.error(id, Term{}, "transport is bound to node {}", transport->self());
      return errc::invalid_argument;
    }
    told_standing = runtime::standing_of(std::max(store->hard_state().commit, store->snapshot_meta().index), NodeId{});
    transport->set_standing(told_standing);
    if (auto ec = start_transport()) return ec;
    std::string detail;
    if (auto ec = driver.start(now(), detail)) {
      logger.error(id, Term{}, "cannot start: {}", detail);
      transport->stop();
      update_status();
      return ec;
    }
    update_standing();
    accepting.store(true, std::memory_order_release);
    started = true;
    update_status();
    asio::dispatch(strand, [self = shared_from_this()] { self->schedule_tick(Clock::now()); });
    return {};
  }

  std::error_code start_transport() {
    std::weak_ptr<Impl> weak = weak_from_this();
    auto live = [weak]() -> std::shared_ptr<Impl> {
      auto self = weak.lock();
      return self && self->accepting.load(std::memory_order_acquire) ? self : nullptr;
    };
    transport->set_snapshot_status_handler([live](NodeId peer, GroupId, bool delivered) {
      if (auto self = live())
        asio::dispatch(self->strand, [self, peer, delivered] {
          self->driver.report_snapshot(peer, delivered);
          self->after_input();
        });
    });
    return transport->start(
        [live](Message m) {
          if (auto self = live())
            asio::dispatch(self->strand, [self, m = std::move(m)] {
              self->driver.step(m, now());
              self->after_input();
            });
        },
        [live](NodeId peer) {
          if (auto self = live())
            asio::dispatch(self->strand, [self, peer] {
              self->driver.report_unreachable(peer);
              self->after_input();
            });
        });
  }

  // On the strand.
  void stop() {
    if (stopped) return;
    stopped = true;
    ticker.cancel();
    transport->stop();
    driver.stop(errc::shutting_down);
    update_status();
  }

  // Proposals already queued on the strand run first, then one poll
  // replicates all of them together (one append per follower, not per
  // proposal).
  void flush_soon() {
    if (flush_scheduled) return;
    flush_scheduled = true;
    asio::post(strand, [self = shared_from_this()] {
      self->flush_scheduled = false;
      self->driver.poll();
      self->after_input();
    });
  }

  // Every input ends here: a driver that stopped on a store failure takes
  // the node down with it.
  void after_input(bool lists = false) {
    if (driver.stopped() && !stopped) stop();
    update_status(lists);
  }

  void schedule_tick(Clock::time_point at) {
    if (stopped) return;
    const auto next = at + tick_interval;
    ticker.expires_at(next);
    ticker.async_wait([self = shared_from_this(), next](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      self->driver.tick(now());
      self->after_input(/*lists=*/true);
      // The driver counts the ticks a late timer missed; the timer keeps its
      // cadence and does not fire for each of them.
      self->schedule_tick(std::max(next, Clock::now() - self->tick_interval));
    });
  }

  // ---- DriverIo -----------------------------------------------------------

  void send(Message m) override { transport->send(std::move(m)); }

  void members_changed(const Membership& m) override { transport->update_peers(m.addresses); }
  void generation_changed(std::uint64_t generation) override { transport->set_generation(generation); }

  // Runs `op` on the strand once the node has started; its completion
  // carries the leader hint.
  void on_strand(DoneHandler done, std::function<void(Impl&, runtime::Driver::DoneHandler)> op);

  // The write and its sync run on the disk lane; the strand keeps going
  // (a store that performs no I/O is written on the strand). A snapshot's
  // serialisation runs on the snapshot thread, beside the log writes, so a
  // large snapshot never delays an append.
  void persist(std::shared_ptr<runtime::DiskWrite> w) override {
    if (w->snapshot_only) {
      return off_strand(*snapshotter, [w](Impl& self) {
        std::string what;
        const std::error_code ec = w->apply(what);
        asio::dispatch(self.strand, [s = self.shared_from_this(), w, ec, what = std::move(what)] {
          s->driver.write_done(w->id, ec, what);
          s->after_input();
        });
      });
    }
    if (!store->performs_io()) {  // nothing can block: write here, report as the next handler
      std::string what;
      std::error_code ec = w->apply(what);
      if (!ec && (ec = store->sync())) what = "syncing the log", ec = runtime::sync_failure(ec);
      asio::post(strand, [self = shared_from_this(), w = std::move(w), ec, what = std::move(what)] {
        self->driver.write_done(w->id, ec, what);
        self->after_input();
      });
      return;
    }
    const std::uint64_t id = w->id;
    disk->submit([w = std::move(w)](std::string& what) { return w->apply(what); },
                 [self = this, id](std::error_code ec, std::string what) {
                   asio::dispatch(self->strand, [s = self->shared_from_this(), id, ec, what = std::move(what)] {
                     s->driver.write_done(id, ec, what);
                     s->after_input();
                   });
                 },
                 driver.metrics(), background);  // the registry's atomics are safe off the strand
  }

  // A snapshot's bytes are read back on the snapshot thread too.
  void read_snapshot(std::shared_ptr<runtime::SnapshotRead> r) override {
    off_strand(*snapshotter, [r](Impl& self) {
      r->run();
      asio::dispatch(self.strand, [s = self.shared_from_this(), r] {
        s->driver.snapshot_read_done(*r);
        s->after_input();
      });
    });
  }

  // Runs `job` on `pool`, counted in `background` (see there).
  void off_strand(asio::thread_pool& pool, std::function<void(Impl&)> job) {
    background->add();
    asio::post(pool, [self = this, owner = background, job = std::move(job)]() mutable {
      job(*self);
      job = nullptr;
      owner->done();
    });
  }

  runtime::TimePoint metrics_clock() override { return now(); }

  std::optional<std::vector<PeerStanding>> probe_peers(const std::map<NodeId, std::string>& peers,
                                                        std::chrono::milliseconds wait) override {
    return transport->probe_peers(peers, wait);
  }

  // What the transport tells a node that dials this one; pushed on change.
  void update_standing() {
    const ClusterStanding s = driver.standing();
    if (s == told_standing) return;
    told_standing = s;
    transport->set_standing(s);
  }

  // Every input refreshes the figures; the lists (the peers' progress, the
  // configuration), which allocate, are rebuilt on ticks and whenever the
  // role or the configuration changes, so they lag by at most a tick.
  void update_status(bool lists = false) {
    if (driver.started()) update_standing();
    const Index config = driver.started() ? driver.raft().membership_index() : Index{};
    NodeStatus s = driver.status(false);
    if (lists || config != status_config || s.role != status_role) {
      lists = true;
      s = driver.status(true);
      status_config = config;
      status_role = s.role;
    }
    if (stopped) s.role = NodeRole::stopped, s.leader = NodeId{};
    std::lock_guard lock(status_mu);
    if (!lists) {
      s.peers = std::move(status.peers);
      s.membership = std::move(status.membership);
      s.contacts = std::move(status.contacts);
    }
    status = std::move(s);
  }
};

Node::Node(asio::any_io_executor executor, Options options, std::shared_ptr<StateMachine> state_machine,
           std::unique_ptr<LogStore> store, std::shared_ptr<Transport> transport)
    : Node(executor, std::move(options), std::move(state_machine), std::move(store), std::move(transport), Threads{}) {}

Node::Node(asio::any_io_executor executor, Options options, std::shared_ptr<StateMachine> state_machine,
           std::unique_ptr<LogStore> store, std::shared_ptr<Transport> transport, Threads threads)
    : impl_(std::make_shared<Impl>(executor, std::move(options), std::move(state_machine), std::move(store),
                                   std::move(transport), std::move(threads))) {
  impl_->update_status();
}

Node::~Node() { stop(); }

std::error_code Node::start() {
  if (impl_->started || impl_->stopped) return errc::invalid_argument;
  return impl_->start();
}

void Node::stop() {
  auto impl = impl_;
  if (!impl->started) {
    impl->stopped = true;
    impl->driver.stop(errc::shutting_down);
    impl->update_status();
    return;
  }
  impl->transport->stop();  // no more input, whatever the strand is doing
  asio::io_context* io = nullptr;
  if (auto* ex = impl->executor.target<asio::io_context::executor_type>()) io = &ex->context();
  if (impl->strand.running_in_this_thread() || (io && io->stopped())) {
    // On the strand, or nothing can run it: stop right here.
    impl->stop();
  } else if (io && io->get_executor().running_in_this_thread()) {
    // Inside another handler of the node's own io_context: waiting could
    // deadlock a single-threaded loop.
    asio::post(impl->strand, [impl] { impl->stop(); });
  } else {
    std::promise<void> done;
    asio::post(impl->strand, [impl, &done] {
      impl->stop();
      done.set_value();
    });
    done.get_future().wait();
  }
  impl->background->wait_idle();  // an in-flight write completes; its completion is dropped
}

NodeStatus Node::status() const {
  std::lock_guard lock(impl_->status_mu);
  return impl_->status;
}

NodeId Node::id() const { return impl_->id; }

MetricsSnapshot Node::metrics() const {
  MetricsSnapshot s = impl_->driver.metrics().snapshot();
  const TransportStats t = impl_->transport->stats();
  s.bytes_sent = t.bytes_sent;
  s.bytes_received = t.bytes_received;
  return s;
}

asio::any_io_executor Node::executor() const { return impl_->executor; }

// The driver completes callers with (error, bytes); the hint is added here,
// at the moment of completion, on the strand: the driver is the only caller
// of these wrappers, so it is alive and its view is the one the refusal saw.
namespace {
runtime::Driver::ResultHandler with_hint(const runtime::Driver& driver, Node::ResultHandler done) {
  return [&driver, done = std::move(done)](std::error_code ec, Bytes value) {
    done(ec, Response{std::move(value), driver.leader_hint()});
  };
}
runtime::Driver::DoneHandler with_hint(const runtime::Driver& driver, Node::DoneHandler done) {
  return [&driver, done = std::move(done)](std::error_code ec) { done(ec, driver.leader_hint()); };
}
}  // namespace

void Node::Impl::on_strand(DoneHandler done, std::function<void(Impl&, runtime::Driver::DoneHandler)> op) {
  asio::dispatch(strand, [self = shared_from_this(), done = std::move(done), op = std::move(op)]() mutable {
    if (!self->started) return done(errc::shutting_down, {});
    op(*self, with_hint(self->driver, std::move(done)));
    self->after_input();
  });
}

void Node::propose_impl(Bytes command, ResultHandler done) {
  asio::dispatch(impl_->strand, [impl = impl_, command = std::move(command), done = std::move(done)]() mutable {
    if (!impl->started) return done(errc::shutting_down, {});
    impl->driver.propose(std::move(command), with_hint(impl->driver, std::move(done)), Impl::now(), /*defer=*/true);
    impl->flush_soon();
  });
}

void Node::read_impl(Bytes query, ResultHandler done) {
  asio::dispatch(impl_->strand, [impl = impl_, query = std::move(query), done = std::move(done)]() mutable {
    if (!impl->started) return done(errc::shutting_down, {});
    impl->driver.read(std::move(query), with_hint(impl->driver, std::move(done)), Impl::now());
    impl->after_input();
  });
}

void Node::read_stale_impl(Bytes query, ResultHandler done) {
  asio::dispatch(impl_->strand, [impl = impl_, query = std::move(query), done = std::move(done)]() mutable {
    if (!impl->started) return done(errc::shutting_down, {});
    impl->driver.read_stale(query, with_hint(impl->driver, std::move(done)));
  });
}

void Node::transfer_impl(NodeId to, DoneHandler done) {
  impl_->on_strand(std::move(done), [to](Impl& impl, runtime::Driver::DoneHandler d) {
    impl.driver.transfer(to, std::move(d), Impl::now());
  });
}

void Node::add_server_impl(NodeId id, std::string address, DoneHandler done) {
  impl_->on_strand(std::move(done), [id, address = std::move(address)](Impl& impl, runtime::Driver::DoneHandler d) {
    impl.driver.add_server(id, address, std::move(d), Impl::now());
  });
}

void Node::remove_server_impl(NodeId id, DoneHandler done) {
  impl_->on_strand(std::move(done), [id](Impl& impl, runtime::Driver::DoneHandler d) {
    impl.driver.remove_server(id, std::move(d), Impl::now());
  });
}

void Node::replace_server_impl(NodeId id, DoneHandler done) {
  impl_->on_strand(std::move(done), [id](Impl& impl, runtime::Driver::DoneHandler d) {
    impl.driver.replace_server(id, std::move(d), Impl::now());
  });
}

void Node::update_server_impl(NodeId id, std::string address, DoneHandler done) {
  impl_->on_strand(std::move(done), [id, address = std::move(address)](Impl& impl, runtime::Driver::DoneHandler d) {
    impl.driver.update_server(id, address, std::move(d), Impl::now());
  });
}

void Node::snapshot_impl(DoneHandler done) {
  impl_->on_strand(std::move(done), [](Impl& impl, runtime::Driver::DoneHandler d) { impl.driver.snapshot_now(std::move(d)); });
}

void Node::change_membership_impl(Membership target, DoneHandler done) {
  impl_->on_strand(std::move(done), [target = std::move(target)](Impl& impl, runtime::Driver::DoneHandler d) {
    impl.driver.change_membership(target, std::move(d), Impl::now());
  });
}

}  // namespace raftkit

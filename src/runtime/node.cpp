// runtime/node.cpp — the loop that joins core, storage, transport and the
// user's state machine.
//
// Everything that touches the core runs on one strand. The cycle:
//
//   tick / message / request ──▶ core ──▶ Ready
//     1. `messages` leave at once (the leader's appends go out while its own
//        write is in flight: thesis §10.2.1);
//     2. if the Ready holds anything to persist, it is written and synced on
//        the disk thread while the strand keeps stepping messages and ticks
//        into the core (no second Ready is taken until this one is done);
//     3. back on the strand: `persisted_messages` (votes, acknowledgements)
//        leave, committed entries are applied in order, waiting callers are
//        completed, the core is advanced, and the next Ready is taken.
//
// A failed write or sync is fatal to the node (the store refuses further
// writes; see log_store.hpp): it stops voting, acknowledging and ticking,
// completes every waiting caller with the error, and says why in status().
//
// Snapshots: every Options::snapshot_interval applied entries the state
// machine is serialized on the strand, written (file, then the store's
// metadata, which compacts the log) on the disk thread, and kept in memory
// to send to followers that need entries already compacted.
#include "raftkit/node.hpp"

#include <deque>
#include <future>
#include <optional>
#include <map>
#include <mutex>

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <fmt/format.h>

#include "core/raft.hpp"
#include "raftkit/snapshot_file.hpp"

namespace raftkit {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

struct Node::Impl : std::enable_shared_from_this<Node::Impl> {
  Impl(asio::any_io_executor ex, Options opt, std::shared_ptr<StateMachine> machine, std::unique_ptr<LogStore> st,
       std::shared_ptr<Transport> tr)
      : executor(ex),
        strand(asio::make_strand(ex)),
        options(std::move(opt)),
        sm(std::move(machine)),
        store(std::move(st)),
        transport(std::move(tr)),
        ticker(strand) {}

  asio::any_io_executor executor;
  asio::strand<asio::any_io_executor> strand;
  Options options;
  std::shared_ptr<StateMachine> sm;
  std::unique_ptr<LogStore> store;
  std::shared_ptr<Transport> transport;
  std::unique_ptr<core::Raft> raft;
  asio::steady_timer ticker;
  asio::thread_pool disk{1};

  bool started = false;
  bool stopped = false;
  bool persisting = false;  // a Ready is on the disk thread
  Clock::time_point persist_started;
  bool stall_reported = false;
  std::string failure;

  struct PendingProposal {
    Term term;
    ResultHandler done;
    Clock::time_point deadline;
  };
  std::map<Index, PendingProposal> proposals;

  struct PendingRead {
    Bytes query;
    ResultHandler done;
    Clock::time_point deadline;
    std::optional<Index> index;  // set once the leader confirmed the read index
  };
  std::map<std::uint64_t, PendingRead> reads;
  std::uint64_t next_read_context = 0;

  struct PendingTransfer {
    NodeId to;
    DoneHandler done;
    Clock::time_point deadline;
  };
  std::vector<PendingTransfer> transfers;

  SnapshotMeta snapshot_meta;  // latest snapshot, loaded or taken
  Bytes snapshot_data;
  bool snapshotting = false;

  mutable std::mutex status_mu;
  NodeStatus status;

  // ---- lifecycle --------------------------------------------------------

  std::error_code start() {
    if (auto problem = options.validate(); !problem.empty()) {
      fmt::print(stderr, "raftkit: node {}: invalid options: {}\n", options.id.value, problem);
      return errc::invalid_argument;
    }
    if (transport->self() != options.id) {
      fmt::print(stderr, "raftkit: node {}: transport is bound to node {}\n", options.id.value,
                 transport->self().value);
      return errc::invalid_argument;
    }
    if (auto ec = load_snapshot()) return ec;
    raft = std::make_unique<core::Raft>(options.protocol, *store);
    std::weak_ptr<Impl> weak = weak_from_this();
    auto ec = transport->start(
        [weak](Message m) {
          if (auto self = weak.lock())
            asio::dispatch(self->strand, [self, m = std::move(m)] { self->on_message(m); });
        },
        [weak](NodeId peer) {
          if (auto self = weak.lock())
            asio::dispatch(self->strand, [self, peer] {
              if (!self->stopped) self->raft->report_unreachable(peer);
            });
        });
    if (ec) return ec;
    started = true;
    update_status();
    asio::dispatch(strand, [self = shared_from_this()] { self->schedule_tick(Clock::now()); });
    return {};
  }

  std::error_code load_snapshot() {
    const SnapshotMeta in_store = store->snapshot_meta();
    if (options.snapshot_dir.empty()) {
      if (in_store.index != Index{}) {
        fmt::print(stderr, "raftkit: node {}: the store starts after a snapshot at {} but no snapshot_dir is set\n",
                   options.id.value, in_store.index.value);
        return errc::corrupted;
      }
      return {};
    }
    SnapshotMeta meta;
    Bytes data;
    std::string detail;
    auto ec = read_latest_snapshot(options.snapshot_dir, meta, data, &detail);
    if (ec == errc::unavailable) {
      if (in_store.index == Index{}) return {};
      fmt::print(stderr, "raftkit: node {}: the store starts after a snapshot at {} but {} holds none\n",
                 options.id.value, in_store.index.value, options.snapshot_dir);
      return errc::corrupted;
    }
    if (ec) {
      fmt::print(stderr, "raftkit: node {}: cannot load snapshot: {}\n", options.id.value, detail);
      return ec;
    }
    if (meta.index < in_store.index) {
      fmt::print(stderr, "raftkit: node {}: newest snapshot file ({}) is older than the store's snapshot ({})\n",
                 options.id.value, meta.index.value, in_store.index.value);
      return errc::corrupted;
    }
    if (meta.index > in_store.index) {
      // A crash came between writing the file and recording it in the store.
      if (auto e = store->install_snapshot(meta)) return e;
      if (auto e = store->sync()) return e;
    }
    sm->load_snapshot(data);
    snapshot_meta = meta;
    snapshot_data = std::move(data);
    return {};
  }

  // On the strand. Waiting callers complete with `ec`.
  void halt(std::error_code ec) {
    if (stopped) return;
    stopped = true;
    ticker.cancel();
    transport->stop();
    fail_all(ec);
    update_status();
  }

  void stop() { halt(errc::shutting_down); }

  void fail(std::error_code ec, const std::string& what) {
    failure = fmt::format("{}: {}", what, ec.message());
    fmt::print(stderr, "raftkit: node {} stops: {}\n", options.id.value, failure);
    halt(ec);
  }

  void fail_all(std::error_code ec) {
    for (auto& [index, p] : proposals) p.done(ec, {});
    proposals.clear();
    for (auto& [ctx, r] : reads) r.done(ec, {});
    reads.clear();
    for (auto& t : transfers) t.done(ec);
    transfers.clear();
  }

  // ---- inputs -------------------------------------------------------------

  void schedule_tick(Clock::time_point at) {
    if (stopped) return;
    const auto next = at + options.tick_interval;
    ticker.expires_at(next);
    ticker.async_wait([self = shared_from_this(), next](boost::system::error_code ec) {
      if (ec || self->stopped) return;
      self->raft->tick();
      self->check_disk_stall();
      self->expire(Clock::now());
      self->process();
      // Ticks keep their cadence; after a long stall, skip the missed ones.
      self->schedule_tick(std::max(next, Clock::now() - self->options.tick_interval));
    });
  }

  // Ticks go on while the disk thread is busy; a leader whose own write has
  // not finished in time steps down, so a healthy node can take over.
  void check_disk_stall() {
    if (!persisting || Clock::now() - persist_started < options.disk_stall_timeout) return;
    if (!stall_reported) {
      fmt::print(stderr, "raftkit: node {}: log write stalled for more than {} ms{}\n", options.id.value,
                 options.disk_stall_timeout.count(),
                 raft->role() == core::Role::leader ? "; stepping down as leader" : "");
      stall_reported = true;
    }
    raft->step_down();
  }

  bool too_many_pending() const { return proposals.size() + reads.size() >= options.max_pending_requests; }

  void on_message(const Message& m) {
    if (stopped) return;
    raft->step(m);
    process();
  }

  void propose(Bytes command, ResultHandler done) {
    if (stopped) return done(failure.empty() ? errc::shutting_down : errc::io_error, {});
    if (too_many_pending()) return done(errc::busy, {});
    core::Proposed where;
    if (auto ec = raft->propose(std::move(command), &where)) return done(ec, {});
    proposals.emplace(where.index, PendingProposal{where.term, std::move(done), Clock::now() + options.request_timeout});
    process();
  }

  void read(Bytes query, ResultHandler done) {
    if (stopped) return done(failure.empty() ? errc::shutting_down : errc::io_error, {});
    if (too_many_pending()) return done(errc::busy, {});
    const std::uint64_t ctx = ++next_read_context;
    if (auto ec = raft->read_index(ctx)) return done(ec, {});
    reads.emplace(ctx, PendingRead{std::move(query), std::move(done), Clock::now() + options.request_timeout, {}});
    process();
  }

  void transfer(NodeId to, DoneHandler done) {
    if (stopped) return done(failure.empty() ? errc::shutting_down : errc::io_error);
    if (auto ec = raft->transfer_leader(to)) return done(ec);
    if (to.is_none()) to = raft->transferee();
    if (to.is_none()) return done({});  // we were the best choice ourselves
    transfers.push_back({to, std::move(done), Clock::now() + options.request_timeout});
    process();
  }

  // Completes requests whose time ran out. Proposals and reads are keyed in
  // arrival order, so the expired ones are at the front.
  void expire(Clock::time_point now) {
    for (auto it = proposals.begin(); it != proposals.end() && it->second.deadline <= now;) {
      it->second.done(errc::timeout, {});
      it = proposals.erase(it);
    }
    for (auto it = reads.begin(); it != reads.end() && it->second.deadline <= now;) {
      it->second.done(errc::timeout, {});
      it = reads.erase(it);
    }
    std::erase_if(transfers, [&](PendingTransfer& t) {
      if (t.deadline > now) return false;
      t.done(errc::timeout);
      return true;
    });
  }

  // ---- the Ready cycle ----------------------------------------------------

  void process() {
    while (!stopped && !persisting && raft->has_ready()) {
      auto rd = std::make_shared<core::Ready>(raft->ready());
      for (Message& m : rd->messages) send(std::move(m));
      if (!rd->must_sync()) {
        finish(*rd);
        continue;
      }
      persisting = true;
      persist_started = Clock::now();
      stall_reported = false;
      asio::post(disk, [self = shared_from_this(), rd] {
        std::string what;
        const std::error_code ec = self->persist(*rd, what);
        asio::dispatch(self->strand, [self, rd, ec, what] {
          self->persisting = false;
          if (self->stopped) return;
          if (ec) return self->fail(ec, what);
          self->finish(*rd);
          self->process();
        });
      });
    }
    complete_transfers();
    update_status();
  }

  // On the disk thread. The store is thread-safe; the core reads it meanwhile.
  std::error_code persist(const core::Ready& rd, std::string& what) {
    if (rd.snapshot) {
      if (!options.snapshot_dir.empty()) {
        std::string detail;
        if (auto ec = write_snapshot_file(options.snapshot_dir, *rd.snapshot, rd.snapshot_data, &detail)) {
          what = "writing a received snapshot: " + detail;
          return ec;
        }
      }
      if (auto ec = store->install_snapshot(*rd.snapshot)) return what = "recording a snapshot", ec;
    }
    if (!rd.entries.empty()) {
      if (auto ec = store->append(rd.entries)) return what = "appending entries", ec;
    }
    if (rd.hard_state) {
      if (auto ec = store->save_hard_state(*rd.hard_state)) return what = "saving the hard state", ec;
    }
    if (auto ec = store->sync()) return what = "syncing the log", ec;
    return {};
  }

  void finish(core::Ready& rd) {
    for (Message& m : rd.persisted_messages) send(std::move(m));
    if (rd.snapshot) {
      sm->load_snapshot(rd.snapshot_data);
      snapshot_meta = *rd.snapshot;
      snapshot_data = std::move(rd.snapshot_data);
    }
    for (const Entry& e : rd.committed_entries) apply(e);
    for (const core::ReadState& rs : rd.read_states) {
      auto it = reads.find(rs.context);
      if (it != reads.end()) it->second.index = rs.index;
    }
    for (const core::FailedRead& fr : rd.failed_reads) {
      auto it = reads.find(fr.context);
      if (it == reads.end()) continue;
      it->second.done(errc::not_leader, {});
      reads.erase(it);
    }
    raft->advance(rd);
    serve_reads();
    maybe_snapshot();
  }

  void apply(const Entry& e) {
    Bytes result;
    if (e.type == EntryType::normal && e.index > snapshot_meta.index) result = sm->apply(e);
    auto it = proposals.find(e.index);
    if (it == proposals.end()) return;
    if (it->second.term == e.term) {
      it->second.done({}, std::move(result));
    } else {
      it->second.done(errc::dropped, {});  // another leader's entry took the slot
    }
    proposals.erase(it);
  }

  void serve_reads() {
    const Index applied = raft->applied_index();
    for (auto it = reads.begin(); it != reads.end();) {
      if (it->second.index && *it->second.index <= applied) {
        it->second.done({}, sm->query(it->second.query));
        it = reads.erase(it);
      } else {
        ++it;
      }
    }
  }

  void complete_transfers() {
    if (transfers.empty()) return;
    const NodeId leader = raft->leader();
    std::erase_if(transfers, [&](PendingTransfer& t) {
      if (leader != t.to) return false;
      t.done({});
      return true;
    });
  }

  void maybe_snapshot() {
    if (options.snapshot_interval == 0 || snapshotting) return;
    const Index applied = raft->applied_index();
    if (distance(snapshot_meta.index, applied) < options.snapshot_interval) return;
    const auto term = raft->log().term(applied);
    if (!term) return;
    SnapshotMeta meta{applied, *term, raft->membership()};
    auto data = std::make_shared<Bytes>(sm->save_snapshot());
    snapshotting = true;
    asio::post(disk, [self = shared_from_this(), meta, data] {
      std::string detail;
      std::error_code ec;
      if (!self->options.snapshot_dir.empty()) ec = write_snapshot_file(self->options.snapshot_dir, meta, *data, &detail);
      if (!ec) ec = self->store->install_snapshot(meta);
      if (!ec) ec = self->store->sync();
      asio::dispatch(self->strand, [self, meta, data, ec, detail] {
        self->snapshotting = false;
        if (self->stopped) return;
        if (ec) return self->fail(ec, "taking a snapshot" + (detail.empty() ? "" : ": " + detail));
        self->snapshot_meta = meta;
        self->snapshot_data = std::move(*data);
        self->update_status();
      });
    });
  }

  void send(Message m) {
    if (m.type == MessageType::snapshot) {
      if (!m.snapshot || m.snapshot->index != snapshot_meta.index) return;  // not ours yet: the core retries
      m.snapshot_data = snapshot_data;
    }
    transport->send(std::move(m));
  }

  void update_status() {
    NodeStatus s;
    s.id = options.id;
    if (raft) {
      s.role = stopped ? "stopped" : std::string(core::to_string(raft->role()));
      s.term = raft->term();
      s.leader = stopped ? NodeId{} : raft->leader();
      s.commit = raft->commit_index();
      s.applied = raft->applied_index();
      s.last_index = raft->last_index();
      if (raft->role() == core::Role::leader && !stopped) {
        for (const auto& [id, pr] : raft->progress().map()) {
          if (id == options.id) continue;
          s.peers.push_back({id, pr.match, pr.next, std::string(core::to_string(pr.state)), raft->reachable(id)});
        }
      }
    } else {
      s.role = stopped ? "stopped" : "starting";
    }
    s.snapshot_index = snapshot_meta.index;
    s.failure = failure;
    std::lock_guard lock(status_mu);
    status = std::move(s);
  }
};

Node::Node(asio::any_io_executor executor, Options options, std::shared_ptr<StateMachine> state_machine,
           std::unique_ptr<LogStore> store, std::shared_ptr<Transport> transport)
    : impl_(std::make_shared<Impl>(executor, std::move(options), std::move(state_machine), std::move(store),
                                   std::move(transport))) {
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
  impl->disk.join();  // an in-flight write completes; its completion is dropped
}

NodeStatus Node::status() const {
  std::lock_guard lock(impl_->status_mu);
  return impl_->status;
}

NodeId Node::id() const { return impl_->options.id; }

asio::any_io_executor Node::executor() const { return impl_->executor; }

void Node::propose_impl(Bytes command, ResultHandler done) {
  asio::dispatch(impl_->strand, [impl = impl_, command = std::move(command), done = std::move(done)]() mutable {
    if (!impl->started) return done(errc::shutting_down, {});
    impl->propose(std::move(command), std::move(done));
  });
}

void Node::read_impl(Bytes query, ResultHandler done) {
  asio::dispatch(impl_->strand, [impl = impl_, query = std::move(query), done = std::move(done)]() mutable {
    if (!impl->started) return done(errc::shutting_down, {});
    impl->read(std::move(query), std::move(done));
  });
}

void Node::transfer_impl(NodeId to, DoneHandler done) {
  asio::dispatch(impl_->strand, [impl = impl_, to, done = std::move(done)]() mutable {
    if (!impl->started) return done(errc::shutting_down);
    impl->transfer(to, std::move(done));
  });
}

}  // namespace raftkit

// raftkit-bench-node — one raftkit::Node for raftkit-bench's engine mode
// (or, with --inproc N, a whole cluster of N nodes in this one process over
// the in-process transport).
//
// It is the counterpart of NuRaft's raft_bench: an empty state machine, the
// memory log (or the WAL with --store wal), and on the leader closed-loop
// client threads that call Node::async_propose and wait for each result
// before proposing the next (one outstanding proposal per thread). The
// clients live in the leader's process, so the figures measure the
// replication engine, not a client protocol.
//
// --read-percent P makes P% of the operations linearizable reads
// (Node::async_read, an empty query) instead of proposals, drawn per
// operation. Reads go to the leader; with --inproc and --read-from all,
// client t reads through node t mod N (every node of the cluster), while
// its writes still go to the leader. Reads and writes are timed apart.
//
// Driven by raftkit-bench through stdin and stdout, one line each:
//   out  "ready id=<id> pid=<pid>"          the node (or nodes) started
//   out  "role <role> term <t> leader <id>" whenever this node's role changes
//   in   "load"                             run the load if this node leads
//   out  "window-start" / "window-end"      the measured window (after warm-up)
//   out  "result {json}"                    ops, latency percentiles, errors
// It exits when stdin closes, or on SIGTERM/SIGINT.
//
//   raftkit-bench-node --id 1 --peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003
//   raftkit-bench-node --inproc 3 --store wal --data-dir /tmp/x
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <condition_variable>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/use_future.hpp>
#include <fmt/format.h>

#include "measure.hpp"
#include "raftkit/host.hpp"
#include "raftkit/host_port.hpp"
#include "raftkit/node.hpp"
#include "raftkit/tcp_transport.hpp"
#include "raftkit/wal_store.hpp"

namespace {

using namespace raftkit;
namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

class Sink final : public StateMachine {
 public:
  Bytes apply(const Entry&) override { return {}; }
  Bytes query(BytesView) const override { return {}; }
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override { return std::make_unique<CopiedSnapshot>(Bytes{}); }
  std::error_code restore_snapshot(SnapshotReader&) override { return {}; }
};

struct Config {
  std::uint64_t id = 0;
  std::string peers_text;
  int inproc = 0;
  std::string store = "memory";
  std::string data_dir;
  int tick_ms = 50;
  int election_ticks = 10;
  int heartbeat_ticks = 1;
  std::uint64_t snapshot_interval = 100000;
  std::size_t max_entries_per_append = ProtocolOptions{}.max_entries_per_append;
  std::size_t max_bytes_per_append = ProtocolOptions{}.max_bytes_per_append;
  std::size_t max_inflight_messages = ProtocolOptions{}.max_inflight_messages;
  std::size_t max_inflight_bytes = ProtocolOptions{}.max_inflight_bytes;
  std::size_t max_uncommitted_bytes = ProtocolOptions{}.max_uncommitted_bytes;
  std::size_t send_queue_frames = TcpTransportOptions{}.send_queue_frames;
  std::size_t max_frames_per_write = TcpTransportOptions{}.max_frames_per_write;
  int io_threads = 1;
  int clients = 1;
  double seconds = 10;
  double warmup = 1;
  std::size_t payload = 256;
  bool use_future = false;
  bool async = false;
  int groups = 0;                    // >0: a raftkit::Host per node with this many groups (--inproc only)
  int read_percent = 0;              // share of operations that are linearizable reads
  std::string read_from = "leader";  // leader, or all (--inproc only): where reads go
};

std::mutex g_out_mu;
void say(const std::string& line) {
  std::lock_guard lk(g_out_mu);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

bool parse_peers(const std::string& text, std::map<NodeId, std::string>& out, std::string& error) {
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    const auto eq = item.find('=');
    if (eq == std::string::npos) {
      error = fmt::format("--peers item '{}' is not id=host:port", item);
      return false;
    }
    try {
      out[NodeId{std::stoull(item.substr(0, eq))}] = item.substr(eq + 1);
    } catch (...) {
      error = fmt::format("--peers item '{}' has a bad id", item);
      return false;
    }
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return true;
}

Options node_options(const Config& c, NodeId id, const std::map<NodeId, std::string>& peers) {
  Options o = Options::from_peers(id, peers);
  o.bootstrap = true;  // every run is a new cluster in fresh storage
  o.tick_interval = std::chrono::milliseconds(c.tick_ms);
  o.snapshot_interval = c.snapshot_interval;
  o.max_pending_requests = std::max<std::size_t>(o.max_pending_requests, static_cast<std::size_t>(c.clients) * 2);
  o.protocol.election_ticks = c.election_ticks;
  o.protocol.heartbeat_ticks = c.heartbeat_ticks;
  o.protocol.max_entries_per_append = c.max_entries_per_append;
  o.protocol.max_bytes_per_append = c.max_bytes_per_append;
  o.protocol.max_inflight_messages = c.max_inflight_messages;
  o.protocol.max_inflight_bytes = c.max_inflight_bytes;
  o.protocol.max_uncommitted_bytes = c.max_uncommitted_bytes;
  o.protocol.seed = id.value * 7919 + static_cast<std::uint64_t>(::getpid());
  return o;
}

std::unique_ptr<LogStore> open_store(const Config& c, NodeId id, std::string& error) {
  if (c.store == "memory") return make_memory_store();
  const auto dir = std::filesystem::path(c.data_dir) / fmt::format("node{}", id.value);
  std::error_code fec;
  std::filesystem::create_directories(dir, fec);
  if (fec) {
    error = fmt::format("cannot create {}: {}", dir.string(), fec.message());
    return nullptr;
  }
  std::unique_ptr<LogStore> store;
  std::string detail;
  if (auto ec = open_wal_store(dir.string(), WalOptions{}, store, &detail)) {
    error = fmt::format("cannot open the WAL in {}: {} ({})", dir.string(), ec.message(), detail);
    return nullptr;
  }
  return store;
}

// What run_load reads before and after its window.
struct Counters {
  std::function<TransportStats()> transport;  // the leader's (or the first host's) transport
  std::function<std::uint64_t()> log_syncs;   // hosts: fdatasyncs of their shared logs; none for a Node
};

// Closed-loop clients: client t writes through `writers[t % size]` (the
// leader, or with groups the leader of group t mod N) and reads through
// `readers[t % size]`; prints window-start, window-end, result.
void run_load(const std::vector<Node*>& writers, const std::vector<Node*>& readers, const Counters& counters,
              const Config& c) {
  const Bytes payload(c.payload, 0x42);
  const auto t0 = Clock::now();
  const auto w0 = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.warmup));
  const auto w1 = w0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.seconds));
  const auto n = static_cast<std::size_t>(c.clients);
  std::vector<std::vector<std::uint32_t>> lat(n), read_lat(n);
  std::vector<std::uint64_t> errors(n, 0);
  std::vector<std::string> first_error(n);
  std::vector<std::uint64_t> draw(n);  // per-client xorshift state: which operation comes next
  for (std::size_t t = 0; t < n; ++t) draw[t] = 0x9E3779B97F4A7C15ull * (t + 1);
  const auto next_is_read = [&](std::size_t t) {
    if (c.read_percent <= 0) return false;
    std::uint64_t& x = draw[t];
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return static_cast<int>(x % 100) < c.read_percent;
  };
  // Starts one operation of client t; `done(ec)` runs on the node's executor.
  const auto start_op = [&](std::size_t t, bool read, auto done) {
    if (read) {
      readers[t % readers.size()]->async_read(Bytes{}, [done](boost::system::error_code ec, Response) { done(ec); });
    } else {
      writers[t % writers.size()]->async_propose(payload, [done](boost::system::error_code ec, Response) { done(ec); });
    }
  };
  const auto record = [&](std::size_t t, bool read, boost::system::error_code ec, Clock::time_point start) {
    const auto end = Clock::now();
    if (ec) {
      if (errors[t]++ == 0) first_error[t] = ec.message();
    } else if (end >= w0 && end < w1) {
      (read ? read_lat : lat)[t].push_back(
          static_cast<std::uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(end - start).count()));
    }
  };
  std::vector<std::thread> threads;
  // --async: each client is a chain of callbacks on the node's executor (no
  // thread), proposing again from each completion: many outstanding
  // proposals at the cost of none of the clients' own context switches.
  std::mutex async_mu;
  std::condition_variable async_cv;
  int async_running = c.async ? c.clients : 0;
  std::function<void(std::size_t)> issue = [&](std::size_t t) {
    const auto start = Clock::now();
    if (start >= w1) {
      std::lock_guard lk(async_mu);
      if (--async_running == 0) async_cv.notify_one();
      return;
    }
    const bool read = next_is_read(t);
    start_op(t, read, [&, t, read, start](boost::system::error_code ec) {
      record(t, read, ec, start);
      issue(t);
    });
  };
  for (std::size_t t = 0; t < n; ++t) {
    lat[t].reserve(1 << 16);
    read_lat[t].reserve(c.read_percent > 0 ? 1 << 16 : 0);
  }
  if (c.async)
    for (std::size_t t = 0; t < n; ++t) issue(t);
  for (std::size_t t = 0; t < (c.async ? 0 : n); ++t) {
    threads.emplace_back([&, t] {
      // A mutex and condition variable (not std::binary_semaphore, whose
      // libstdc++ acquire spins on sched_yield and bills the spinning to
      // the benchmark's CPU figure).
      std::mutex mu;
      std::condition_variable cv;
      bool done = false;
      while (true) {
        const auto start = Clock::now();
        if (start >= w1) break;
        const bool read = next_is_read(t);
        boost::system::error_code result;
        if (c.use_future) {
          try {
            if (read)
              readers[t % readers.size()]->async_read(Bytes{}, asio::use_future).get();
            else
              writers[t % writers.size()]->async_propose(payload, asio::use_future).get();
          } catch (const boost::system::system_error& e) {
            result = e.code();
          }
        } else {
          // A plain callback runs on the node's executor and wakes this
          // thread directly: one hand-off, like a blocking client call.
          done = false;
          start_op(t, read, [&](boost::system::error_code ec) {
            std::lock_guard lk(mu);
            result = ec;
            done = true;
            cv.notify_one();
          });
          std::unique_lock lk(mu);
          cv.wait(lk, [&] { return done; });
        }
        record(t, read, result, start);
      }
    });
  }
  std::this_thread::sleep_until(w0);  // the warm-up is part of the measurement plan, not a readiness wait
  const auto s0 = counters.transport();
  const std::uint64_t syncs0 = counters.log_syncs ? counters.log_syncs() : 0;
  say("window-start");
  std::this_thread::sleep_until(w1);
  const auto s1 = counters.transport();
  const std::uint64_t syncs1 = counters.log_syncs ? counters.log_syncs() : 0;
  say("window-end");
  for (auto& th : threads) th.join();
  {
    std::unique_lock lk(async_mu);
    async_cv.wait(lk, [&] { return async_running == 0; });
  }
  std::vector<std::uint32_t> writes, reads, all;
  std::uint64_t errs = 0;
  std::string why;
  for (std::size_t i = 0; i < n; ++i) {
    writes.insert(writes.end(), lat[i].begin(), lat[i].end());
    reads.insert(reads.end(), read_lat[i].begin(), read_lat[i].end());
    errs += errors[i];
    if (why.empty()) why = first_error[i];
  }
  all = writes;
  all.insert(all.end(), reads.begin(), reads.end());
  const auto p = raftkit::bench::percentiles(all);
  const auto pw = raftkit::bench::percentiles(writes);
  const auto pr = raftkit::bench::percentiles(reads);
  raftkit::bench::FlatJson j;
  j.num("ops", static_cast<double>(p.count));
  j.num("seconds", c.seconds);
  j.num("ops_per_s", static_cast<double>(p.count) / c.seconds);
  j.num("p50_us", p.p50);
  j.num("p90_us", p.p90);
  j.num("p99_us", p.p99);
  j.num("p999_us", p.p999);
  j.num("max_us", p.max);
  j.num("mean_us", p.mean);
  j.num("writes", static_cast<double>(pw.count));
  j.num("write_p50_us", pw.p50);
  j.num("write_p99_us", pw.p99);
  j.num("reads", static_cast<double>(pr.count));
  j.num("read_p50_us", pr.p50);
  j.num("read_p99_us", pr.p99);
  j.num("errors", static_cast<double>(errs));
  j.str("first_error", why);
  // The leader's transport counters over the window (messages, not bytes).
  j.num("leader_msgs_sent", static_cast<double>(s1.sent - s0.sent));
  j.num("leader_msgs_received", static_cast<double>(s1.received - s0.received));
  if (counters.log_syncs) j.num("log_syncs_per_s", static_cast<double>(syncs1 - syncs0) / c.seconds);
  say("result " + j.dump());
}

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

}  // namespace

int main(int argc, char** argv) {
  Config c;
  CLI::App app{"raftkit-bench-node: a raftkit node (or an in-process cluster) for raftkit-bench's engine mode"};
  app.add_option("--id", c.id, "this node's id (TCP mode)");
  app.add_option("--peers", c.peers_text, "id=host:port of every node, this one included (TCP mode)");
  app.add_option("--inproc", c.inproc, "run this many nodes in this process over the in-process transport instead")
      ->check(CLI::Range(1, 7));
  app.add_option("--store", c.store, "log store: memory or wal")->check(CLI::IsMember({"memory", "wal"}))
      ->capture_default_str();
  app.add_option("--data-dir", c.data_dir, "directory for the WAL (--store wal)");
  app.add_option("--tick-ms", c.tick_ms, "protocol tick, ms")->capture_default_str()->check(CLI::Range(1, 10000));
  app.add_option("--election-ticks", c.election_ticks, "election timeout base, ticks")->capture_default_str();
  app.add_option("--heartbeat-ticks", c.heartbeat_ticks, "heartbeat interval, ticks")->capture_default_str();
  app.add_option("--snapshot-interval", c.snapshot_interval, "snapshot every this many applied entries (0: never)")
      ->capture_default_str();
  app.add_option("--max-entries-per-append", c.max_entries_per_append)->capture_default_str();
  app.add_option("--max-bytes-per-append", c.max_bytes_per_append)->capture_default_str();
  app.add_option("--max-inflight-messages", c.max_inflight_messages)->capture_default_str();
  app.add_option("--max-inflight-bytes", c.max_inflight_bytes)->capture_default_str();
  app.add_option("--max-uncommitted-bytes", c.max_uncommitted_bytes)->capture_default_str();
  app.add_option("--send-queue-frames", c.send_queue_frames, "TCP transport queue per peer")->capture_default_str();
  app.add_option("--max-frames-per-write", c.max_frames_per_write, "TCP transport write coalescing")
      ->capture_default_str();
  app.add_option("--io-threads", c.io_threads, "threads running the io_context")->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--clients", c.clients, "closed-loop client threads on the leader")->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--seconds", c.seconds, "measured window")->capture_default_str()->check(CLI::Range(0.1, 3600.0));
  app.add_option("--warmup", c.warmup, "seconds of load before the window")->capture_default_str()
      ->check(CLI::Range(0.0, 600.0));
  app.add_option("--payload", c.payload, "bytes per command")->capture_default_str()->check(CLI::Range(1, 8 << 20));
  app.add_flag("--use-future", c.use_future,
               "clients wait with asio::use_future (completion via Asio's system thread pool: one more hand-off) "
               "instead of a callback that wakes the client thread");
  app.add_flag("--async", c.async,
               "clients are callback chains on the node's executor instead of threads (one outstanding "
               "proposal each)");
  app.add_option("--groups", c.groups,
                 "run a raftkit::Host per node with this many groups (--inproc only; with --store wal one shared log "
                 "per host); client t writes to the leader of group t mod N")
      ->capture_default_str()->check(CLI::Range(0, 100000));
  app.add_option("--read-percent", c.read_percent, "share of operations that are linearizable reads, %")
      ->capture_default_str()->check(CLI::Range(0, 100));
  app.add_option("--read-from", c.read_from, "where reads go: leader, or all (every node; --inproc only)")
      ->capture_default_str()->check(CLI::IsMember({"leader", "all"}));
  CLI11_PARSE(app, argc, argv);

  auto fail = [](const std::string& m) {
    fmt::print(stderr, "raftkit-bench-node: error: {}\n", m);
    return 2;
  };
  if (c.read_from == "all" && c.inproc == 0)
    return fail("--read-from all needs --inproc (the clients live in one process)");
  if (c.store == "wal" && c.data_dir.empty()) return fail("--store wal needs --data-dir");
  if (c.groups > 0 && c.inproc == 0) return fail("--groups needs --inproc (the clients live in one process)");
  if (c.groups > 0 && c.read_from == "all") return fail("--groups reads through each group's leader");

  std::map<NodeId, std::string> peers;
  std::vector<NodeId> local_ids;
  std::string error;
  if (c.inproc > 0) {
    for (int i = 1; i <= c.inproc; ++i) {
      peers[NodeId{static_cast<std::uint64_t>(i)}] = fmt::format("inproc:{}", i);
      local_ids.push_back(NodeId{static_cast<std::uint64_t>(i)});
    }
  } else {
    if (c.id == 0 || c.peers_text.empty()) return fail("give --id and --peers, or --inproc N");
    if (!parse_peers(c.peers_text, peers, error)) return fail(error);
    if (!peers.contains(NodeId{c.id})) return fail("--peers must include --id");
    local_ids.push_back(NodeId{c.id});
  }

  asio::io_context io(c.io_threads);
  auto work = asio::make_work_guard(io);
  std::shared_ptr<InprocNetwork> hub = c.inproc > 0 ? make_inproc_network() : nullptr;
  std::vector<std::unique_ptr<Node>> nodes;
  std::vector<std::shared_ptr<Transport>> transports;  // transports[i] is nodes[i]'s (or hosts[i]'s)
  std::vector<std::unique_ptr<Host>> hosts;              // --groups: one per node id
  std::vector<std::vector<std::shared_ptr<Node>>> group_nodes(static_cast<std::size_t>(c.groups));  // [g-1][host]
  for (auto id : c.groups > 0 ? local_ids : std::vector<NodeId>{}) {
    HostOptions ho;
    ho.id = id;
    if (c.store == "wal") ho.data_dir = (std::filesystem::path(c.data_dir) / fmt::format("host{}", id.value)).string();
    transports.push_back(hub->make_transport(id, io.get_executor()));
    hosts.push_back(std::make_unique<Host>(io.get_executor(), ho, transports.back()));
    std::string detail;
    if (auto ec = hosts.back()->start(&detail)) return fail(fmt::format("host {} did not start: {}", id.value, detail));
    for (int g = 1; g <= c.groups; ++g) {
      Options o = node_options(c, id, peers);
      o.cluster_id = "raftkit-bench";
      o.protocol.seed += static_cast<std::uint64_t>(g) * 104729;
      std::shared_ptr<Node> node;
      if (auto ec = hosts.back()->start_group(static_cast<GroupId>(g), o, std::make_shared<Sink>(), node))
        return fail(fmt::format("group {} on host {} did not start: {}", g, id.value, ec.message()));
      group_nodes[static_cast<std::size_t>(g - 1)].push_back(std::move(node));
    }
  }
  // The leader of every group, or none while one has none.
  const auto group_leaders = [&]() -> std::optional<std::vector<Node*>> {
    std::vector<Node*> out;
    for (auto& members : group_nodes) {
      Node* lead = nullptr;
      for (auto& n : members)
        if (n->status().role == NodeRole::leader) lead = n.get();
      if (!lead) return std::nullopt;
      out.push_back(lead);
    }
    return out;
  };
  for (auto id : c.groups > 0 ? std::vector<NodeId>{} : local_ids) {
    auto store = open_store(c, id, error);
    if (!store) return fail(error);
    std::shared_ptr<Transport> transport;
    if (hub) {
      transport = hub->make_transport(id, io.get_executor());
    } else {
      TcpTransportOptions t;
      t.self = id;
      t.cluster_id = "raftkit-bench";
      const auto& self = peers.at(id);
      const auto listen = parse_host_port(self).value();  // throws on a malformed address, as stoul did
      t.listen_host = listen.host;
      t.listen_port = listen.port;
      for (auto& [pid, addr] : peers)
        if (pid != id) t.peers.emplace(pid, addr);
      t.send_queue_frames = c.send_queue_frames;
      t.max_frames_per_write = c.max_frames_per_write;
      transport = make_tcp_transport(io.get_executor(), t);
    }
    Options o = node_options(c, id, peers);
    o.cluster_id = "raftkit-bench";
    if (auto m = o.validate(); !m.empty()) return fail(m);
    transports.push_back(transport);
    nodes.push_back(std::make_unique<Node>(io.get_executor(), o, std::make_shared<Sink>(), std::move(store),
                                           std::move(transport)));
    if (auto ec = nodes.back()->start()) return fail(fmt::format("node {} did not start: {}", id.value, ec.message()));
  }
  std::vector<std::thread> io_threads;
  for (int t = 0; t < c.io_threads; ++t) io_threads.emplace_back([&] { io.run(); });

  ::signal(SIGTERM, on_signal);
  ::signal(SIGINT, on_signal);
  ::signal(SIGPIPE, SIG_IGN);
  say(fmt::format("ready id={} pid={}", c.inproc > 0 ? 0 : c.id, ::getpid()));

  // Role monitor: reports this process's leader, if any, on every change.
  std::atomic<Node*> leader{nullptr};
  std::thread monitor([&] {
    std::string last;
    while (!g_stop) {
      Node* lead = nullptr;
      std::string line = "role follower";
      if (c.groups > 0 && group_leaders()) line = fmt::format("role leader groups {}", c.groups);
      for (auto& n : nodes) {
        const auto st = n->status();
        if (st.role == NodeRole::leader) {
          lead = n.get();
          line = fmt::format("role leader term {} leader {}", st.term.value, st.id.value);
        } else if (nodes.size() == 1) {
          line = fmt::format("role {} term {} leader {}", st.role, st.term.value, st.leader.value);
        }
      }
      leader = lead;
      if (line != last) say(line);
      last = line;
      // Polling the node's status is how a process outside the library
      // learns its role; every 20 ms, so the poll costs the figures nothing.
      // With groups, a poll copies the status of every group on every host:
      // once each has a leader, once a second is enough.
      std::this_thread::sleep_for(std::chrono::milliseconds(c.groups > 0 && line.rfind("role leader", 0) == 0 ? 1000 : 20));
    }
  });

  std::thread input([&] {
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line == "load" && c.groups > 0) {
        const auto leaders = group_leaders();
        if (!leaders) {
          say("result {\"error\": \"a group has no leader\"}");
          continue;
        }
        Counters counters{[&] { return transports[0]->stats(); }, [&] {
                            std::uint64_t n = 0;
                            for (auto& h : hosts) n += h->stats().log_syncs;
                            return n;
                          }};
        run_load(*leaders, *leaders, counters, c);
      } else if (line == "load") {
        Node* lead = leader.load();
        if (!lead) {
          say("result {\"error\": \"not the leader\"}");
          continue;
        }
        std::size_t i = 0;
        while (nodes[i].get() != lead) ++i;
        std::vector<Node*> readers{lead};
        if (c.read_from == "all") {
          readers.clear();
          for (auto& node : nodes) readers.push_back(node.get());
        }
        run_load({lead}, readers, Counters{[&, i] { return transports[i]->stats(); }, {}}, c);
      }
    }
    g_stop = true;
  });
  input.detach();  // blocked in read(2) until stdin closes; the process exits without joining it

  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  monitor.join();
  for (auto& n : nodes) n->stop();
  for (auto& h : hosts) h->stop();
  work.reset();
  io.stop();
  for (auto& t : io_threads) t.join();
  std::fflush(stdout);
  ::_exit(0);
}

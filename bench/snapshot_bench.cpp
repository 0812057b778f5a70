// Snapshot benchmarks: streaming a large snapshot over TCP, and proposal
// latency while a large state is being snapshotted.
//
// transfer  Two TCP transports in one process, each on its own thread and
//           io_context, on loopback: a snapshot message of --mib MiB goes
//           from node 1 to node 2 as chunk frames (1 MiB, window 4) and is
//           reassembled and checksummed there. Reported: time from send() to
//           the receiver's delivery and to the sender's "delivered" status,
//           and the rate, per round and median.
// latency   One raftkit::Node (in-process transport, WAL in a temporary
//           directory, snapshot files beside it) whose state machine holds
//           --mib MiB in 64 KiB chunks. --clients threads propose 16-byte
//           writes (8 bytes at a random position) back to back for
//           --seconds; a snapshot is taken every --interval entries, and
//           every proposal that starts between a capture and its file being
//           durable counts as "during", the others as "without" (so both
//           see the same background load). The capture is copy-on-write (--capture cow: the
//           capture shares the chunks; a write copies a shared chunk first)
//           or a full copy on the strand (--capture copy).
//
//   build/bench/bench_snapshot [--mode transfer|latency|both] [--mib 256] [--rounds 3]
//                              [--clients 4] [--capture cow|copy] [--log wal|memory]
//                              [--seconds 20] [--interval 20000] [--rate-mib 0] [--dir /tmp]
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <fmt/format.h>

#include "bench_stats.hpp"
#include "raftkit/node.hpp"
#include "raftkit/tcp_transport.hpp"
#include "raftkit/wal_store.hpp"

namespace {

using namespace raftkit;
using namespace std::chrono_literals;
namespace asio = boost::asio;
using raftkit::bench::ms;
using raftkit::bench::percentile;
using Clock = std::chrono::steady_clock;

struct Args {
  std::string mode = "both";
  std::size_t mib = 256;
  int rounds = 3;
  int clients = 4;
  std::string capture = "cow";
  std::string log = "wal";
  int seconds = 20;
  std::uint64_t rate_mib = 0;
  std::uint64_t interval = 20000;
  std::string dir = std::filesystem::temp_directory_path().string();
};

// ---- transfer ---------------------------------------------------------------

void bench_transfer(const Args& a) {
  asio::io_context io1, io2;
  auto w1 = asio::make_work_guard(io1);
  auto w2 = asio::make_work_guard(io2);
  auto options = [](std::uint64_t id) {
    TcpTransportOptions o;
    o.self = NodeId{id};
    o.cluster_id = "bench";
    o.logger = Logger::discard();
    o.max_snapshot_bytes = std::uint64_t{64} << 30;
    return o;
  };
  auto t1 = make_tcp_transport(io1.get_executor(), options(1));
  auto t2 = make_tcp_transport(io2.get_executor(), options(2));
  std::mutex mu;
  std::condition_variable cv;
  Clock::time_point delivered_at{}, acked_at{};
  bool delivered = false, acked = false, acked_ok = false;
  std::size_t delivered_bytes = 0;
  t1->set_snapshot_status_handler([&](NodeId, GroupId, bool ok) {
    std::lock_guard l(mu);
    acked = true;
    acked_ok = ok;
    acked_at = Clock::now();
    cv.notify_all();
  });
  if (t1->start([](Message) {}) || t2->start([&](Message m) {
        std::lock_guard l(mu);
        delivered = true;
        delivered_bytes = m.snapshot_data.size();
        delivered_at = Clock::now();
        cv.notify_all();
      })) {
    fmt::print("cannot start the transports\n");
    std::exit(1);
  }
  t1->set_peer(NodeId{2}, fmt::format("127.0.0.1:{}", t2->local_port()));
  t2->set_peer(NodeId{1}, fmt::format("127.0.0.1:{}", t1->local_port()));
  std::thread th1([&] { io1.run(); });
  std::thread th2([&] { io2.run(); });

  const std::size_t size = a.mib << 20;
  Message m;
  m.type = MessageType::snapshot;
  m.from = NodeId{1};
  m.to = NodeId{2};
  m.term = Term{1};
  m.snapshot = SnapshotMeta{Index{1000}, Term{1}, {{NodeId{1}, NodeId{2}}, {}, {}, {}, {}, {}, {}}};
  m.snapshot_data.resize(size);
  std::mt19937_64 rng(1);
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    const std::uint64_t v = rng();
    std::memcpy(m.snapshot_data.data() + i, &v, 8);
  }
  std::vector<double> rates, deliver_ms, ack_ms;
  for (int r = 0; r < a.rounds; ++r) {
    {
      std::lock_guard l(mu);
      delivered = acked = false;
    }
    Message copy = m;  // the copy is the caller's, as the driver's is
    const auto start = Clock::now();
    t1->send(std::move(copy));
    std::unique_lock l(mu);
    if (!cv.wait_for(l, 120s, [&] { return delivered && acked; })) {
      fmt::print("round {}: no delivery within 120 s\n", r + 1);
      std::exit(1);
    }
    if (!acked_ok || delivered_bytes != size) {
      fmt::print("round {}: transfer failed\n", r + 1);
      std::exit(1);
    }
    const double d = ms(delivered_at - start), k = ms(acked_at - start);
    deliver_ms.push_back(d);
    ack_ms.push_back(k);
    rates.push_back(static_cast<double>(a.mib) / (d / 1000.0));
    fmt::print("transfer round {}: {} MiB delivered in {:.0f} ms ({:.0f} MiB/s), sender told in {:.0f} ms\n", r + 1,
               a.mib, d, rates.back(), k);
  }
  fmt::print("transfer: {} MiB over loopback TCP, plaintext, 1 MiB chunks, window 4: median {:.0f} ms, {:.0f} MiB/s "
             "(sender told after {:.0f} ms)\n",
             a.mib, percentile(deliver_ms, 0.5), percentile(rates, 0.5), percentile(ack_ms, 0.5));
  t1->stop();
  t2->stop();
  w1.reset();
  w2.reset();
  io1.stop();
  io2.stop();
  th1.join();
  th2.join();
}

// ---- latency ----------------------------------------------------------------

constexpr std::size_t kChunk = 64 << 10;

// The state: --mib MiB in 64 KiB chunks. Copy-on-write: a capture shares the
// chunks, and apply copies a chunk the capture still shares before writing.
class BigState final : public StateMachine {
 public:
  BigState(std::size_t bytes, bool cow) : cow_(cow) {
    chunks_.reserve(bytes / kChunk);
    for (std::size_t i = 0; i < bytes / kChunk; ++i) {
      auto c = std::make_shared<Bytes>(kChunk);
      std::memset(c->data(), static_cast<int>(i), kChunk);
      chunks_.push_back(std::move(c));
    }
  }
  Bytes apply(const Entry& e) override {
    if (e.payload.size() != 16) return {};
    std::uint64_t pos = 0;
    std::memcpy(&pos, e.payload.data(), 8);
    pos = (pos % (chunks_.size() * kChunk)) & ~std::uint64_t{7};
    auto& chunk = chunks_[pos / kChunk];
    if (chunk.use_count() > 1) {
      chunk = std::make_shared<Bytes>(*chunk);  // shared with a capture: copy before writing
    } else {
      std::atomic_thread_fence(std::memory_order_acquire);  // the capture that held it is done reading
    }
    std::memcpy(chunk->data() + pos % kChunk, e.payload.data() + 8, 8);
    return {};
  }
  Bytes query(BytesView) const override { return {}; }

  class Capture final : public SnapshotCapture {
   public:
    explicit Capture(std::vector<std::shared_ptr<Bytes>> chunks) : chunks_(std::move(chunks)) {}
    std::error_code write_to(SnapshotWriter& out) override {
      for (const auto& c : chunks_)
        if (auto ec = out.write(*c)) return ec;
      return {};
    }

   private:
    std::vector<std::shared_ptr<Bytes>> chunks_;
  };
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override {
    if (cow_) return std::make_unique<Capture>(chunks_);  // 4096 pointers for 256 MiB
    std::vector<std::shared_ptr<Bytes>> copy;
    copy.reserve(chunks_.size());
    for (const auto& c : chunks_) copy.push_back(std::make_shared<Bytes>(*c));
    return std::make_unique<Capture>(std::move(copy));
  }
  std::error_code restore_snapshot(SnapshotReader& in) override {
    if (in.remaining() % kChunk != 0) return errc::corrupted;
    std::vector<std::shared_ptr<Bytes>> chunks;
    while (in.remaining() > 0) {
      auto c = std::make_shared<Bytes>(kChunk);
      if (auto ec = in.read_exact(*c)) return ec;
      chunks.push_back(std::move(c));
    }
    chunks_ = std::move(chunks);
    return {};
  }

 private:
  std::vector<std::shared_ptr<Bytes>> chunks_;
  bool cow_;
};

void bench_latency(const Args& a) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(a.dir) / fmt::format("raftkit-snapshot-bench-{}", ::getpid());
  fs::remove_all(dir);
  fs::create_directories(dir);
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::map<NodeId, std::string> peers{{NodeId{1}, "inproc:1"}};
  Options o = Options::from_peers(NodeId{1}, peers);
  o.bootstrap = true;
  o.logger = Logger::discard();
  o.snapshot_dir = (dir / "snap").string();
  o.snapshot_interval_bytes = 0;
  o.snapshot_trailing_entries = 0;
  o.snapshot_interval = a.interval;
  o.snapshot_write_bytes_per_second = a.rate_mib << 20;
  std::unique_ptr<LogStore> store;
  std::string detail;
  if (a.log == "memory") {
    store = make_memory_store();
  } else if (open_wal_store((dir / "wal").string(), {}, store, &detail)) {
    fmt::print("cannot open the WAL: {}\n", detail);
    std::exit(1);
  }
  auto net = make_inproc_network();
  auto machine = std::make_shared<BigState>(a.mib << 20, a.capture == "cow");
  Node node(io.get_executor(), o, machine, std::move(store), net->make_transport(NodeId{1}, io.get_executor()));
  if (node.start()) std::exit(1);
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) threads.emplace_back([&] { io.run(); });
  while (node.status().role != NodeRole::leader) std::this_thread::sleep_for(1ms);  // polling

  // Snapshot windows, from the metrics: a capture counted opens one, a save
  // counted closes it (polled every 200 us).
  struct Window {
    std::int64_t start = 0, end = 0;  // Clock ns
  };
  std::mutex wmu;
  std::vector<Window> windows;
  std::atomic<bool> done{false};
  std::thread monitor([&] {
    std::uint64_t captures = 0, saves = 0;
    while (!done) {
      const MetricsSnapshot m = node.metrics();
      const auto now = Clock::now().time_since_epoch().count();
      std::lock_guard l(wmu);
      if (m.snapshot_capture_us.count > captures) {
        captures = m.snapshot_capture_us.count;
        windows.push_back({now, 0});
      }
      if (m.snapshot_save_us.count > saves) {
        saves = m.snapshot_save_us.count;
        if (!windows.empty() && windows.back().end == 0) windows.back().end = now;
      }
      std::this_thread::sleep_for(200us);  // polling interval
    }
  });

  struct Sample {
    std::int64_t start;
    double ms;
  };
  std::mutex mu;
  std::vector<Sample> samples;
  std::vector<std::thread> clients;
  for (int c = 0; c < a.clients; ++c) {
    clients.emplace_back([&, c] {
      std::mt19937_64 rng(static_cast<std::uint64_t>(c) + 7);
      std::vector<Sample> mine;
      while (!done) {
        Bytes cmd(16);
        const std::uint64_t pos = rng(), val = rng();
        std::memcpy(cmd.data(), &pos, 8);
        std::memcpy(cmd.data() + 8, &val, 8);
        auto p = std::make_shared<std::promise<std::error_code>>();
        auto f = p->get_future();
        const auto start = Clock::now();
        node.async_propose(std::move(cmd), [p](boost::system::error_code ec, Response) { p->set_value(ec); });
        const std::error_code ec = f.get();
        if (ec) continue;
        mine.push_back({start.time_since_epoch().count(), ms(Clock::now() - start)});
      }
      std::lock_guard l(mu);
      samples.insert(samples.end(), mine.begin(), mine.end());
    });
  }
  const auto began = Clock::now();
  while (Clock::now() - began < std::chrono::seconds(a.seconds)) std::this_thread::sleep_for(10ms);
  done = true;
  for (auto& t : clients) t.join();
  monitor.join();

  // A proposal started inside a window ran during a snapshot; the others
  // (the first second excepted: warm-up) ran without one.
  const auto warm = (began + 1s).time_since_epoch().count();
  std::vector<double> without, during;
  for (const Sample& s : samples) {
    bool in = false;
    for (const Window& w : windows) in = in || (s.start >= w.start && (w.end == 0 || s.start <= w.end));
    if (in)
      during.push_back(s.ms);
    else if (s.start >= warm)
      without.push_back(s.ms);
  }
  const MetricsSnapshot m = node.metrics();
  std::vector<double> window_ms;
  for (const Window& w : windows)
    if (w.end) window_ms.push_back(static_cast<double>(w.end - w.start) / 1e6);
  fmt::print("latency: {} MiB state, {} capture, {} clients, log: {}, files in {}, 16-byte writes, {} s, snapshot "
             "every {} entries, snapshot writes {}\n",
             a.mib, a.capture, a.clients, a.log == "memory" ? "memory" : "WAL", a.dir, a.seconds, a.interval,
             a.rate_mib ? fmt::format("at most {} MiB/s", a.rate_mib) : std::string("unbounded"));
  fmt::print("  snapshots: {}; capture on the strand: mean {:.3f} ms; serialise+write+fsync off the strand: mean "
             "{:.0f} ms; {:.0f} MiB each\n",
             m.snapshot_capture_us.count, m.snapshot_capture_us.count ? m.snapshot_capture_us.sum / 1000.0 / static_cast<double>(m.snapshot_capture_us.count) : 0.0,
             m.snapshot_save_us.count ? m.snapshot_save_us.sum / 1000.0 / static_cast<double>(m.snapshot_save_us.count) : 0.0,
             m.snapshot_bytes.count ? static_cast<double>(m.snapshot_bytes.sum) / static_cast<double>(m.snapshot_bytes.count) / (1 << 20) : 0.0);
  fmt::print("  without a snapshot:   {:6} proposals, p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n", without.size(),
             percentile(without, 0.5), percentile(without, 0.99), percentile(without, 1.0));
  fmt::print("  during a snapshot:    {:6} proposals, p50 {:.2f} ms, p99 {:.2f} ms, max {:.2f} ms\n", during.size(),
             percentile(during, 0.5), percentile(during, 0.99), percentile(during, 1.0));
  if (!without.empty() && !during.empty())
    fmt::print("  p99 during / without: {:.2f}x\n", percentile(during, 0.99) / percentile(without, 0.99));
  node.stop();
  work.reset();
  io.stop();
  for (auto& t : threads) t.join();
  fs::remove_all(dir);
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  std::string cmd = "build/bench/bench_snapshot";
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        fmt::print("{} needs a value\n", k);
        std::exit(2);
      }
      return argv[++i];
    };
    if (k == "--mode") a.mode = next();
    else if (k == "--mib") a.mib = std::stoul(next());
    else if (k == "--rounds") a.rounds = std::stoi(next());
    else if (k == "--clients") a.clients = std::stoi(next());
    else if (k == "--capture") a.capture = next();
    else if (k == "--dir") a.dir = next();
    else if (k == "--log") a.log = next();
    else if (k == "--seconds") a.seconds = std::stoi(next());
    else if (k == "--rate-mib") a.rate_mib = std::stoull(next());
    else if (k == "--interval") a.interval = std::stoull(next());
    else {
      fmt::print("usage: bench_snapshot [--mode transfer|latency|both] [--mib N] [--rounds N] [--clients N] "
                 "[--capture cow|copy] [--log wal|memory] [--seconds S] [--interval ENTRIES] [--rate-mib R] [--dir D]\n");
      return 2;
    }
  }
  for (int i = 1; i < argc; ++i) cmd += std::string(" ") + argv[i];
  fmt::print("# {}\n", cmd);
  if (a.mode == "transfer" || a.mode == "both") bench_transfer(a);
  if (a.mode == "latency" || a.mode == "both") bench_latency(a);
  return 0;
}

// Issue 24, a full disk, with real processes: node 3's data directory is a
// 16 MiB tmpfs, filled by a filler file while clients increment the counter.
// Node 3, the leader then, must step down, say so (status, its diagnosis,
// the raftkit_disk_full gauge), refuse increments with no_space, lead
// nothing, and keep running; the
// other two are a quorum and keep serving. Once the filler is removed node 3
// resumes by itself (no restart) and catches up, and every acknowledged
// increment is in the final value.
//
// Mounting needs root (CAP_SYS_ADMIN), as CI runs it: without it the test
// fails and says why; it never passes without having filled a disk.
#include <catch2/catch.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/mount.h>
#include <unistd.h>

#include "client.hpp"
#include "http_client.hpp"
#include "integration_support.hpp"
#include "local_cluster.hpp"
#include "prometheus_text.hpp"

namespace {

using namespace raftkit::counter;
using namespace raftkit::integration;

// A size-limited tmpfs mounted at `dir` while this lives. Unmounted lazily
// (MNT_DETACH) on every path out of the test: a server may still hold files.
class TmpfsMount {
 public:
  TmpfsMount(std::string dir, const std::string& size) : dir_(std::move(dir)) {
    std::error_code ec;
    std::filesystem::create_directories(dir_, ec);
    if (ec) {
      error_ = fmt::format("cannot create {}: {}", dir_, ec.message());
      return;
    }
    const std::string data = "size=" + size + ",mode=0700";
    if (::mount("tmpfs", dir_.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, data.c_str()) != 0) {
      error_ = fmt::format("mount -t tmpfs -o {} tmpfs {} failed: {} (this test needs root, CAP_SYS_ADMIN)", data,
                           dir_, std::strerror(errno));
      return;
    }
    mounted_ = true;
  }
  ~TmpfsMount() {
    if (mounted_) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  TmpfsMount(const TmpfsMount&) = delete;
  TmpfsMount& operator=(const TmpfsMount&) = delete;
  bool mounted() const { return mounted_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  bool mounted_ = false;
  std::string error_;
};

// Writes `path` until the file system is full (ENOSPC). Returns the bytes
// written; `error` is set on any other failure.
std::uint64_t fill(const std::string& path, std::string& error) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = fmt::format("open {}: {}", path, std::strerror(errno));
    return 0;
  }
  const std::vector<char> chunk(64 << 10, 'x');
  std::uint64_t total = 0;
  for (;;) {
    const ssize_t n = ::write(fd, chunk.data(), chunk.size());
    if (n > 0) {
      total += static_cast<std::uint64_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno != ENOSPC) error = fmt::format("write {}: {}", path, std::strerror(errno));
    break;
  }
  ::close(fd);
  return total;
}

// Clients incrementing by 1 on their own threads until destroyed; every
// outcome counted.
class Load {
 public:
  Load(const ClientOptions& options, int threads) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, options] {
        Client client(options);
        while (!stop_) {
          const Result r = client.incr(1);
          (r.outcome == Outcome::ok ? ok : r.outcome == Outcome::unknown ? unknown : failed)++;
        }
      });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }
  std::atomic<std::int64_t> ok{0}, unknown{0}, failed{0};

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

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

// raftkit_disk_full on the node's /metrics, or -1 if it cannot be read.
double disk_full_gauge(std::uint16_t port) {
  std::string error;
  auto r = raftkit::examples::http_request(fmt::format("127.0.0.1:{}", port), "GET", "/metrics", "", T(3000), error);
  if (!r || r->status != 200) return -1;
  auto text = raftkit::examples::parse_prometheus_text(r->body, error);
  if (!text) return -1;
  return text->value("raftkit_disk_full").value_or(-1);
}

}  // namespace

TEST_CASE("a full disk: the node refuses, says so, the others serve, it resumes by itself; no acknowledged "
          "increment is lost",
          "[integration][disk]") {
  constexpr std::uint64_t kFull = 3;
  const auto ports = free_ports(3);
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_COUNTER_SERVER;
  o.client_binary = RAFTKIT_COUNTER_CLIENT;
  o.nodes = 3;
  o.request_timeout_ms = static_cast<int>(T(2000).count());
  o.snapshot_interval = 3000;  // a snapshot save meets the full disk too
  o.cluster_id = "integration";
  // Small segments: a segment is zero-filled ahead of its records up to its
  // size, so the full disk is met at the next segment, within seconds.
  o.extra_server_args = {"--wal-segment-bytes", "16384"};
  o.server_args = [ports](std::uint64_t id) {
    return std::vector<std::string>{"--metrics-port", std::to_string(ports.at(id))};
  };
  LocalCluster c(o);
  NoSanitizerReports guard{c};
  const std::string data_dir = c.directory() + fmt::format("/node{}", kFull);
  TmpfsMount tmpfs(data_dir, "16m");
  if (!tmpfs.mounted()) FAIL(tmpfs.error());
  std::string err;
  INFO(err);
  REQUIRE(c.start_all(T(15000), err));
  INFO(outputs(c));
  REQUIRE(c.wait_for_leader(T(10000)));

  ClientOptions co = c.client_options("writer");
  co.call_timeout = T(10000);
  Load load(co, 3);
  REQUIRE(LocalCluster::wait_until([&] { return load.ok >= 100; }, T(20000)));

  // Node 3 leads when its disk fills: it must step down, and the others take over.
  REQUIRE(LocalCluster::wait_until([&] {
    if (Client(c.client_options("admin")).transfer_leader(kFull).outcome != Outcome::ok) return false;
    auto s = c.status(kFull, T(2000));
    return s && s->role == "leader";
  }, T(20000)));

  const std::string filler = data_dir + "/filler";
  const std::uint64_t filled = fill(filler, err);
  REQUIRE(err.empty());
  fmt::print("disk full: wrote {} KiB of filler into node {}'s 16 MiB tmpfs\n", filled >> 10, kFull);
  REQUIRE(LocalCluster::wait_until([&] {
    auto s = c.status(kFull, T(2000));
    return s && s->disk_full;
  }, T(30000)));
  const auto full_status = c.status(kFull, T(2000));
  REQUIRE(full_status);
  CHECK(full_status->role != "leader");
  CHECK(full_status->role != "stopped");
  CHECK(full_status->diagnosis.starts_with("disk full for "));
  CHECK(disk_full_gauge(ports.at(kFull)) == 1);
  CHECK(c.output_tail(kFull, 400).find("stepping down as leader") != std::string::npos);

  // It refuses increments itself (nothing was done: "failed"), ...
  ClientOptions only_full = co;
  only_full.servers = {c.client_address(kFull)};
  only_full.call_timeout = T(1500);
  const Result refused = Client(only_full).incr(1000000);
  CHECK(refused.outcome == Outcome::failed);
  CHECK(refused.message.find("no space left on device") != std::string::npos);
  // ... while the other two, a quorum, keep committing.
  const std::int64_t ok_when_full = load.ok;
  REQUIRE(LocalCluster::wait_until([&] { return load.ok >= ok_when_full + 100; }, T(20000)));
  const auto still = c.status(kFull, T(2000));
  REQUIRE(still);
  CHECK(still->disk_full);
  CHECK(still->role != "leader");

  std::filesystem::remove(filler);
  REQUIRE(LocalCluster::wait_until([&] {
    auto s = c.status(kFull, T(2000));
    return s && !s->disk_full;
  }, T(30000)));
  CHECK(disk_full_gauge(ports.at(kFull)) == 0);
  const std::int64_t ok_when_freed = load.ok;
  REQUIRE(LocalCluster::wait_until([&] { return load.ok >= ok_when_freed + 100; }, T(20000)));
  load.stop();
  fmt::print("disk full: {} increments acknowledged, {} unknown, {} failed\n", load.ok.load(), load.unknown.load(),
             load.failed.load());

  // Every acknowledged increment is there, on every node, node 3 included.
  const auto leader = c.wait_for_leader(T(10000));
  REQUIRE(leader);
  const Result total = Client(co).get();
  REQUIRE(total.outcome == Outcome::ok);
  CHECK(total.value >= load.ok);
  CHECK(total.value <= load.ok + load.unknown);
  for (std::uint64_t id : {1, 2, 3}) {
    INFO("node " << id);
    CHECK(LocalCluster::wait_until([&] {
      auto s = c.status(id, T(2000));
      return s && s->value == total.value && s->diagnosis.empty();
    }, T(20000)));
  }
}

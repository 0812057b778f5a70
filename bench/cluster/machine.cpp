// bench/cluster/machine.cpp — `raftkit-bench machine`: this machine's floors (wake-up, synced append).
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "child.hpp"
#include "client.hpp"
#include "local_cluster.hpp"
#include "measure.hpp"
#include "bench_tools.hpp"
#include "raftkit/host_port.hpp"

namespace raftkit::bench::tools {

int run_machine(const Common& c) {
  const std::string dir = c.work_dir.empty() ? std::filesystem::temp_directory_path().string() : c.work_dir;
  std::string error;
  const auto f = measure_floors(dir, error);
  if (!f) {
    fmt::print(stderr, "raftkit-bench machine: {}\n", error);
    return 1;
  }
  const double round = f->synced_append_us + 3 * f->wakeup_round_trip_us;
  fmt::print(
      "machine: {}\n"
      "  wake-up round trip, two processes (socketpair, median of 2000)  {:8.1f} us\n"
      "  synced 256 B append, preallocated file (median of 500)          {:8.1f} us   (in {})\n"
      "  floor of one closed-loop round of a 3-node cluster with a synced log\n"
      "    (one synced append + ~6 hand-offs = 3 round trips)             {:8.1f} us\n"
      "  so at most {:.0f} rounds/s, and k closed-loop clients at most k x that ops/s\n",
      machine_line(), f->wakeup_round_trip_us, f->synced_append_us, dir, round, 1e6 / round);
  return 0;
}

}  // namespace raftkit::bench::tools

// bench/cluster/compare.cpp — `raftkit-bench compare A.json B.json`: ratios B/A of every figure.
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

int run_compare(const std::string& a_path, const std::string& b_path) {
  auto load = [](const std::string& p) -> std::optional<FlatJson> {
    std::ifstream f(p);
    if (!f) {
      fmt::print(stderr, "raftkit-bench: cannot read {}\n", p);
      return std::nullopt;
    }
    std::stringstream ss;
    ss << f.rdbuf();
    std::string err;
    auto j = FlatJson::parse(ss.str(), err);
    if (!j) fmt::print(stderr, "raftkit-bench: {} is not a raftkit-bench JSON result: {}\n", p, err);
    return j;
  };
  auto a = load(a_path), b = load(b_path);
  if (!a || !b) return 1;
  fmt::print("A = {} ({} {})\nB = {} ({} {})\n", a_path, a->string("mode").value_or("?"),
             a->string("label").value_or(""), b_path, b->string("mode").value_or("?"),
             b->string("label").value_or(""));
  fmt::print("{:<28} {:>14} {:>14} {:>10}\n", "figure", "A", "B", "B/A");
  for (auto& [k, v] : a->fields) {
    auto x = a->number(k);
    auto y = b->number(k);
    if (!x || !y) continue;
    fmt::print("{:<28} {:>14.1f} {:>14.1f} {:>10}\n", k, *x, *y, *x != 0 ? fmt::format("{:.2f}", *y / *x) : "-");
  }
  return 0;
}

}  // namespace raftkit::bench::tools

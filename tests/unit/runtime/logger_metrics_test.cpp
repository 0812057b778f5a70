// raftkit::Logger, raftkit::MetricsRegistry and to_prometheus(): the
// observability surface a service wires into its own logging and
// monitoring. The exposition is checked by parsing it back with an
// independent reader (examples/common/prometheus_text.hpp).
#include <cmath>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include <catch2/catch.hpp>

#include "prometheus_text.hpp"
#include "raftkit/error.hpp"
#include "raftkit/logger.hpp"
#include "raftkit/metrics.hpp"
#include "raftkit/options.hpp"

using namespace raftkit;
using raftkit::examples::parse_prometheus_text;

namespace {

struct Line {
  LogLevel level;
  NodeId node;
  Term term;
  std::string message;
};

struct Capture {
  std::mutex mu;
  std::vector<Line> lines;
  Logger logger(LogLevel min) {
    return Logger(
        [this](LogLevel l, NodeId n, Term t, std::string_view m) {
          std::lock_guard lk(mu);
          lines.push_back({l, n, t, std::string(m)});
        },
        min);
  }
};

// An argument whose formatting is observable: counts how often fmt formats it.
struct Expensive {
  int* formatted;
};

}  // namespace

template <>
struct fmt::formatter<Expensive> : fmt::formatter<int> {
  auto format(const Expensive& e, fmt::format_context& ctx) const {
    ++*e.formatted;
    return fmt::formatter<int>::format(42, ctx);
  }
};

TEST_CASE("logger: the sink receives level, node, term and the formatted message", "[logger]") {
  Capture c;
  Logger log = c.logger(LogLevel::debug);
  log.warn(NodeId{3}, Term{7}, "log write stalled for more than {} ms", 2000);
  log.log(LogLevel::error, NodeId{3}, Term{8}, "already formatted");
  REQUIRE(c.lines.size() == 2);
  CHECK(c.lines[0].level == LogLevel::warn);
  CHECK(c.lines[0].node == NodeId{3});
  CHECK(c.lines[0].term == Term{7});
  CHECK(c.lines[0].message == "log write stalled for more than 2000 ms");
  CHECK(c.lines[1].level == LogLevel::error);
  CHECK(c.lines[1].message == "already formatted");
}

TEST_CASE("logger: lines below the minimum level are neither delivered nor formatted", "[logger]") {
  Capture c;
  Logger log = c.logger(LogLevel::warn);
  int formatted = 0;
  log.debug(NodeId{1}, Term{1}, "{}", Expensive{&formatted});
  log.info(NodeId{1}, Term{1}, "{}", Expensive{&formatted});
  CHECK(formatted == 0);
  CHECK(c.lines.empty());
  CHECK_FALSE(log.enabled(LogLevel::info));
  CHECK(log.enabled(LogLevel::warn));
  log.error(NodeId{1}, Term{1}, "{}", Expensive{&formatted});
  CHECK(formatted == 1);
  REQUIRE(c.lines.size() == 1);
  CHECK(c.lines[0].message == "42");
}

TEST_CASE("logger: the default writes one stderr line in the documented format", "[logger]") {
  CHECK(Logger::format_line(LogLevel::warn, NodeId{3}, Term{7}, "disk slow") ==
        "raftkit: node 3 (term 7) warn: disk slow\n");
  Logger def;
  CHECK(def.has_sink());
  CHECK(def.min_level() == LogLevel::info);
  CHECK_FALSE(def.enabled(LogLevel::debug));
}

TEST_CASE("logger: levels format by name with fmt", "[logger]") {
  CHECK(fmt::format("{}", LogLevel::debug) == "debug");
  CHECK(fmt::format("{}", LogLevel::info) == "info");
  CHECK(fmt::format("[{:>5}]", LogLevel::warn) == "[ warn]");
  CHECK(fmt::format("{}", LogLevel::error) == "error");
}

TEST_CASE("logger: a logger without a sink is refused by Options::validate", "[logger][options]") {
  auto opt = Options::from_peers(NodeId{1}, {{NodeId{1}, "127.0.0.1:1"}});
  CHECK(opt.validate().empty());
  opt.logger = Logger::discard();
  CHECK(opt.validate().empty());
  opt.logger = Logger(Logger::Sink{});
  CHECK(opt.validate().find("logger") != std::string::npos);
  opt.logger.info(NodeId{1}, Term{1}, "no sink: {}", "dropped, no crash");
}

TEST_CASE("histogram: value v lands in the bucket 2^(i-1) < v <= 2^i", "[metrics]") {
  using H = HistogramSnapshot;
  CHECK(H::bucket_of(0) == 0);
  CHECK(H::bucket_of(1) == 0);
  CHECK(H::bucket_of(2) == 1);
  CHECK(H::bucket_of(3) == 2);
  CHECK(H::bucket_of(4) == 2);
  CHECK(H::bucket_of(5) == 3);
  CHECK(H::bucket_of(1024) == 10);
  CHECK(H::bucket_of(1025) == 11);
  CHECK(H::bucket_of(std::uint64_t{1} << 35) == 35);
  CHECK(H::bucket_of((std::uint64_t{1} << 35) + 1) == H::kBuckets - 1);
  CHECK(H::bucket_of(~std::uint64_t{0}) == H::kBuckets - 1);
  for (std::size_t i = 0; i + 1 < H::kBuckets; ++i) {
    CHECK(H::bucket_of(H::upper_bound(i)) == i);
    CHECK(H::bucket_of(H::upper_bound(i) + 1) == i + 1);
  }
}

TEST_CASE("histogram: durations are recorded in microseconds, count and sum add up", "[metrics]") {
  MetricHistogram h;
  h.record(std::chrono::milliseconds(3));    // 3000 µs -> bucket 12 (2048 < v <= 4096)
  h.record(std::chrono::nanoseconds(1500));  // 1 µs -> bucket 0
  h.record(std::chrono::microseconds(-5));   // negative -> 0
  h.record(100);
  auto s = h.snapshot();
  CHECK(s.count == 4);
  CHECK(s.sum == 3000 + 1 + 0 + 100);
  CHECK(s.buckets[12] == 1);
  CHECK(s.buckets[0] == 2);
  CHECK(s.buckets[7] == 1);  // 64 < 100 <= 128
  CHECK(s.quantile(0.5) == 1);
  CHECK(s.quantile(1.0) == 4096);
  CHECK(HistogramSnapshot{}.quantile(0.99) == 0);
}

TEST_CASE("registry: updates from many threads are all counted", "[metrics]") {
  MetricsRegistry m;
  constexpr int kThreads = 4, kEach = 20000;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&m, t] {
      for (int i = 0; i < kEach; ++i) {
        m.proposals_received.add();
        m.bytes_sent.add(10);
        m.pending_requests.add(1);
        m.pending_requests.add(-1);
        m.log_append_us.record(static_cast<std::uint64_t>(i % 1000));
        m.proposal_completed(t % 2 ? std::error_code{} : make_error_code(errc::timeout));
      }
    });
  for (auto& t : ts) t.join();
  auto s = m.snapshot();
  CHECK(s.proposals_received == kThreads * kEach);
  CHECK(s.bytes_sent == 10ull * kThreads * kEach);
  CHECK(s.pending_requests == 0);
  CHECK(s.log_append_us.count == kThreads * kEach);
  std::uint64_t expected_sum = 0;
  for (int i = 0; i < kEach; ++i) expected_sum += static_cast<std::uint64_t>(i % 1000);
  CHECK(s.log_append_us.sum == kThreads * expected_sum);
  CHECK(s.proposals_committed == kThreads / 2 * kEach);
  CHECK(s.proposals_failed.timeout == kThreads / 2 * kEach);
}

TEST_CASE("registry: proposal failures are counted under their reason", "[metrics]") {
  MetricsRegistry m;
  m.proposal_completed(errc::not_leader);
  m.proposal_completed(errc::busy);
  m.proposal_completed(errc::busy);
  m.proposal_completed(errc::too_large);
  m.proposal_completed(errc::dropped);
  m.proposal_completed(errc::shutting_down);
  m.proposal_completed(errc::io_error);
  m.proposal_completed(errc::no_space);
  m.proposal_completed(errc::invalid_argument);
  m.proposal_completed(std::make_error_code(std::errc::broken_pipe));
  m.proposal_completed({});
  auto f = m.snapshot().proposals_failed;
  CHECK(f.not_leader == 1);
  CHECK(f.busy == 2);
  CHECK(f.too_large == 1);
  CHECK(f.dropped == 1);
  CHECK(f.timeout == 0);
  CHECK(f.shutting_down == 1);
  CHECK(f.storage == 2);
  CHECK(f.other == 2);
  CHECK(m.snapshot().proposals_committed == 1);
}

TEST_CASE("prometheus: every family has HELP and TYPE, counters end in _total, values round-trip",
          "[metrics][prometheus]") {
  MetricsRegistry m;
  m.proposals_received.add(5);
  m.proposal_completed({});
  m.proposal_completed(errc::not_leader);
  m.term.set(7);
  m.is_leader.set(1);
  m.bytes_received.add(123456789);
  m.snapshot_bytes.record(3 * 1024 * 1024);
  const std::string text = to_prometheus(m.snapshot(), NodeId{2});
  std::string error;
  auto p = parse_prometheus_text(text, error);
  INFO(error);
  INFO(text);
  REQUIRE(p);

  std::set<std::string> families;
  for (const auto& s : p->samples) {
    // Every sample carries the node label and belongs to a declared family.
    CHECK(s.labels.at("node") == "2");
    std::string family = s.name;
    for (std::string_view suffix : {"_bucket", "_sum", "_count"})
      if (!p->types.count(family) && family.ends_with(suffix)) family.resize(family.size() - suffix.size());
    INFO(s.name);
    REQUIRE(p->types.count(family));
    CHECK(p->help.count(family));
    CHECK(family.starts_with("raftkit_"));
    if (p->types.at(family) == "counter") CHECK(family.ends_with("_total"));
    families.insert(family);
  }
  CHECK(families.size() == p->types.size());  // no TYPE line without samples
  CHECK(p->value("raftkit_proposals_received_total") == 5.0);
  CHECK(p->value("raftkit_proposals_committed_total") == 1.0);
  CHECK(p->value("raftkit_proposals_failed_total", {{"reason", "not_leader"}}) == 1.0);
  CHECK(p->value("raftkit_proposals_failed_total", {{"reason", "busy"}}) == 0.0);
  CHECK(p->value("raftkit_term") == 7.0);
  CHECK(p->value("raftkit_is_leader") == 1.0);
  CHECK(p->value("raftkit_bytes_received_total") == 123456789.0);
  CHECK(p->types.at("raftkit_log_append_seconds") == "histogram");
  CHECK(p->types.at("raftkit_pending_requests") == "gauge");
}

TEST_CASE("prometheus: histogram buckets are cumulative, ascending, end at +Inf = _count, _sum in export units",
          "[metrics][prometheus]") {
  MetricsRegistry m;
  // Latencies: 3 µs, 3 µs, 900 µs, 2 s; sizes: 1 KiB and 40 GiB (beyond the last finite bound).
  for (auto us : {3, 3, 900, 2000000}) m.log_fsync_us.record(std::chrono::microseconds(us));
  m.snapshot_bytes.record(1024);
  m.snapshot_bytes.record(std::uint64_t{40} << 30);
  std::string error;
  auto p = parse_prometheus_text(to_prometheus(m.snapshot(), NodeId{1}), error);
  INFO(error);
  REQUIRE(p);

  struct Expect {
    std::string family;
    double count, sum;
    std::vector<std::pair<double, double>> points;  // le -> cumulative count at that bound
  };
  for (const Expect& e : {Expect{"raftkit_log_fsync_seconds", 4, 2.000906, {{2e-6, 0}, {4e-6, 2}, {1.024e-3, 3}, {2.097152, 4}}},
                          Expect{"raftkit_snapshot_bytes", 2, 1024.0 + 40.0 * (1ull << 30), {{1024, 1}, {std::ldexp(1.0, 35), 1}}}}) {
    INFO(e.family);
    std::vector<std::pair<double, double>> buckets;
    for (const auto& s : p->samples)
      if (s.name == e.family + "_bucket") {
        const std::string& le = s.labels.at("le");
        buckets.emplace_back(le == "+Inf" ? HUGE_VAL : std::stod(le), s.value);
      }
    REQUIRE(buckets.size() == HistogramSnapshot::kBuckets);
    for (std::size_t i = 1; i < buckets.size(); ++i) {
      CHECK(buckets[i].first > buckets[i - 1].first);    // bounds ascend
      CHECK(buckets[i].second >= buckets[i - 1].second);  // counts are cumulative
    }
    CHECK(std::isinf(buckets.back().first));
    CHECK(buckets.back().second == e.count);
    CHECK(p->value(e.family + "_count") == e.count);
    CHECK(p->value(e.family + "_sum").value() == Approx(e.sum));
    for (auto [le, cumulative] : e.points) {
      bool found = false;
      for (auto [b, c] : buckets)
        if (b == Approx(le)) {
          found = true;
          CHECK(c == cumulative);
        }
      INFO("le=" << le);
      CHECK(found);
    }
  }
}

TEST_CASE("prometheus: the reader used by the tests rejects malformed text", "[prometheus]") {
  std::string error;
  CHECK_FALSE(parse_prometheus_text("raftkit_x{node=\"1\" 3\n", error));
  CHECK_FALSE(parse_prometheus_text("raftkit_x 3", error));        // no final newline
  CHECK_FALSE(parse_prometheus_text("raftkit_x three\n", error));
  CHECK_FALSE(parse_prometheus_text("# TYPE raftkit_x banana\n", error));
  CHECK(parse_prometheus_text("# TYPE raftkit_x counter\nraftkit_x{a=\"b\\\"c\"} 3\n", error));
}

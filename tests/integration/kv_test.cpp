// Real raftkit-kv-server processes on loopback, driven over HTTP/JSON.
//
// The processes are started, killed and restarted by the counter example's
// LocalCluster harness: the kv server takes the same flags (its --clients
// are HTTP addresses), and leadership and catch-up are read from each
// server's GET /status. Every wait is bounded and polls; the LocalCluster
// destructor kills every child, also when a check fails.
//
// RAFTKIT_TIMEOUT_SCALE (environment) multiplies every timeout; sanitizer
// builds default to 3.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>
#include <fmt/format.h>

#include "http_client.hpp"
#include "http_server.hpp"
#include "integration_support.hpp"
#include "kv_support.hpp"
#include "kv_state_machine.hpp"
#include "local_cluster.hpp"
#include "prometheus_text.hpp"

namespace {

namespace json = boost::json;
using raftkit::counter::LocalCluster;
using raftkit::counter::LocalClusterOptions;
using raftkit::examples::http_request;
using raftkit::examples::HttpReply;
using raftkit::examples::parse_prometheus_text;
using raftkit::examples::percent_encode;
using raftkit::integration::kv_status;
using raftkit::integration::outputs;
using raftkit::integration::scale;
using raftkit::integration::T;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// A leader that a majority of the cluster's nodes (itself included) name.
std::optional<std::uint64_t> wait_for_leader(const LocalCluster& c, milliseconds timeout,
                                             std::uint64_t not_this = 0) {
  std::optional<std::uint64_t> found;
  LocalCluster::wait_until(
      [&] {
        std::map<std::uint64_t, std::size_t> votes;
        std::set<std::uint64_t> leaders;
        for (auto id : c.ids()) {
          auto st = kv_status(c, id);
          if (!st) continue;
          auto leader = st->at("leader").to_number<std::uint64_t>();
          if (leader != 0) ++votes[leader];
          if (st->at("role").as_string() == "leader") leaders.insert(id);
        }
        for (auto id : leaders)
          if (id != not_this && votes[id] * 2 > c.ids().size()) {
            found = id;
            return true;
          }
        return false;
      },
      timeout);
  return found;
}

// One HTTP call to the cluster as a client would make it: start at
// `first`, follow 307 redirects to the leader, move on to the next node
// when one does not answer. Returns the final reply or nullopt.
std::optional<HttpReply> call(const LocalCluster& c, std::uint64_t first, const std::string& method,
                              const std::string& target, const std::string& body) {
  std::string address = c.client_address(first);
  std::string error;
  for (int hop = 0; hop < 5; ++hop) {
    auto r = http_request(address, method, target, body, T(3000), error);
    if (!r) return std::nullopt;
    if (r->status != 307) return r;
    const std::string& location = r->headers["location"];  // http://host:port/target
    const auto start = location.find("//");
    if (start == std::string::npos) return r;
    address = location.substr(start + 2, location.find('/', start + 2) - start - 2);
  }
  return std::nullopt;
}

// Every pair of node `id`'s map, read with paginated range scans.
std::optional<std::map<std::string, std::string>> dump(const LocalCluster& c, std::uint64_t id) {
  std::map<std::string, std::string> out;
  std::string from;
  for (;;) {
    std::string error;
    auto r = http_request(c.client_address(id), "GET", fmt::format("/kv?from={}&limit=1000", percent_encode(from)),
                          "", T(3000), error);
    if (!r || r->status != 200) return std::nullopt;
    auto page = json::parse(r->body).as_object();
    std::string last;
    for (const auto& item : page.at("items").as_array()) {
      const auto& o = item.as_object();
      last = json::value_to<std::string>(o.at("key"));
      out[last] = json::value_to<std::string>(o.at("value"));
    }
    if (!page.at("more").as_bool()) return out;
    from = last + '\0';  // the next key after `last`
  }
}

}  // namespace

TEST_CASE("kv: acknowledged writes survive SIGKILL of the leader and reach every node; CAS refuses a conflict; "
          "/metrics counters move",
          "[integration][kv]") {
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_KV_SERVER;
  o.tls = false;  // the kv example serves plain HTTP on loopback (see its README)
  o.nodes = 3;
  o.tick_ms = scale() > 1 ? 50 : 25;
  o.election_ticks = 10;
  o.request_timeout_ms = static_cast<int>(T(1500).count());
  o.snapshot_interval = 300;  // several snapshots during the run: restart and catch-up go through them
  o.cluster_id = "integration-kv";
  LocalCluster cluster(o);
  {
    std::string err;
    INFO(err);
    REQUIRE(cluster.start_all(T(15000), err));
  }
  auto leader = wait_for_leader(cluster, T(10000));
  INFO(outputs(cluster));
  REQUIRE(leader);

  // Writers: unique keys, each value derived from the key. A write counts as
  // acknowledged only on 200; anything else (a redirect loop, 503, 504, a
  // dead node) is retried — PUT is idempotent.
  constexpr int kWriters = 4;
  std::mutex mu;
  std::map<std::string, std::string> acknowledged;
  std::atomic<bool> stop_writers{false};
  std::atomic<std::size_t> acks{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w)
    writers.emplace_back([&, w] {
      std::uint64_t node = static_cast<std::uint64_t>(w) % cluster.ids().size() + 1;
      for (int i = 0; !stop_writers; ++i) {
        const std::string key = fmt::format("w{}/k{:05}", w, i);
        const std::string value = fmt::format("value of {} #{}", key, i * 7 + w);
        while (!stop_writers) {
          if (auto r = call(cluster, node, "PUT", "/kv/" + percent_encode(key), value); r && r->status == 200) {
            std::lock_guard lk(mu);
            acknowledged[key] = value;
            ++acks;
            break;
          }
          node = node % cluster.ids().size() + 1;  // try another node
        }
      }
    });
  struct JoinWriters {
    std::atomic<bool>& stop;
    std::vector<std::thread>& threads;
    ~JoinWriters() {
      stop = true;
      for (auto& t : threads)
        if (t.joinable()) t.join();
    }
  } join_writers{stop_writers, writers};

  CHECK(LocalCluster::wait_until([&] { return acks >= 300; }, T(20000)));
  const std::size_t before_kill = acks;
  cluster.kill(*leader);
  auto next = wait_for_leader(cluster, T(10000), *leader);
  REQUIRE(next);
  CHECK(*next != *leader);
  CHECK(LocalCluster::wait_until([&] { return acks >= before_kill + 300; }, T(30000)));
  stop_writers = true;
  for (auto& t : writers) t.join();
  INFO("acknowledged writes: " << acknowledged.size() << " (" << before_kill << " before the kill)");
  REQUIRE(acknowledged.size() >= before_kill + 300);

  // The killed node restarts from its data directory and catches up.
  {
    std::string err;
    INFO(err);
    REQUIRE(cluster.start(*leader, T(15000), err));
  }

  // Every acknowledged write is on every node, with its value.
  for (auto id : cluster.ids()) {
    std::optional<std::map<std::string, std::string>> map;
    std::size_t missing = 0;
    const bool complete = LocalCluster::wait_until(
        [&] {
          map = dump(cluster, id);
          if (!map) return false;
          missing = 0;
          for (const auto& [k, v] : acknowledged) {
            auto it = map->find(k);
            if (it == map->end() || it->second != v) ++missing;
          }
          return missing == 0;
        },
        T(20000));
    INFO("node " << id << ": " << missing << " acknowledged writes missing or wrong");
    CHECK(complete);
  }

  // A write sent to a follower is redirected to the leader (307, Location on
  // the leader's HTTP address, the leader's id in the JSON body).
  {
    auto lead = wait_for_leader(cluster, T(10000));
    REQUIRE(lead);
    const std::uint64_t follower = *lead % cluster.ids().size() + 1;
    std::string error;
    auto r = http_request(cluster.client_address(follower), "PUT", "/kv/redirected", "v", T(3000), error);
    INFO(error);
    REQUIRE(r);
    CHECK(r->status == 307);
    CHECK(r->headers["location"] == fmt::format("http://{}/kv/redirected", cluster.client_address(*lead)));
    auto body = json::parse(r->body).as_object();
    CHECK(body.at("error").as_string() == "not_leader");
    CHECK(body.at("leader").to_number<std::uint64_t>() == *lead);
  }

  // Compare-and-set: a stale expectation is refused with the current value;
  // the right one is applied.
  {
    const auto first = *next;
    auto put = call(cluster, first, "PUT", "/kv/cas-key", "1");
    REQUIRE(put);
    CHECK(put->status == 200);
    auto conflict = call(cluster, first, "POST", "/kv/cas-key?cas=0", "2");
    REQUIRE(conflict);
    CHECK(conflict->status == 409);
    auto body = json::parse(conflict->body).as_object();
    CHECK(body.at("error").as_string() == "cas_conflict");
    CHECK(body.at("current").as_string() == "1");
    auto swapped = call(cluster, first, "POST", "/kv/cas-key?cas=1", "2");
    REQUIRE(swapped);
    CHECK(swapped->status == 200);
    auto absent = call(cluster, first, "POST", "/kv/no-such-key?cas=1", "2");
    REQUIRE(absent);
    CHECK(absent->status == 409);
    CHECK(json::parse(absent->body).as_object().at("current").is_null());
    // Every node answers a linearizable read itself (no redirect), and
    // sees the swap that completed; with ?stale=ok it answers from its own
    // state, marked stale (which has applied the swap by now: the
    // linearizable read before it waited for that).
    for (auto id : cluster.ids()) {
      std::string error;
      auto got = http_request(cluster.client_address(id), "GET", "/kv/cas-key", "", T(3000), error);
      INFO(error);
      REQUIRE(got);
      CHECK(got->status == 200);
      CHECK(json::parse(got->body).as_object().at("value").as_string() == "2");
      auto stale = http_request(cluster.client_address(id), "GET", "/kv/cas-key?stale=ok", "", T(3000), error);
      INFO(error);
      REQUIRE(stale);
      REQUIRE(stale->status == 200);
      auto body = json::parse(stale->body).as_object();
      CHECK(body.at("stale").as_bool());
      CHECK(body.at("value").as_string() == "2");
    }
  }

  // /metrics on the leader: the Prometheus text parses, and the counters
  // move when writes are made.
  {
    auto scrape = [&](std::uint64_t id) {
      std::string error;
      auto r = http_request(cluster.client_address(id), "GET", "/metrics", "", T(3000), error);
      INFO(error);
      REQUIRE(r);
      REQUIRE(r->status == 200);
      CHECK(r->headers["content-type"].starts_with("text/plain; version=0.0.4"));
      auto p = parse_prometheus_text(r->body, error);
      INFO(error);
      REQUIRE(p);
      return *p;
    };
    auto lead = wait_for_leader(cluster, T(10000));
    REQUIRE(lead);
    const auto before = scrape(*lead);
    for (int i = 0; i < 20; ++i) {
      auto r = call(cluster, *lead, "PUT", fmt::format("/kv/metrics-{}", i), "x");
      REQUIRE(r);
      CHECK(r->status == 200);
    }
    const auto after = scrape(*lead);
    for (const char* counter : {"raftkit_proposals_received_total", "raftkit_proposals_committed_total",
                                "raftkit_entries_applied_total", "raftkit_entries_committed_total"}) {
      INFO(counter);
      REQUIRE(before.value(counter));
      REQUIRE(after.value(counter));
      CHECK(*after.value(counter) >= *before.value(counter) + 20);
    }
    CHECK(after.value("raftkit_is_leader") == 1.0);
    CHECK(after.types.at("raftkit_snapshot_bytes") == "histogram");
    // Snapshots every 300 entries: the nodes that ran all along saved some
    // (a counter of this process's life), and every node, the restarted
    // one included, holds one (its status says from which index).
    for (auto id : cluster.ids()) {
      INFO("node " << id);
      auto st = kv_status(cluster, id);
      REQUIRE(st);
      CHECK(st->at("snapshot_index").to_number<std::uint64_t>() > 0);
      if (id == *leader) continue;  // restarted: its counters began again at 0
      CHECK(scrape(id).value("raftkit_snapshot_bytes_count").value_or(0) >= 1);
    }
  }
  CHECK(cluster.sanitizer_reports() == 0);
}

// ---- the state machine and the HTTP layer on their own ---------------------

namespace {

raftkit::Bytes snapshot_of(const raftkit::StateMachine& sm) {
  raftkit::MemorySnapshotWriter w;
  REQUIRE(!sm.capture_snapshot()->write_to(w));
  return std::move(w.bytes);
}

std::error_code restore(raftkit::StateMachine& sm, raftkit::BytesView snapshot) {
  raftkit::MemorySnapshotReader r(snapshot);
  return sm.restore_snapshot(r);
}

raftkit::Entry entry(std::uint64_t index, raftkit::Bytes payload) {
  raftkit::Entry e;
  e.term = raftkit::Term{1};
  e.index = raftkit::Index{index};
  e.payload = std::move(payload);
  return e;
}

}  // namespace

TEST_CASE("kv state machine: put, delete, compare-and-set and scan follow their rules", "[kv]") {
  using namespace raftkit::kv;
  KvStateMachine sm;
  std::uint64_t i = 0;
  auto apply = [&](raftkit::Bytes cmd) { return decode_result(sm.apply(entry(++i, std::move(cmd)))).value(); };
  auto query = [&](raftkit::Bytes q) { return decode_result(sm.query(q)).value(); };
  CHECK(apply(put_command("b", "2")).status == Status::ok);
  CHECK(apply(put_command("a", "1")).status == Status::ok);
  CHECK(apply(put_command("c", "3")).status == Status::ok);
  CHECK(query(get_query("a")).value == "1");
  CHECK(query(get_query("zz")).status == Status::not_found);
  CHECK(apply(delete_command("zz")).status == Status::not_found);
  // CAS: refused on a wrong expectation (with the current value) and on an
  // absent key; applied on the right one.
  auto conflict = apply(cas_command("a", "0", "9"));
  CHECK(conflict.status == Status::cas_conflict);
  CHECK(conflict.value == "1");
  auto absent = apply(cas_command("nope", "", "9"));
  CHECK(absent.status == Status::cas_conflict);
  CHECK_FALSE(absent.value);
  CHECK(apply(cas_command("a", "1", "9")).status == Status::ok);
  CHECK(query(get_query("a")).value == "9");
  // Scan: [from, to), at most limit, `more` when the range holds more.
  auto scan = query(scan_query("a", "c", 10));
  REQUIRE(scan.items.size() == 2);
  CHECK(scan.items[0] == std::pair<std::string, std::string>{"a", "9"});
  CHECK(scan.items[1] == std::pair<std::string, std::string>{"b", "2"});
  CHECK_FALSE(scan.more);
  auto limited = query(scan_query("", "", 2));
  CHECK(limited.items.size() == 2);
  CHECK(limited.more);
  CHECK(apply(delete_command("b")).status == Status::ok);
  CHECK(query(scan_query("", "", 10)).items.size() == 2);
  CHECK(sm.local_size() == 2);
}

TEST_CASE("kv state machine: malformed commands change nothing and answer malformed, on every node alike", "[kv]") {
  using namespace raftkit::kv;
  KvStateMachine a, b;
  std::mt19937_64 rng(12345);
  std::uint64_t index = 0;
  const raftkit::Bytes valid = cas_command("key", "expected", "value");
  for (int round = 0; round < 20000; ++round) {
    raftkit::Bytes cmd;
    switch (round % 4) {
      case 0:  // random bytes
        cmd.resize(rng() % 40);
        for (auto& byte : cmd) byte = static_cast<std::uint8_t>(rng());
        break;
      case 1:  // a valid command cut short
        cmd.assign(valid.begin(), valid.begin() + static_cast<std::ptrdiff_t>(rng() % valid.size()));
        break;
      case 2:  // a valid command with a lying length field
        cmd = valid;
        cmd[1 + rng() % 4] = static_cast<std::uint8_t>(rng());
        break;
      default:  // a valid command with bytes appended
        cmd = valid;
        cmd.push_back(static_cast<std::uint8_t>(rng()));
        break;
    }
    ++index;
    const auto before = snapshot_of(a);
    const auto ra = a.apply(entry(index, cmd));
    const auto rb = b.apply(entry(index, cmd));
    CHECK(ra == rb);  // deterministic
    auto decoded = decode_result(ra);
    REQUIRE(decoded);
    // A command answered `malformed` changed nothing. (A mutation can leave
    // a command well-formed; then it is applied like any other.)
    if (decoded->status == Status::malformed) CHECK(snapshot_of(a) == before);
    CHECK(decode_result(a.query(cmd)).has_value());  // queries are just as safe
  }
  CHECK(snapshot_of(a) == snapshot_of(b));
}

TEST_CASE("kv state machine: a snapshot restores the whole map; a foreign snapshot is refused", "[kv]") {
  using namespace raftkit::kv;
  KvStateMachine a;
  for (int i = 0; i < 100; ++i) a.apply(entry(static_cast<std::uint64_t>(i + 1), put_command(fmt::format("k{}", i), std::string(static_cast<std::size_t>(i), 'x'))));
  const auto snap = snapshot_of(a);
  KvStateMachine b;
  b.apply(entry(1, put_command("stale", "gone after the load")));
  CHECK(!restore(b, snap));
  CHECK(b.local_size() == 100);
  CHECK(snapshot_of(b) == snap);
  CHECK(decode_result(b.query(get_query("stale")))->status == Status::not_found);
  CHECK(decode_result(b.query(get_query("k42")))->value == std::string(42, 'x'));
  CHECK(!restore(b, {}));  // the initial state
  CHECK(b.local_size() == 0);
  raftkit::Bytes truncated(snap.begin(), snap.end() - 3);
  CHECK(restore(b, truncated) == raftkit::errc::corrupted);
  CHECK(restore(b, raftkit::to_bytes("not a kv snapshot")) == raftkit::errc::corrupted);
  raftkit::Bytes lying = snap;
  lying[15] = 0xff;  // the first key's length (bytes 12..15), far beyond the snapshot's end
  CHECK(restore(b, lying) == raftkit::errc::corrupted);
}

TEST_CASE("kv server: bad HTTP requests get a 4xx answer and the server keeps serving", "[integration][kv]") {
  LocalClusterOptions o;
  o.server_binary = RAFTKIT_KV_SERVER;
  o.tls = false;  // the kv example serves plain HTTP on loopback (see its README)
  o.nodes = 1;
  o.cluster_id = "integration-kv-http";
  LocalCluster cluster(o);
  {
    std::string err;
    INFO(err);
    REQUIRE(cluster.start_all(T(15000), err));
  }
  REQUIRE(wait_for_leader(cluster, T(10000)));
  const std::string address = cluster.client_address(1);
  struct Case {
    std::string method, target, body;
    unsigned status;
  };
  const std::vector<Case> cases = {
      {"GET", "/nowhere", "", 404},
      {"PATCH", "/kv/a", "", 405},
      {"GET", "/kv/%zz", "", 400},                      // malformed escape
      {"PUT", "/kv/", "v", 400},                        // empty key
      {"PUT", "/kv/" + std::string(2000, 'k'), "", 400},  // key too long
      {"POST", "/kv/a", "v", 400},                      // CAS without ?cas=
      {"GET", "/kv?limit=0", "", 400},
      {"GET", "/kv?limit=abc", "", 400},
      {"PUT", "/kv/big", std::string((1 << 20) + 1, 'v'), 413},  // over the body limit
      {"GET", "/kv/missing", "", 404},
  };
  for (const auto& c : cases) {
    INFO(c.method << " " << c.target.substr(0, 40));
    std::string error;
    auto r = http_request(address, c.method, c.target, c.body, T(3000), error);
    INFO(error);
    REQUIRE(r);
    CHECK(r->status == c.status);
  }
  std::string error;
  auto ok = http_request(address, "PUT", "/kv/a%20key%2Fwith%3Fodd%26chars", "still serving", T(3000), error);
  REQUIRE(ok);
  CHECK(ok->status == 200);
  auto got = http_request(address, "GET", "/kv?from=a&to=b", "", T(3000), error);
  REQUIRE(got);
  auto items = json::parse(got->body).as_object().at("items").as_array();
  REQUIRE(items.size() == 1);
  CHECK(items[0].as_object().at("key").as_string() == "a key/with?odd&chars");
}

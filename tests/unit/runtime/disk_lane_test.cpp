// runtime::DiskLane, the thread that writes a node's log (or every group's
// of a host) and makes it durable: nothing is reported before the sync that
// covers it, a round of writes shares one sync, failures reach every write
// they cover, and a job's captures are gone before its owner hears it is
// done. Deterministic: the sync blocks until the test lets it go.
#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <catch2/catch.hpp>

#include "raftkit/error.hpp"
#include "runtime/disk_lane.hpp"

using namespace raftkit;
using namespace raftkit::runtime;
using namespace std::chrono_literals;

namespace {

// A sync that says when it is entered and returns only when released.
struct GatedSync {
  std::promise<void> entered;
  std::shared_future<void> release;
  std::atomic<int> calls{0};
  std::error_code result;

  explicit GatedSync(std::shared_future<void> r) : release(std::move(r)) {}
  std::error_code operator()() {
    if (calls.fetch_add(1) == 0) {
      entered.set_value();
      release.wait();
    }
    return result;
  }
};

struct Reports {
  std::mutex mu;
  std::vector<std::pair<int, std::error_code>> done;  // (write, outcome), in report order
  std::size_t size() {
    std::lock_guard lock(mu);
    return done.size();
  }
};

DiskLane::Done report_to(Reports& r, int write) {
  return [&r, write](std::error_code ec, std::string) {
    std::lock_guard lock(r.mu);
    r.done.emplace_back(write, ec);
  };
}

// How many writes were reported when the first sync began, and the reports
// in the end, for a lane made by `make` over `sync`.
template <class Make>
std::size_t reported_before_first_sync(Make make, Reports& reports, std::uint64_t& syncs) {
  std::promise<void> release;
  GatedSync gate(release.get_future().share());
  MetricsRegistry metrics;
  auto owner = std::make_shared<Outstanding>();
  std::size_t early = 0;
  {
    std::unique_ptr<DiskLane> lane = make([&gate] { return gate(); });
    lane->submit([](std::string&) { return std::error_code{}; }, report_to(reports, 1), metrics, owner);
    gate.entered.get_future().wait();  // write 1 is written; its sync has begun and holds
    early = reports.size();
    // Two more, queued while the lane is inside write 1's sync: one round, one sync.
    lane->submit([](std::string&) { return std::error_code{}; }, report_to(reports, 2), metrics, owner);
    lane->submit([](std::string&) { return std::error_code{}; }, report_to(reports, 3), metrics, owner);
    release.set_value();
    owner->wait_idle();
    syncs = lane->syncs();
  }
  return early;
}

}  // namespace

TEST_CASE("DiskLane: a write is reported only after the sync that covers it; writes queued meanwhile share one") {
  Reports reports;
  std::uint64_t syncs = 0;
  const auto early = reported_before_first_sync(
      [](std::function<std::error_code()> sync) { return std::make_unique<DiskLane>(std::move(sync)); }, reports,
      syncs);
  CHECK(early == 0);
  CHECK(syncs == 2);
  REQUIRE(reports.done.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(reports.done[static_cast<std::size_t>(i)].first == i + 1);  // in order
    CHECK(!reports.done[static_cast<std::size_t>(i)].second);
  }
}

TEST_CASE("DiskLane: a failed sync fails every write of its round; a failed write keeps its own error") {
  std::promise<void> open;
  open.set_value();
  GatedSync gate(open.get_future().share());
  gate.result = errc::no_space;
  MetricsRegistry metrics;
  auto owner = std::make_shared<Outstanding>();
  Reports reports;
  std::vector<std::string> what(2);
  {
    DiskLane lane([&gate] { return gate(); });
    lane.submit([](std::string& w) {
                  w = "appending";
                  return std::error_code(errc::io_error);
                },
                [&](std::error_code ec, std::string w) {
                  report_to(reports, 1)(ec, w);
                  what[0] = w;
                },
                metrics, owner);
    owner->wait_idle();
    CHECK(gate.calls == 0);  // nothing was written: nothing to sync
    lane.submit([](std::string&) { return std::error_code{}; },
                [&](std::error_code ec, std::string w) {
                  report_to(reports, 2)(ec, w);
                  what[1] = w;
                },
                metrics, owner);
    owner->wait_idle();
  }
  REQUIRE(reports.done.size() == 2);
  CHECK(reports.done[0].second == errc::io_error);
  CHECK(what[0] == "appending");
  // A sync that fails is never a full disk to wait out: no_space becomes io_error.
  CHECK(reports.done[1].second == errc::io_error);
  CHECK(what[1] == "syncing the log");
}

TEST_CASE("DiskLane: what a job captured is gone before its owner hears it is done") {
  // Rule: a node's last reference must never be dropped on the lane's
  // thread (the node would join that thread from itself).
  MetricsRegistry metrics;
  auto owner = std::make_shared<Outstanding>();
  auto captured = std::make_shared<int>(7);
  std::weak_ptr<int> watch = captured;
  {
    DiskLane lane([] { return std::error_code{}; });
    lane.submit([c = std::move(captured)](std::string&) { return std::error_code{}; },
                [](std::error_code, std::string) {}, metrics, owner);
    owner->wait_idle();
    CHECK(watch.expired());
  }
}

#ifdef RAFTKIT_PLANTED_BUGS
TEST_CASE("DiskLane: the check finds a lane that reports writes before their sync (planted bug)", "[planted]") {
  Reports reports;
  std::uint64_t syncs = 0;
  const auto early = reported_before_first_sync(
      [](std::function<std::error_code()> sync) {
        return std::make_unique<DiskLane>(std::move(sync), /*bug_report_before_sync=*/true);
      },
      reports, syncs);
  CHECK(early == 1);  // write 1 was acknowledged while its fdatasync had not returned
  WARN("planted bug found: " << early << " write reported before the sync that covers it");
}
#endif

#include "runtime/disk_lane.hpp"

#include <chrono>
#include <vector>

#include "raftkit/error.hpp"

namespace raftkit::runtime {

DiskLane::DiskLane(std::function<std::error_code()> sync) : sync_(std::move(sync)), thread_([this] { run(); }) {}

#ifdef RAFTKIT_PLANTED_BUGS
DiskLane::DiskLane(std::function<std::error_code()> sync, bool bug_report_before_sync)
    : sync_(std::move(sync)), bug_report_before_sync_(bug_report_before_sync), thread_([this] { run(); }) {}
#endif

DiskLane::~DiskLane() {
  {
    std::lock_guard lock(mu_);
    closing_ = true;
  }
  work_.notify_one();
  thread_.join();
}

void DiskLane::submit(Write write, Done done, MetricsRegistry& metrics, std::shared_ptr<Outstanding> owner) {
  owner->add();
  {
    std::lock_guard lock(mu_);
    queue_.push_back(Job{std::move(write), std::move(done), &metrics, std::move(owner)});
  }
  work_.notify_one();
}

std::uint64_t DiskLane::syncs() const {
  std::lock_guard lock(mu_);
  return syncs_;
}

std::error_code sync_failure(std::error_code ec) { return ec == errc::no_space ? std::error_code(errc::io_error) : ec; }

// One round: every write queued, in order, then one sync for all of them. A
// write that failed is reported with its own error; the others get the
// sync's (sync_failure).
void DiskLane::run() {
  using Clock = std::chrono::steady_clock;
  std::vector<Job> round;
  std::vector<std::pair<std::error_code, std::string>> outcome;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      work_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      if (queue_.empty()) return;
      round.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
      queue_.clear();
    }
    outcome.assign(round.size(), {});
    bool wrote = false;
    for (std::size_t i = 0; i < round.size(); ++i) {
      const auto started = Clock::now();
      outcome[i].first = round[i].write(outcome[i].second);
      round[i].metrics->log_append_us.record(Clock::now() - started);
      wrote = wrote || !outcome[i].first;
    }
#ifdef RAFTKIT_PLANTED_BUGS
    if (bug_report_before_sync_) [[unlikely]]
      report(round, outcome);
#endif
    if (wrote) {
      const auto started = Clock::now();
      std::error_code ec = sync_();
      const auto took = Clock::now() - started;
      {
        std::lock_guard lock(mu_);
        ++syncs_;
      }
      ec = ec ? sync_failure(ec) : ec;
      for (std::size_t i = 0; i < round.size(); ++i) {
        if (outcome[i].first) continue;
        round[i].metrics->log_fsync_us.record(took);
        if (ec) outcome[i] = {ec, "syncing the log"};
      }
    }
    report(round, outcome);
  }
}

void DiskLane::report(std::vector<Job>& round, std::vector<std::pair<std::error_code, std::string>>& outcome) {
  for (std::size_t i = 0; i < round.size(); ++i) {
    std::shared_ptr<Outstanding> owner = std::move(round[i].owner);
    round[i].done(outcome[i].first, std::move(outcome[i].second));
    round[i] = Job{};  // what the job captured goes before its owner hears it is done
    owner->done();
  }
  round.clear();
}

}  // namespace raftkit::runtime

// runtime/disk_lane.hpp — the thread that writes logs and makes them durable.
//
// A Node's log writes run off its strand, on a lane: a thread that takes
// every write queued since its last round, performs them in order, and then
// makes all of them durable with one sync. A single Node has a lane of its
// own whose sync is its store's; the groups of a Host share the host's lane,
// whose sync is the shared log's, so one fdatasync covers every group's
// writes of a round (storage/shared_log.hpp). A write is reported only
// after the sync that covers it: nothing is acknowledged before it is on
// disk.
//
// Work a node hands to a thread it does not own (the lane, a host's
// snapshot thread) is counted in its Outstanding, so the node can wait for
// its own work alone when it stops.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "raftkit/metrics.hpp"

namespace raftkit::runtime {

/// The error a failed sync reports. A failed sync is never a full disk to
/// wait out, whatever it says: after a failed fsync the kernel may have
/// dropped the dirty pages, and a later one could "succeed" without them
/// (log_store.hpp), so no_space becomes io_error and the node stops.
std::error_code sync_failure(std::error_code ec);

/// A count of work in flight that one owner can wait for.
class Outstanding {
 public:
  void add() {
    std::lock_guard lock(mu_);
    ++count_;
  }
  void done() {
    std::lock_guard lock(mu_);
    if (--count_ == 0) idle_.notify_all();
  }
  /// Blocks until every piece of work added has been done.
  void wait_idle() {
    std::unique_lock lock(mu_);
    idle_.wait(lock, [&] { return count_ == 0; });
  }

 private:
  std::mutex mu_;
  std::condition_variable idle_;
  std::size_t count_ = 0;
};

class DiskLane {
 public:
  /// Performs one write without syncing; on error, `what` says which step failed.
  using Write = std::function<std::error_code(std::string& what)>;
  /// Told the outcome once the write is durable (or failed). Runs on the lane.
  using Done = std::function<void(std::error_code, std::string what)>;

  /// `sync` makes every write performed before it durable.
  explicit DiskLane(std::function<std::error_code()> sync);
#ifdef RAFTKIT_PLANTED_BUGS
  /// A deliberate bug, for the test that shows its check finds it: a round's
  /// writes are reported as soon as they are written, before their sync.
  DiskLane(std::function<std::error_code()> sync, bool bug_report_before_sync);
#endif
  /// Finishes what was submitted, then joins the thread.
  ~DiskLane();
  DiskLane(const DiskLane&) = delete;
  DiskLane& operator=(const DiskLane&) = delete;

  /// Queues a write. `metrics` gets its append and fsync times. `owner` is
  /// told done() after `done` has run and the job (with what it captured)
  /// is gone.
  void submit(Write write, Done done, MetricsRegistry& metrics, std::shared_ptr<Outstanding> owner);

  /// Syncs performed (one per round that had a write), for tests and metrics.
  std::uint64_t syncs() const;

 private:
  struct Job {
    Write write;
    Done done;
    MetricsRegistry* metrics = nullptr;
    std::shared_ptr<Outstanding> owner;
  };
  void run();
  // Reports every job of `round`, then empties it.
  void report(std::vector<Job>& round, std::vector<std::pair<std::error_code, std::string>>& outcome);

  std::function<std::error_code()> sync_;
  mutable std::mutex mu_;
  std::condition_variable work_;
  std::deque<Job> queue_;
  bool closing_ = false;
  std::uint64_t syncs_ = 0;
#ifdef RAFTKIT_PLANTED_BUGS
  bool bug_report_before_sync_ = false;
#endif
  std::thread thread_;
};

}  // namespace raftkit::runtime

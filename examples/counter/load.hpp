// load.hpp — concurrent increments (+1 each) from several client threads,
// counting acknowledged, unknown and failed outcomes: for the demo and the
// integration tests.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "client.hpp"

namespace raftkit::counter {

struct LoadCounts {
  std::uint64_t acked = 0;    ///< increments the cluster acknowledged
  std::uint64_t unknown = 0;  ///< increments that may or may not have been applied
  std::uint64_t failed = 0;   ///< increments certainly not applied
  std::vector<std::string> reasons;  ///< why, for the first few unknown or failed ones
};

class IncrementLoad {
 public:
  using Clock = std::chrono::steady_clock;

  IncrementLoad(ClientOptions options, int threads) {
    for (int i = 0; i < threads; ++i) {
      ClientOptions o = options;
      // Spread the threads' first contact over the servers.
      if (!o.servers.empty())
        std::rotate(o.servers.begin(), o.servers.begin() + (i % static_cast<int>(o.servers.size())),
                    o.servers.end());
      threads_.emplace_back([this, o] { run(o); });
    }
  }
  ~IncrementLoad() { stop(); }
  IncrementLoad(const IncrementLoad&) = delete;
  IncrementLoad& operator=(const IncrementLoad&) = delete;

  /// Lets each thread finish its current increment, then joins them.
  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable()) t.join();
  }

  LoadCounts counts() const {
    std::lock_guard lk(mu_);
    return counts_;
  }

  /// When a node other than `not_from` first acknowledged an increment after `t`.
  std::optional<Clock::time_point> first_ack_after(Clock::time_point t, std::uint64_t not_from) const {
    std::lock_guard lk(mu_);
    std::optional<Clock::time_point> best;
    for (auto& [when, who] : acks_)
      if (when > t && who != not_from && (!best || when < *best)) best = when;
    return best;
  }

  /// Forgets the acknowledgements recorded before `t` (first_ack_after() no
  /// longer sees them): a load that runs for hours keeps its memory bounded.
  void forget_acks_before(Clock::time_point t) {
    std::lock_guard lk(mu_);
    acks_.erase(acks_.begin(), std::partition_point(acks_.begin(), acks_.end(),
                                                    [t](const auto& a) { return a.first < t; }));
  }

 private:
  void run(ClientOptions o) {
    Client c(o);
    while (!stop_) {
      auto r = c.incr(1);
      std::lock_guard lk(mu_);
      const auto now = Clock::now();  // under the lock: acks_ stays in time order
      switch (r.outcome) {
        case Outcome::ok:
          ++counts_.acked;
          acks_.emplace_back(now, r.leader_id);
          break;
        case Outcome::unknown: ++counts_.unknown; break;
        case Outcome::failed: ++counts_.failed; break;
      }
      if (r.outcome != Outcome::ok && counts_.reasons.size() < 16)
        counts_.reasons.push_back(std::string(outcome_name(r.outcome)) + ": " + r.message);
    }
  }

  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  LoadCounts counts_;
  std::vector<std::pair<Clock::time_point, std::uint64_t>> acks_;
  std::vector<std::thread> threads_;
};

}  // namespace raftkit::counter

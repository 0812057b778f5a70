// tests/testing/faulty_transport.cpp — drop, delay and partition any transport.
//
// Rules live in one shared object behind a mutex, so tests can flip them from
// any thread while messages flow. The inbound side wraps the user's handler:
// a message from a blocked peer is dropped before it reaches the node. The
// outbound side decides in send(): blocked or unlucky messages are counted
// and dropped; delayed ones wait on a steady_timer of the given executor and
// then go to the inner transport, unless stop() ran meanwhile. The RNG is
// seeded by the caller and drawn under the mutex, so for a given sequence of
// send() calls the same messages are dropped and delayed by the same amounts.
#include "raftkit/testing/faulty_transport.hpp"

#include <algorithm>
#include <atomic>
#include <mutex>
#include <random>
#include <set>

#include <boost/asio/steady_timer.hpp>

namespace raftkit {

struct FaultyTransport::Rules {
  std::mutex mutex;
  std::mt19937_64 rng;
  double drop_probability = 0.0;
  std::chrono::milliseconds delay_min{0}, delay_max{0};
  std::set<NodeId> blocked_out, blocked_in;
  bool isolated = false;
  bool stopped = false;
  std::atomic<std::uint64_t> dropped{0};
  explicit Rules(std::uint64_t seed) : rng(seed) {}
};

FaultyTransport::FaultyTransport(std::shared_ptr<Transport> inner, boost::asio::any_io_executor executor,
                                 std::uint64_t seed)
    : inner_(std::move(inner)), executor_(std::move(executor)), rules_(std::make_shared<Rules>(seed)) {}

FaultyTransport::~FaultyTransport() { stop(); }

void FaultyTransport::set_drop_probability(double p) {
  std::lock_guard lock(rules_->mutex);
  rules_->drop_probability = std::clamp(p, 0.0, 1.0);
}

void FaultyTransport::set_delay(std::chrono::milliseconds min, std::chrono::milliseconds max) {
  std::lock_guard lock(rules_->mutex);
  rules_->delay_min = std::max(min, std::chrono::milliseconds{0});
  rules_->delay_max = std::max(max, rules_->delay_min);
}

void FaultyTransport::block_outbound(NodeId peer) {
  std::lock_guard lock(rules_->mutex);
  rules_->blocked_out.insert(peer);
}

void FaultyTransport::block_inbound(NodeId peer) {
  std::lock_guard lock(rules_->mutex);
  rules_->blocked_in.insert(peer);
}

void FaultyTransport::block(NodeId peer) {
  std::lock_guard lock(rules_->mutex);
  rules_->blocked_out.insert(peer);
  rules_->blocked_in.insert(peer);
}

void FaultyTransport::isolate() {
  std::lock_guard lock(rules_->mutex);
  rules_->isolated = true;
}

void FaultyTransport::heal() {
  std::lock_guard lock(rules_->mutex);
  rules_->blocked_out.clear();
  rules_->blocked_in.clear();
  rules_->isolated = false;
}

std::error_code FaultyTransport::start(MessageHandler on_message, UnreachableHandler on_unreachable) {
  if (!on_message) return errc::invalid_argument;
  auto rules = rules_;
  return inner_->start(
      [rules, handler = std::move(on_message)](Message msg) {
        {
          std::lock_guard lock(rules->mutex);
          if (rules->stopped) return;
          if (rules->isolated || rules->blocked_in.count(msg.from)) {
            rules->dropped.fetch_add(1, std::memory_order_relaxed);
            return;
          }
        }
        handler(std::move(msg));
      },
      std::move(on_unreachable));
}

void FaultyTransport::send(Message msg) {
  std::chrono::milliseconds delay{0};
  {
    std::lock_guard lock(rules_->mutex);
    bool drop = rules_->stopped || rules_->isolated || rules_->blocked_out.count(msg.to) > 0;
    if (!drop && rules_->drop_probability > 0.0)
      drop = std::uniform_real_distribution<double>(0.0, 1.0)(rules_->rng) < rules_->drop_probability;
    if (drop) {
      rules_->dropped.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (rules_->delay_max.count() > 0)
      delay = std::chrono::milliseconds{std::uniform_int_distribution<std::int64_t>(
          rules_->delay_min.count(), rules_->delay_max.count())(rules_->rng)};
  }
  if (delay.count() == 0) {
    inner_->send(std::move(msg));
    return;
  }
  auto timer = std::make_shared<boost::asio::steady_timer>(executor_, delay);
  timer->async_wait([timer, rules = rules_, inner = inner_, msg = std::move(msg)](boost::system::error_code) mutable {
    {
      std::lock_guard lock(rules->mutex);
      if (rules->stopped) return;
    }
    inner->send(std::move(msg));
  });
}

void FaultyTransport::stop() {
  {
    std::lock_guard lock(rules_->mutex);
    rules_->stopped = true;
  }
  inner_->stop();
}

TransportStats FaultyTransport::stats() const {
  TransportStats s = inner_->stats();
  s.dropped += rules_->dropped.load(std::memory_order_relaxed);
  return s;
}

}  // namespace raftkit

// sim/callers.hpp — the caller checker: every request handed to a driver
// (a proposal, a read, a leadership transfer, a membership change) is
// answered exactly once, unless its node crashed (then no answer is owed),
// and within the request timeout; a proposal reported successful is
// committed at the index and term it was given, and one reported dropped
// is not. `dropped` promises that the entry will never commit, which is
// known only once an entry of another term is committed at its index (Figure
// 8: a newer entry landing there proves nothing): so by the end of the step
// that gave the answer, the cluster must have committed such an entry.
#pragma once

#include <cstdint>
#include <system_error>
#include <vector>

#include "raftkit/types.hpp"
#include "sim/world.hpp"

namespace raftkit::sim {

class Cluster;

enum class RequestKind : std::uint8_t { propose, read, transfer, membership };

class Callers {
 public:
  Callers(World& world, const Cluster& cluster) : w_(world), cluster_(cluster) {}

  /// A request handed to node n now; the id goes to its completion.
  std::uint64_t track(RequestKind kind, std::size_t n);
  /// Where a proposal landed (as the driver said).
  void landed(std::uint64_t id, Index index, Term term) {
    requests_[id].index = index;
    requests_[id].term = term;
  }
  /// A completion callback ran.
  void completed(std::uint64_t id, std::error_code ec);
  /// After a driver's step (and the safety checker's look at it): every
  /// `dropped` given in the step is justified by a committed entry.
  void after_step();
  /// Node n crashed in generation gen: its unanswered requests are owed nothing.
  void abandon(std::size_t n, std::uint64_t gen);
  /// At the end of the run: every answer owed came, and no success or drop
  /// contradicts what was committed.
  void check() const;
  std::size_t count() const { return requests_.size(); }

 private:
  struct Request {
    RequestKind kind = RequestKind::propose;
    std::size_t node = 0;
    std::uint64_t gen = 0;
    Time issued = 0;
    int completions = 0;
    bool abandoned = false;  // the node crashed: no answer is owed
    Index index;             // propose: where it landed
    Term term;
    bool succeeded = false, dropped = false;
  };

  World& w_;
  const Cluster& cluster_;
  std::vector<Request> requests_;
  std::vector<std::uint64_t> dropped_in_step_;  // ids answered `dropped` since the last after_step()
};

}  // namespace raftkit::sim

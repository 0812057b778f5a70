// sim/clients.hpp — the simulated clients (what they ask is in workload.hpp).
//
// Each client keeps one operation in flight: it picks a node it believes is
// the leader, sends, waits (with a timeout), follows not-leader hints, and
// records every operation in a history for the linearizability check. A
// proposal's answer comes from the node it was sent to, when that node
// applies the proposal's index: with the proposal's term it succeeded (the
// output is the state machine's), with another term it definitely failed.
// Reads use ReadIndex or the log. Requests and answers travel with their
// own random delay, not through the Network.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "sim/world.hpp"
#include "sim/workload.hpp"

namespace raftkit::sim {

class Cluster;
class Callers;

class Clients {
 public:
  Clients(World& world, Cluster& cluster, Callers& callers) : w_(world), cluster_(cluster), callers_(callers) {}
  /// Creates `count` clients, each with a random first target, and stops
  /// them issuing new operations at `stop_at`.
  void create(int count, Time stop_at);
  /// Schedules every client's first operation.
  void begin();

  void on(const ev::ClientNext& e) { next(clients_[static_cast<std::size_t>(e.client)]); }
  void on(const ev::ClientArrive& e);
  void on(const ev::ClientReply& e);
  void on(const ev::ClientTimeout& e);

  std::vector<OpRecord>& history() { return ops_; }

 private:
  struct Client {
    int id = 0;
    std::size_t target = 0;
    std::optional<std::uint64_t> op;  // in flight
    std::int64_t last_reg = 0;
    std::uint64_t seq = 0;
  };
  struct Packet {
    int client = 0;
    std::uint64_t op = 0;
    OpStatus status = OpStatus::pending;  // replies: ok or failed
    OpOutput output;
    NodeId hint;
  };

  void next(Client& c);
  OpRecord draw_operation(Client& c);
  void arrive(std::size_t n, const Packet& p);
  void reply(std::size_t n, const Packet& p);
  void retarget(Client& c, NodeId hint);
  std::uint32_t pool(const Packet& p);
  Packet take(std::uint32_t slot);
  Time delay();

  World& w_;
  Cluster& cluster_;
  Callers& callers_;
  std::vector<Client> clients_;
  std::vector<OpRecord> ops_;
  Time stop_at_ = 0;
  // Lease seeds: spells when every client only reads (see draw_operation).
  Time read_only_until_ = 0, next_read_only_at_ = 0;
  std::vector<Packet> packet_pool_;
  std::vector<std::uint32_t> packet_free_;
};

}  // namespace raftkit::sim

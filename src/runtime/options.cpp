#include "raftkit/options.hpp"

#include <fmt/format.h>

namespace raftkit {

Options Options::from_peers(NodeId id, std::map<NodeId, std::string> peers) {
  Options o;
  o.id = id;
  o.peers = std::move(peers);
  o.protocol.seed = id.value;
  return o;
}

ProtocolOptions Options::core_options() const {
  ProtocolOptions p = protocol;
  p.id = id;
  p.initial_voters.clear();
  for (const auto& [peer, address] : peers) p.initial_voters.push_back(peer);
  p.initial_addresses = peers;
  p.bootstrap = bootstrap;
  p.force_new_cluster = force_new_cluster && accept_data_loss;
  return p;
}

std::string Options::validate() const {
  if (id.is_none()) return "id must be nonzero";
  if (peers.empty()) return "peers must list every voter, this node included";
  if (!peers.count(id)) {
    if (bootstrap)
      return fmt::format("peers must include this node (id {}): with {} they are the voters of the new cluster, "
                         "and a cluster this node is no voter of is not its to found",
                         id.value, bootstrap_name);
    return fmt::format("peers must include this node (id {})", id.value);
  }
  for (const auto& [peer, address] : peers) {
    if (peer.is_none()) return "peers must not contain node id 0";
    if (address.empty()) return fmt::format("peer {} has no address", peer.value);
  }
  if (cluster_id.empty()) return "cluster_id must not be empty";
  if (force_new_cluster && !accept_data_loss)
    return fmt::format("{} needs {}: a recovery from a lost majority loses the entries a majority committed "
                       "without this node; say that you accept it",
                       force_new_cluster_name, accept_data_loss_name);
  if (accept_data_loss && !force_new_cluster)
    return fmt::format("{} is only meaningful with {}", accept_data_loss_name, force_new_cluster_name);
  if (tick_interval.count() <= 0) return "tick_interval must be positive";
  if (request_timeout.count() <= 0) return "request_timeout must be positive";
  if (membership_timeout.count() <= 0) return "membership_timeout must be positive";
  if (disk_stall_timeout.count() <= 0) return "disk_stall_timeout must be positive";
  if (bootstrap_probe_timeout.count() <= 0) return "bootstrap_probe_timeout must be positive";
  if (disk_full_retry.count() <= 0) return "disk_full_retry must be positive";
  if (max_pending_requests == 0) return "max_pending_requests must be positive";
  if (!logger.has_sink()) return "logger has no sink (use raftkit::Logger::discard() to drop log lines)";
  if (auto p = core_options().validate(); !p.empty()) return "protocol." + p;
  return {};
}

}  // namespace raftkit

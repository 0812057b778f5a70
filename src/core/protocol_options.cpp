#include "raftkit/protocol_options.hpp"

#include <algorithm>

namespace raftkit {

std::string ProtocolOptions::validate() const {
  if (id.is_none()) return "id must be nonzero";
  if (election_ticks < 2) return "election_ticks must be at least 2";
  if (heartbeat_ticks < 1) return "heartbeat_ticks must be at least 1";
  if (heartbeat_ticks >= election_ticks) return "heartbeat_ticks must be less than election_ticks";
  if (lease_reads && !check_quorum) return "lease_reads requires check_quorum";
  if (lease_reads && (lease_margin_ticks < 1 || lease_margin_ticks >= election_ticks))
    return "lease_margin_ticks must be in [1, election_ticks)";
  if (max_entries_per_append == 0) return "max_entries_per_append must be positive";
  if (max_bytes_per_append == 0) return "max_bytes_per_append must be positive";
  if (max_inflight_messages == 0) return "max_inflight_messages must be positive";
  if (max_inflight_bytes == 0) return "max_inflight_bytes must be positive";
  if (max_entry_bytes == 0) return "max_entry_bytes must be positive";
  for (NodeId v : initial_voters)
    if (v.is_none()) return "initial_voters must not contain node id 0";
  auto sorted = initial_voters;
  std::sort(sorted.begin(), sorted.end());
  if (std::adjacent_find(sorted.begin(), sorted.end()) != sorted.end()) return "initial_voters contains a duplicate";
  return {};
}

}  // namespace raftkit

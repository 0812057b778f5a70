// The diagnosis rule of raftkit/diagnose.hpp: a pure function of a NodeStatus.
#include "raftkit/diagnose.hpp"

#include <algorithm>
#include <optional>
#include <set>
#include <vector>

#include <fmt/format.h>

namespace raftkit {

namespace {

using std::chrono::nanoseconds;

bool contains(const std::vector<NodeId>& v, NodeId id) { return std::find(v.begin(), v.end(), id) != v.end(); }

bool member(const Membership& m, NodeId id) {
  return contains(m.voters, id) || contains(m.voters_outgoing, id) || contains(m.learners, id) ||
         contains(m.staging, id);
}

// "node 2", "nodes 2 and 3", "nodes 2, 3 and 4".
std::string node_list(const std::set<NodeId>& ids) {
  std::vector<std::string> names;
  for (NodeId id : ids) names.push_back(fmt::format("{}", id.value));
  if (names.size() == 1) return "node " + names[0];
  std::string out = "nodes ";
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += i + 1 == names.size() ? " and " : ", ";
    out += names[i];
  }
  return out;
}

// When `id` was last heard from; nullopt: never since start.
std::optional<nanoseconds> last_heard(const NodeStatus& s, NodeId id) {
  for (const PeerContact& c : s.contacts)
    if (c.id == id) return c.last_heard;
  return std::nullopt;
}

bool reachable(const NodeStatus& s, NodeId id) {
  if (id == s.id) return true;
  const auto heard = last_heard(s, id);
  return heard && s.now - *heard <= s.contact_timeout;
}

// The voters of `voters` not reachable, if they leave no majority reachable.
std::set<NodeId> quorum_lost(const NodeStatus& s, const std::vector<NodeId>& voters) {
  std::set<NodeId> down;
  for (NodeId v : voters)
    if (!reachable(s, v)) down.insert(v);
  if (voters.empty() || voters.size() - down.size() > voters.size() / 2) return {};
  return down;
}

std::string no_quorum(const NodeStatus& s, const std::set<NodeId>& down) {
  std::optional<nanoseconds> newest;  // the most recent time any of them was heard
  for (NodeId id : down)
    if (auto h = last_heard(s, id); h && (!newest || *h > *newest)) newest = h;
  const std::string nodes = node_list(down);
  if (!newest)
    return fmt::format("no quorum: {} not heard from since this node started {} ago", nodes,
                       duration_text(s.now - s.started_at));
  return fmt::format("no quorum: {} unreachable for {}", nodes, duration_text(s.now - *newest));
}

}  // namespace

std::string duration_text(nanoseconds d) {
  using namespace std::chrono;
  if (d < nanoseconds::zero()) d = nanoseconds::zero();
  if (d < seconds(1)) return fmt::format("{} ms", duration_cast<milliseconds>(d).count());
  return fmt::format("{} s", duration_cast<seconds>(d).count());
}

std::string diagnose(const NodeStatus& s) {
  if (s.role == NodeRole::stopped) return s.failure.empty() ? "stopped" : "stopped: " + s.failure;
  if (s.role == NodeRole::starting) return "starting: the node is not running yet";
  if (s.disk_full_since)
    return fmt::format("disk full for {}: log writes fail with no_space; this node refuses writes and neither leads, "
                       "votes nor acknowledges until space is freed (it retries by itself)",
                       duration_text(s.now - *s.disk_full_since));
  if (s.role == NodeRole::leader || !s.leader.is_none()) return {};
  if (s.disk_write_since && s.now - *s.disk_write_since >= s.disk_stall_timeout)
    return fmt::format("disk stalled for {}: a log write has not finished", duration_text(s.now - *s.disk_write_since));
  const Membership& m = s.membership;
  if (!member(m, s.id)) return "not a member yet: waiting for a leader to add this node";
  if (s.replacing) return "replacing its lost log: waiting for a leader to swap this node in";
  std::set<NodeId> down = quorum_lost(s, m.voters);
  const std::set<NodeId> old_down = quorum_lost(s, m.voters_outgoing);
  down.insert(old_down.begin(), old_down.end());
  if (!down.empty()) return no_quorum(s, down);
  if (!contains(m.voters, s.id) && !contains(m.voters_outgoing, s.id))
    return fmt::format("not a voter: waiting to hear from the leader (term {})", s.term.value);
  return fmt::format("electing: a majority is reachable, no leader yet in term {}", s.term.value);
}

}  // namespace raftkit

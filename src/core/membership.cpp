// core/membership.cpp — see membership.hpp.
#include "core/membership.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cstring>
#include <set>

namespace raftkit::core {
namespace {

// 1: voters, learners, outgoing, staging, addresses (every member the
//    bootstrap incarnation); 2: then the incoming and outgoing incarnations;
// 3: then the generation (written only when nonzero, so configurations of a
//    cluster never recovered keep their format-2 bytes).
constexpr std::uint8_t kFormatWithoutIncarnations = 1;
constexpr std::uint8_t kFormatWithIncarnations = 2;
constexpr std::uint8_t kFormat = 3;
constexpr std::size_t kMaxMembers = 4096;      // far above any sane cluster
constexpr std::size_t kMaxAddressBytes = 1024;  // a host:port, a URL at most

bool contains(const std::vector<NodeId>& v, NodeId id) { return std::find(v.begin(), v.end(), id) != v.end(); }

void put32(Bytes& out, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}
void put64(Bytes& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

struct Reader {
  BytesView in;
  std::size_t pos = 0;
  bool ok = true;
  std::uint64_t uint(int n) {
    if (!ok || in.size() - pos < static_cast<std::size_t>(n)) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= std::uint64_t{in[pos + static_cast<std::size_t>(i)]} << (8 * i);
    pos += static_cast<std::size_t>(n);
    return v;
  }
  bool incarnations(std::map<NodeId, std::uint64_t>& out) {
    const std::uint64_t n = uint(4);
    if (!ok || n > kMaxMembers || (in.size() - pos) / 16 < n) return ok = false;
    for (std::uint64_t i = 0; i < n && ok; ++i) {
      const NodeId id{uint(8)};
      if (!out.emplace(id, uint(8)).second) ok = false;
    }
    return ok;
  }
  std::vector<NodeId> ids() {
    const std::uint64_t n = uint(4);
    if (!ok || n > kMaxMembers || (in.size() - pos) / 8 < n) {
      ok = false;
      return {};
    }
    std::vector<NodeId> out;
    for (std::uint64_t i = 0; i < n; ++i) out.push_back(NodeId{uint(8)});
    return out;
  }
};

}  // namespace

std::vector<NodeId> members_of(const Membership& m) {
  std::vector<NodeId> all = m.voters;
  for (const auto* v : {&m.voters_outgoing, &m.learners, &m.staging}) all.insert(all.end(), v->begin(), v->end());
  std::sort(all.begin(), all.end());
  all.erase(std::unique(all.begin(), all.end()), all.end());
  return all;
}

bool is_voter(const Membership& m, NodeId id) { return contains(m.voters, id) || contains(m.voters_outgoing, id); }

bool is_voter(const Membership& m, NodeId id, std::uint64_t incarnation) {
  return (contains(m.voters, id) && incarnation_of(m, id) == incarnation) ||
         (contains(m.voters_outgoing, id) && incarnation_of(m, id, true) == incarnation);
}

void set_incarnation(Membership& m, NodeId id, std::uint64_t incarnation, bool outgoing) {
  auto& map = outgoing ? m.outgoing_incarnations : m.incarnations;
  if (incarnation == kBootstrapIncarnation) {
    map.erase(id);
  } else {
    map[id] = incarnation;
  }
}

bool same_voters(const Membership& a, const Membership& b) {
  if (a.voters.size() != b.voters.size()) return false;
  for (NodeId v : a.voters)
    if (!contains(b.voters, v) || incarnation_of(a, v) != incarnation_of(b, v)) return false;
  return true;
}

bool is_member(const Membership& m, NodeId id) {
  return is_voter(m, id) || contains(m.learners, id) || contains(m.staging, id);
}

std::string membership_problem(const Membership& m) {
  if (m.voters.empty()) return "no voters";
  std::set<NodeId> seen;
  for (const auto* v : {&m.voters, &m.learners, &m.staging}) {
    for (NodeId id : *v) {
      if (id.is_none()) return "node id 0";
      if (!seen.insert(id).second) return fmt::format("node {} listed twice", id);
    }
  }
  std::set<NodeId> outgoing;
  for (NodeId id : m.voters_outgoing) {
    if (id.is_none()) return "node id 0";
    if (!outgoing.insert(id).second) return fmt::format("node {} listed twice", id);
    // A voter being removed may stay as a learner; it cannot be staged.
    if (contains(m.staging, id)) return fmt::format("node {} is both an outgoing voter and staging", id);
  }
  for (const auto& [id, address] : m.addresses) {
    if (!is_member(m, id)) return fmt::format("address for node {}, which is not a member", id);
    if (address.size() > kMaxAddressBytes) return fmt::format("address of node {} too long", id);
  }
  for (const auto& [id, incarnation] : m.incarnations) {
    if (!contains(m.voters, id) && !contains(m.learners, id) && !contains(m.staging, id))
      return fmt::format("incarnation for node {}, which is not an incoming member", id);
    if (incarnation == 0 || incarnation == kBootstrapIncarnation)
      return fmt::format("incarnation {} listed for node {}", incarnation, id);
  }
  for (const auto& [id, incarnation] : m.outgoing_incarnations) {
    if (!contains(m.voters_outgoing, id)) return fmt::format("outgoing incarnation for node {}, which is not an outgoing voter", id);
    if (incarnation == 0 || incarnation == kBootstrapIncarnation)
      return fmt::format("incarnation {} listed for node {}", incarnation, id);
  }
  return {};
}

Bytes encode_membership(const Membership& m) {
  Bytes out;
  out.push_back(m.generation != 0 ? kFormat : kFormatWithIncarnations);
  for (const auto* v : {&m.voters, &m.learners, &m.voters_outgoing, &m.staging}) {
    put32(out, static_cast<std::uint32_t>(v->size()));
    for (NodeId id : *v) put64(out, id.value);
  }
  put32(out, static_cast<std::uint32_t>(m.addresses.size()));
  for (const auto& [id, address] : m.addresses) {
    put64(out, id.value);
    put32(out, static_cast<std::uint32_t>(address.size()));
    out.insert(out.end(), address.begin(), address.end());
  }
  for (const auto* map : {&m.incarnations, &m.outgoing_incarnations}) {
    put32(out, static_cast<std::uint32_t>(map->size()));
    for (const auto& [id, incarnation] : *map) {
      put64(out, id.value);
      put64(out, incarnation);
    }
  }
  if (m.generation != 0) put64(out, m.generation);
  return out;
}

std::optional<Membership> decode_membership(BytesView bytes) {
  Reader r{bytes};
  const std::uint64_t format = r.uint(1);
  if (format != kFormat && format != kFormatWithIncarnations && format != kFormatWithoutIncarnations)
    return std::nullopt;
  Membership m;
  m.voters = r.ids();
  m.learners = r.ids();
  m.voters_outgoing = r.ids();
  m.staging = r.ids();
  const std::uint64_t n = r.uint(4);
  if (!r.ok || n > kMaxMembers) return std::nullopt;
  for (std::uint64_t i = 0; i < n && r.ok; ++i) {
    const NodeId id{r.uint(8)};
    const std::uint64_t len = r.uint(4);
    if (!r.ok || len > kMaxAddressBytes || bytes.size() - r.pos < len) return std::nullopt;
    std::string address(reinterpret_cast<const char*>(bytes.data() + r.pos), len);
    r.pos += len;
    if (!m.addresses.emplace(id, std::move(address)).second) return std::nullopt;
  }
  if (format >= kFormatWithIncarnations &&
      !(r.incarnations(m.incarnations) && r.incarnations(m.outgoing_incarnations)))
    return std::nullopt;
  if (format == kFormat && (m.generation = r.uint(8)) == 0) return std::nullopt;
  if (!r.ok || r.pos != bytes.size() || !membership_problem(m).empty()) return std::nullopt;
  return m;
}

Membership enter_joint(const Membership& current, const Membership& target) {
  Membership j = target;
  j.voters_outgoing = current.voters;
  j.outgoing_incarnations.clear();
  for (NodeId v : current.voters) set_incarnation(j, v, incarnation_of(current, v), true);
  // The outgoing voters must stay reachable until the change completes.
  for (const auto& [id, address] : current.addresses)
    if (contains(j.voters_outgoing, id)) j.addresses.emplace(id, address);
  return j;
}

Membership leave_joint(const Membership& m) {
  Membership out = m;
  out.voters_outgoing.clear();
  out.outgoing_incarnations.clear();
  for (auto it = out.addresses.begin(); it != out.addresses.end();) {
    it = is_member(out, it->first) ? std::next(it) : out.addresses.erase(it);
  }
  return out;
}

std::string describe(const Membership& m) {
  auto ids = [](const std::vector<NodeId>& v) {
    std::vector<std::uint64_t> raw;
    for (NodeId id : v) raw.push_back(id.value);
    return fmt::format("{{{}}}", fmt::join(raw, ","));
  };
  std::string s = fmt::format("voters {}", ids(m.voters));
  if (m.joint()) s += fmt::format(" outgoing {}", ids(m.voters_outgoing));
  if (!m.learners.empty()) s += fmt::format(" learners {}", ids(m.learners));
  if (!m.staging.empty()) s += fmt::format(" staging {}", ids(m.staging));
  auto incarnations = [](const std::map<NodeId, std::uint64_t>& map) {
    std::vector<std::string> parts;
    for (const auto& [id, incarnation] : map) parts.push_back(fmt::format("{}:{:x}", id.value, incarnation));
    return fmt::format("{{{}}}", fmt::join(parts, ","));
  };
  if (!m.incarnations.empty()) s += fmt::format(" incarnations {}", incarnations(m.incarnations));
  if (!m.outgoing_incarnations.empty()) s += fmt::format(" outgoing incarnations {}", incarnations(m.outgoing_incarnations));
  if (m.generation != 0) s += fmt::format(" generation {}", m.generation);
  return s;
}

}  // namespace raftkit::core

// transport/handshake.cpp — see handshake.hpp.
#include "transport/handshake.hpp"

#include <fmt/format.h>

namespace raftkit::transport {

std::string generation_refusal(NodeId other, std::uint64_t other_generation, NodeId self, std::uint64_t generation,
                               std::string_view cluster_id) {
  if (other_generation == 0 || generation == 0 || other_generation == generation) return {};
  if (other_generation < generation)
    return fmt::format("node {} is from generation {} of cluster '{}'; this cluster was recovered from a lost "
                       "majority (force-new-cluster) and node {} is at generation {}: wipe node {} and add it as a "
                       "new member",
                       other, other_generation, cluster_id, self, generation, other);
  return fmt::format("node {} is at generation {} of cluster '{}' but this node ({}) is from generation {}: the "
                     "cluster was recovered from a lost majority (force-new-cluster) without this node; wipe node {} "
                     "and add it as a new member",
                     other, other_generation, cluster_id, self, generation, self);
}

std::string handshake_refusal(const Handshake& hello, std::string_view cluster_id, NodeId self,
                              std::uint64_t generation) {
  if (hello.protocol_version != kProtocolVersion)
    return fmt::format("protocol version {} (this node speaks {})", hello.protocol_version, kProtocolVersion);
  if (hello.cluster_id != cluster_id)
    return fmt::format("cluster id '{}' is not this cluster's ('{}')", hello.cluster_id, cluster_id);
  if (hello.expected_peer != self)
    return fmt::format("node {} dialled node {}, but this is node {}", hello.node, hello.expected_peer, self);
  if (hello.node.is_none() || hello.node == self) return fmt::format("unknown node id {}", hello.node);
  return generation_refusal(hello.node, hello.generation, self, generation, cluster_id);
}

std::string reply_refusal(const FramePayload& answer, NodeId dialled) {
  const auto* reply = std::get_if<HandshakeReply>(&answer);
  if (!reply) return "expected a handshake reply";
  if (!reply->accepted) return fmt::format("refused our handshake: {}", reply->reason);
  if (reply->node != dialled)
    return fmt::format("dialled node {} but node {} answered; check the peer list", dialled, reply->node);
  return {};
}

std::string certified_node(const std::vector<CertIdentity>& identities, std::string_view cluster_id, NodeId& node) {
  std::string other_cluster;
  for (const auto& id : identities) {
    if (id.kind != CertIdentity::Kind::node) continue;
    if (id.cluster_id == cluster_id) {
      node = id.node;
      return {};
    }
    other_cluster = id.cluster_id;
  }
  if (!other_cluster.empty())
    return fmt::format("certificate is for cluster '{}', not '{}'", other_cluster, cluster_id);
  return "certificate names no raftkit node (expected a subjectAltName URI raftkit://<cluster>/node/<id>)";
}

std::string dialled_certificate_refusal(const std::vector<CertIdentity>& identities, std::string_view cluster_id,
                                        NodeId dialled) {
  NodeId named;
  if (auto why = certified_node(identities, cluster_id, named); !why.empty()) return why;
  if (named != dialled) return fmt::format("its certificate names node {}", named);
  return {};
}

std::string claim_refusal(NodeId claimed, NodeId certified) {
  if (claimed == certified) return {};
  return fmt::format("the handshake claims node {} but the certificate names node {}", claimed, certified);
}

std::string own_certificate_problem(const std::vector<CertIdentity>& own, std::string_view cluster_id, NodeId self,
                                    std::string_view cert_file) {
  for (const auto& id : own)
    if (id.kind == CertIdentity::Kind::node && id.cluster_id == cluster_id && id.node == self) return {};
  return fmt::format("the certificate in {} does not name this node ({}) in its subjectAltName", cert_file,
                     node_identity_uri(cluster_id, self));
}

}  // namespace raftkit::transport

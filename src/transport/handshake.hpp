// transport/handshake.hpp — the handshake's rules as pure functions: what
// the accepting side refuses, what the dialling side refuses, and what the
// TLS identities must say. No sockets: each takes what was received and
// returns the reason to refuse it, or an empty string to go on. The
// connection code (tcp_transport.cpp, peer_link.cpp) runs the exchange and
// logs the reasons; tests/unit/transport/handshake_test.cpp checks the rules.
//
// The exchange: the dialling side sends Handshake{cluster id, its node id,
// protocol version, the node it believes it dialled, its generation}; the
// accepting side answers HandshakeReply{accepted, its node id, reason}. With TLS, both
// sides first check the certificate the other presented: it must name a
// node of this cluster (raftkit://CLUSTER/node/ID), on the dialling side the
// node it dialled, on the accepting side the node the Handshake claims.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "raftkit/tls.hpp"
#include "raftkit/types.hpp"
#include "transport/codec.hpp"

namespace raftkit::transport {

/// Accepting side: why `hello` is refused by node `self` of `cluster_id`, or
/// empty. Any node id of the cluster but this node's own is heard: the
/// configuration decides whom a node dials, not whom it hears (a node
/// catching up from an old configuration must hear the leader that joined
/// later).
/// `generation` is this node's cluster generation (0: none yet): a node of
/// another nonzero generation is refused (generation_refusal()).
std::string handshake_refusal(const Handshake& hello, std::string_view cluster_id, NodeId self,
                              std::uint64_t generation = 0);

/// Dialling side: why the answer to a handshake sent to `dialled` is
/// refused, or empty. (The generations are compared by the accepting side,
/// which knows both: its reason then names the node to wipe.)
std::string reply_refusal(const FramePayload& answer, NodeId dialled);

/// Why node `self` at `generation` of `cluster_id` refuses node `other` at
/// `other_generation`, or empty: both nonzero and different means one of
/// them is from before a recovery from a lost majority (force_new_cluster),
/// and the two must never exchange a message. The reason says which one to
/// wipe and add again as a new member. 0 (a new node, or a peer that does
/// not say) is never refused here.
std::string generation_refusal(NodeId other, std::uint64_t other_generation, NodeId self, std::uint64_t generation,
                               std::string_view cluster_id);

/// The node of `cluster_id` that a certificate's identities name, or the
/// reason there is none (`node` is then left alone).
std::string certified_node(const std::vector<CertIdentity>& identities, std::string_view cluster_id, NodeId& node);

/// Dialling side, TLS: why the certificate of the node dialled as `dialled`
/// is refused, or empty.
std::string dialled_certificate_refusal(const std::vector<CertIdentity>& identities, std::string_view cluster_id,
                                        NodeId dialled);

/// Accepting side, TLS: why a handshake claiming `claimed` over a connection
/// whose certificate names `certified` is refused, or empty.
std::string claim_refusal(NodeId claimed, NodeId certified);

/// Why this node's own certificate (`own`, loaded from `cert_file`) does not
/// name it, node `self` of `cluster_id`, or empty.
std::string own_certificate_problem(const std::vector<CertIdentity>& own, std::string_view cluster_id, NodeId self,
                                    std::string_view cert_file);

}  // namespace raftkit::transport

// The handshake's rules without sockets (transport/handshake.hpp): what the
// accepting side refuses, what the dialling side refuses, and what the TLS
// identities must say. The exchanges over real sockets are in tcp_test.cpp
// and tls_test.cpp.
#include <catch2/catch.hpp>

#include "transport/handshake.hpp"

using namespace raftkit;
using namespace raftkit::transport;

namespace {

Handshake hello(std::uint64_t from, std::uint64_t dialled, std::string cluster = "c1") {
  return Handshake{std::move(cluster), NodeId{from}, kProtocolVersion, NodeId{dialled}};
}

CertIdentity node_cert(std::string cluster, std::uint64_t id) {
  CertIdentity c;
  c.kind = CertIdentity::Kind::node;
  c.cluster_id = std::move(cluster);
  c.node = NodeId{id};
  return c;
}

CertIdentity client_cert(std::string cluster) {
  CertIdentity c;
  c.kind = CertIdentity::Kind::client;
  c.cluster_id = std::move(cluster);
  c.client_name = "alice";
  c.role = ClientRole::admin;
  return c;
}

bool mentions(const std::string& text, std::string_view what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("handshake: any node of the cluster is heard, whatever this node's peer list says", "[handshake]") {
  CHECK(handshake_refusal(hello(2, 1), "c1", NodeId{1}).empty());
  CHECK(handshake_refusal(hello(7, 1), "c1", NodeId{1}).empty());  // a leader that joined after this node's config
}

TEST_CASE("handshake: another cluster, another protocol version, a misdialled node or a bad id is refused",
          "[handshake]") {
  CHECK(mentions(handshake_refusal(hello(2, 1, "c2"), "c1", NodeId{1}), "cluster id 'c2'"));
  Handshake old = hello(2, 1);
  old.protocol_version = kProtocolVersion + 1;
  CHECK(mentions(handshake_refusal(old, "c1", NodeId{1}), "protocol version"));
  CHECK(mentions(handshake_refusal(hello(2, 3), "c1", NodeId{1}), "dialled node 3, but this is node 1"));
  CHECK(mentions(handshake_refusal(hello(1, 1), "c1", NodeId{1}), "unknown node id 1"));  // itself
  CHECK(mentions(handshake_refusal(hello(0, 1), "c1", NodeId{1}), "unknown node id"));    // none
}

TEST_CASE("handshake: the dialling side accepts only an accepting reply from the node it dialled", "[handshake]") {
  CHECK(reply_refusal(FramePayload{HandshakeReply{true, NodeId{2}, {}, false, {}, {}}}, NodeId{2}).empty());
  CHECK(mentions(reply_refusal(FramePayload{HandshakeReply{false, NodeId{2}, "cluster id 'x'", false, {}, {}}}, NodeId{2}),
                 "refused our handshake: cluster id 'x'"));
  CHECK(mentions(reply_refusal(FramePayload{HandshakeReply{true, NodeId{3}, {}, false, {}, {}}}, NodeId{2}),
                 "dialled node 2 but node 3 answered"));
  CHECK(mentions(reply_refusal(FramePayload{hello(2, 1)}, NodeId{2}), "expected a handshake reply"));
}

TEST_CASE("handshake: a certificate must name a node of this cluster", "[handshake][tls]") {
  NodeId node;
  CHECK(certified_node({client_cert("c1"), node_cert("c1", 4)}, "c1", node).empty());
  CHECK(node == NodeId{4});
  NodeId untouched{9};
  CHECK(mentions(certified_node({node_cert("c2", 4)}, "c1", untouched), "cluster 'c2', not 'c1'"));
  CHECK(mentions(certified_node({client_cert("c1")}, "c1", untouched), "names no raftkit node"));
  CHECK(mentions(certified_node({}, "c1", untouched), "names no raftkit node"));
  CHECK(untouched == NodeId{9});
}

TEST_CASE("handshake: the dialled node's certificate must name the node dialled", "[handshake][tls]") {
  CHECK(dialled_certificate_refusal({node_cert("c1", 2)}, "c1", NodeId{2}).empty());
  CHECK(mentions(dialled_certificate_refusal({node_cert("c1", 3)}, "c1", NodeId{2}), "names node 3"));
  CHECK(mentions(dialled_certificate_refusal({node_cert("c2", 2)}, "c1", NodeId{2}), "cluster 'c2'"));
}

TEST_CASE("handshake: the node claimed in the handshake must be the node certified", "[handshake][tls]") {
  CHECK(claim_refusal(NodeId{3}, NodeId{3}).empty());
  CHECK(mentions(claim_refusal(NodeId{3}, NodeId{2}), "claims node 3 but the certificate names node 2"));
}

TEST_CASE("handshake: a node's own certificate must name it", "[handshake][tls]") {
  CHECK(own_certificate_problem({node_cert("c1", 1)}, "c1", NodeId{1}, "n1.pem").empty());
  const auto why = own_certificate_problem({node_cert("c1", 2), client_cert("c1")}, "c1", NodeId{1}, "n1.pem");
  CHECK(mentions(why, "n1.pem"));
  CHECK(mentions(why, "raftkit://c1/node/1"));
}

TEST_CASE("handshake: a node of another cluster generation is refused, saying which node to wipe", "[handshake]") {
  Handshake old = hello(2, 1);
  old.generation = 1;
  // This node was recovered (generation 2): the old member 2 is told to be wiped.
  const std::string why = handshake_refusal(old, "c1", NodeId{1}, 2);
  CHECK(mentions(why, "node 2 is from generation 1 of cluster 'c1'"));
  CHECK(mentions(why, "node 1 is at generation 2"));
  CHECK(mentions(why, "wipe node 2 and add it as a new member"));
  // The other way round: this node (1) is the old one.
  Handshake newer = hello(2, 1);
  newer.generation = 3;
  CHECK(mentions(handshake_refusal(newer, "c1", NodeId{1}, 2), "wipe node 1 and add it as a new member"));
  // Same generation, or a side that has none yet (a new node), is heard.
  CHECK(handshake_refusal(old, "c1", NodeId{1}, 1).empty());
  CHECK(handshake_refusal(hello(2, 1), "c1", NodeId{1}, 2).empty());
  CHECK(handshake_refusal(old, "c1", NodeId{1}, 0).empty());
}

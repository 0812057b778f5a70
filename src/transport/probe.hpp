// transport/probe.hpp — asking the peers what they say of themselves before
// a bootstrap (Transport::probe_peers for TCP).
//
// Each peer is dialled once, all at once, on an io_context of the probe's
// own run on the calling thread (the node's executor may not run yet: a
// server calls Node::start() before it runs its io_context). The exchange
// is the ordinary handshake (TLS and its identity checks included, see
// handshake.hpp): Handshake out, HandshakeReply in, whose member, leader
// and commit fields carry the peer's ClusterStanding; then the connection
// is closed. The accepting side sees an ordinary connection that ends.
// A peer that cannot be reached, or breaks the connection, is dialled
// again every 100 ms (a cluster restarted at once: its nodes start
// listening one after the other); an answer or a refusal ends it. One
// deadline bounds everything: a peer that has not answered by then is
// reported not reached, with the last reason.
#pragma once

#include <chrono>
#include <map>
#include <string>
#include <vector>

#include "raftkit/tcp_transport.hpp"
#include "transport/codec.hpp"

namespace raftkit::transport {

/// The answers of every node of `peers` but options.self, in id order.
std::vector<PeerStanding> probe_standings(const TcpTransportOptions& options,
                                          const std::map<NodeId, std::string>& peers, std::chrono::milliseconds wait);

/// Reads one peer's answer from a handshake reply: reached and its
/// standing, or the reason it is refused (reply_refusal).
void read_standing(const FramePayload& answer, PeerStanding& out);

}  // namespace raftkit::transport

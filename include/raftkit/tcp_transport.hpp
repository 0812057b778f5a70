// raftkit/tcp_transport.hpp — the Transport over TCP, Cap'n Proto frames.
//
// Connections. Each node dials one persistent outbound connection per peer
// and sends only on it; it receives only on the connections its peers dialled
// in. Two one-way connections per pair keep the state machine of a
// connection trivial (no tie-breaking of simultaneous dials) and let each
// side reconnect on its own schedule.
//
// Handshake. The dialling side's first frame is a Handshake: cluster id,
// its node id, protocol version and the id it believes it dialled. The
// accepting side refuses — with a log line on stderr naming the peer address
// and the reason, a HandshakeReply carrying the reason, and a close — a peer
// of another cluster, an unknown node id, another protocol version, or a dial
// meant for another node. After the handshake, every frame must carry a
// Message from that node to this one; anything else, a frame over the size
// limit, or bytes that do not decode, closes that connection (logged,
// counted in stats().protocol_errors). Never the process.
//
// Reconnect. A failed dial or a broken connection reports the peer to the
// unreachable handler and retries after a backoff that starts at
// reconnect_initial, doubles per consecutive failure up to reconnect_max, and
// is jittered down to half its value so restarted clusters do not dial in
// lockstep. A successful handshake resets it.
//
// Queues. Each peer has a bounded queue of encoded frames (send_queue_frames).
// When it is full the OLDEST frame is dropped: Raft's newest messages carry
// the newest term, commit and progress, and everything dropped is retried by
// the protocol. A failed dial also empties the queue (counted as drops), so a
// dead peer does not accumulate stale traffic. The writer takes up to
// max_frames_per_write frames (and about 1 MiB) at a time and writes them with
// one gathered write; entry payloads are written from the message's own
// buffers (see the codec).
//
// TLS is not implemented yet (see the note in tcp_transport.cpp): use it on a
// trusted network or through a tunnel.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "raftkit/transport.hpp"

namespace raftkit {

struct TcpTransportOptions {
  NodeId self;                            ///< nonzero
  std::string cluster_id;                 ///< non-empty, <= 256 bytes; must match the peers'
  std::string listen_host = "127.0.0.1";  ///< an IP address literal
  std::uint16_t listen_port = 0;          ///< 0: an ephemeral port, see local_port()
  std::map<NodeId, std::string> peers;    ///< "host:port" (or "[v6]:port") of every other node
  std::size_t max_frame_bytes = std::size_t{64} << 20;  ///< largest frame body sent or accepted
  std::size_t send_queue_frames = 1024;   ///< per peer; oldest dropped beyond
  std::size_t max_frames_per_write = 64;  ///< coalescing bound of one gathered write
  std::chrono::milliseconds reconnect_initial{50};
  std::chrono::milliseconds reconnect_max{2000};
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds handshake_timeout{2000};
};

class TcpTransport : public Transport {
 public:
  /// The bound listening port, valid once start() succeeded (0 before).
  virtual std::uint16_t local_port() const = 0;
  /// Adds a peer or changes its address (then reconnects). Thread-safe; takes
  /// effect on the transport's strand. Inbound handshakes accept only peers
  /// known at that moment.
  virtual void set_peer(NodeId id, std::string host_port) = 0;
  /// Number of peers whose outbound connection completed its handshake.
  virtual std::size_t connected_peers() const = 0;
};

/// Creates a TCP transport whose I/O and handlers run on a strand of
/// `executor`. Options are checked by start().
std::shared_ptr<TcpTransport> make_tcp_transport(boost::asio::any_io_executor executor, TcpTransportOptions options);

}  // namespace raftkit

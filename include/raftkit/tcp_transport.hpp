// raftkit/tcp_transport.hpp — the Transport over TCP, Cap'n Proto frames.
//
// Connections. Each node dials one persistent outbound connection per peer
// (the members of its configuration, see update_peers) and sends on it; it
// receives on the connections its peers dialled in. Two one-way connections
// per pair keep the state machine of a connection trivial (no tie-breaking of
// simultaneous dials) and let each side reconnect on its own schedule.
// Membership tells the transport whom to dial, not whom to hear: any node of
// the cluster that passes the handshake is heard, and a node this node does
// not dial (a leader that joined after the configuration this node has
// applied so far) is answered over the connection it dialled in on.
//
// Handshake. The dialling side's first frame is a Handshake: cluster id,
// its node id, protocol version and the id it believes it dialled. The
// accepting side refuses — with a log line on stderr naming the peer address
// and the reason, a HandshakeReply carrying the reason, and a close — a peer
// of another cluster, this node's own id (or none), another protocol version,
// or a dial meant for another node. After the handshake, every frame must carry a
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
// Snapshots stream. A snapshot message (with its data) is not sent as one
// frame: the sender streams the data in chunk frames of snapshot_chunk_bytes,
// at most snapshot_window_chunks ahead of the receiver's acknowledgements
// (flow control), each chunk carrying the snapshot's metadata, a transfer id,
// its offset, the total length and the CRC-32C of the whole data. The
// receiver appends chunks in order, answers each with the count of bytes it
// holds (an out-of-order chunk is refused and answered with a "gap", which
// makes the sender rewind), and hands the message to the node only once the
// whole data is there and its checksum matches. A lost connection resumes at
// the last acknowledged offset when it is dialled again; a new transfer (a
// new snapshot, or a new leader in a later term) replaces a partial one.
// Streams are per group (Message::group, raftkit::Host): the groups a
// process runs stream side by side, each replacing only its own.
// The outcome (acknowledged complete, or failed: checksum, refusal, stall,
// unreachable peer) is reported through the snapshot status handler
// (Transport::set_snapshot_status_handler), which the runtime passes on to
// the core (report_snapshot).
//
// TLS (options.tls, see raftkit/tls.hpp). With the three files set, every
// connection is mutual TLS 1.3 over the same frames. The dialling side checks
// that the certificate it is shown names the node it dialled, in this
// cluster; the accepting side checks that the certificate names a node of
// this cluster and that the node id claimed in the Handshake frame is that
// node. A failed check closes the connection with one log line naming the
// check and the address. After that the existing rule (every message's `from`
// is the handshake's node) means a node cannot speak for another. Without
// TLS the node ids in the handshake are claims, not proofs: start() refuses a
// non-loopback listen address unless allow_insecure is set, and logs a
// warning when it is.
//
// Hostile-input limits on the listening port: a connection must complete the
// TLS and Raft handshakes within handshake_timeout; an accepted connection
// that delivers no frame for idle_timeout is closed (a dialling node closes
// its own connection after idle_timeout / 2 with nothing to send, without
// reporting the peer unreachable, and dials again when it has something, so
// live peers with the same idle_timeout are never cut); at most
// max_inbound_connections are open at once, at most
// max_connections_per_address from one IP address; beyond, a new connection
// is closed at once (counted in refused_connections(), logged at most once
// a second). Frame sizes are checked before any allocation.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include <boost/asio/any_io_executor.hpp>

#include "raftkit/logger.hpp"
#include "raftkit/options.hpp"
#include "raftkit/tls.hpp"
#include "raftkit/transport.hpp"

namespace raftkit {

/// Everything the TCP transport needs (see the file comment).
struct TcpTransportOptions {
  /// The options of a node's transport: self, cluster id, peers, listen
  /// address (this node's entry in `node.peers`) and the logger come from
  /// the node's Options; TLS and the limits keep their defaults.
  static TcpTransportOptions from(const Options& node);

  NodeId self;                            ///< nonzero
  std::string cluster_id;                 ///< non-empty, <= 256 bytes; must match the peers'
  std::string listen_host = "127.0.0.1";  ///< an IP address literal
  std::uint16_t listen_port = 0;          ///< 0: an ephemeral port, see local_port()
  std::map<NodeId, std::string> peers;    ///< "host:port" (or "[v6]:port") of every other node
  Logger logger;                          ///< refusals and connection trouble, at warn level (default: stderr)
  std::size_t max_frame_bytes = std::size_t{64} << 20;  ///< largest frame body sent or accepted
  std::size_t send_queue_frames = 1024;   ///< per peer; oldest dropped beyond
  std::size_t max_frames_per_write = 64;  ///< coalescing bound of one gathered write
  std::chrono::milliseconds reconnect_initial{50};  ///< first reconnect delay (jittered, doubling)
  std::chrono::milliseconds reconnect_max{2000};     ///< reconnect delay cap
  std::chrono::milliseconds connect_timeout{2000};   ///< a dial not connected by then is retried
  std::chrono::milliseconds handshake_timeout{2000};  ///< TCP accept/connect to Raft handshake done, TLS included

  /// Mutual TLS (raftkit/tls.hpp). Default: no files, plaintext. The
  /// certificate must name this node: `raftkit://CLUSTER_ID/node/SELF`.
  TlsOptions tls;
  /// Allow plaintext on a non-loopback listen address. Default false: start()
  /// refuses (invalid_argument, with a log line), since without TLS any host
  /// that reaches the port can claim to be any node. Set it only on a network
  /// where every host is trusted, or behind a tunnel that authenticates.
  bool allow_insecure = false;
  /// An accepted connection with no complete frame for this long is closed.
  /// Default 30 s; must exceed a heartbeat interval. Trade-off: shorter frees
  /// slots held by silent clients sooner, and costs a redial after a quiet spell.
  std::chrono::milliseconds idle_timeout{30000};
  /// Open inbound connections, in total. Default 256 (a node needs about one
  /// per peer). Beyond it new connections are closed at once.
  std::size_t max_inbound_connections = 256;
  /// Open inbound connections from one IP address. Default 16. Peers behind
  /// one address (NAT, or a test cluster on loopback) share it.
  std::size_t max_connections_per_address = 16;

  /// Snapshot streaming (see the file comment). Bytes of snapshot data per
  /// chunk frame. Default 1 MiB; must be below max_frame_bytes. Trade-off:
  /// larger chunks cost fewer frames and acknowledgements, and hold the
  /// connection longer between other messages (heartbeats wait behind a chunk).
  std::size_t snapshot_chunk_bytes = std::size_t{1} << 20;
  /// Chunks sent and not yet acknowledged, per follower. Default 4 (4 MiB in
  /// flight). Trade-off: more fills a long fat pipe; fewer bounds the bytes
  /// queued ahead of heartbeats and the bytes resent after a lost connection.
  std::size_t snapshot_window_chunks = 4;
  /// A transfer that makes no progress (no acknowledgement advances it) for
  /// this long resends from the last acknowledged offset; after three such
  /// stalls in a row it is reported failed. A follower drops a partial
  /// snapshot that got no chunk for three times this long. Default 5 s.
  std::chrono::milliseconds snapshot_stall_timeout{5000};
  /// Largest snapshot a follower accepts (the data is reassembled in
  /// memory before it is handed to the node). Default 16 GiB. A chunk stream
  /// announcing more is refused with a logged reason.
  std::uint64_t max_snapshot_bytes = std::uint64_t{16} << 30;
  /// Groups (raftkit::Host) a node receives snapshots of at once; a stream
  /// of one more group is refused and its sender retries later. The memory
  /// held is at most this many times max_snapshot_bytes. A single Node
  /// has one group. Default 4.
  std::size_t max_partial_snapshots = 4;
};

/// The TCP (optionally TLS) transport; make_tcp_transport() creates one.
class TcpTransport : public Transport {
 public:
  /// The bound listening port, valid once start() succeeded (0 before).
  virtual std::uint16_t local_port() const = 0;
  /// Adds a peer to dial or changes its address (then reconnects).
  /// Thread-safe; takes effect on the transport's strand. Whom this node
  /// hears does not depend on it (see the file comment).
  virtual void set_peer(NodeId id, std::string host_port) = 0;
  /// Number of peers whose outbound connection completed its handshake.
  virtual std::size_t connected_peers() const = 0;
  /// Inbound connections open now (handshaking or established).
  virtual std::size_t inbound_connections() const = 0;
  /// Inbound connections closed at once for a connection cap, since start().
  virtual std::uint64_t refused_connections() const = 0;
  /// Re-reads the TLS files now. New connections use the new certificate;
  /// open ones keep theirs. Empty on success, else why (the old credentials
  /// stay). Thread-safe. Without TLS: an error.
  virtual std::string reload_credentials() = 0;
};

/// Creates a TCP transport whose I/O and handlers run on a strand of
/// `executor`. Options are checked by start().
std::shared_ptr<TcpTransport> make_tcp_transport(boost::asio::any_io_executor executor, TcpTransportOptions options);

}  // namespace raftkit

// raftkit/tls.hpp — mutual TLS with identities bound to certificates.
//
// Who may speak. Every raftkit connection that uses TLS is mutual: both ends
// present a certificate chaining to the cluster's CA (verify_peer |
// verify_fail_if_no_peer_cert), over TLS 1.3 unless told otherwise. Chaining
// to the CA says "someone the operator vouched for"; it does not say who. The
// who is a URI in the certificate's subjectAltName:
//
//   raftkit://<cluster-id>/node/<id>                     a Raft node
//   raftkit://<cluster-id>/client/<name>?role=<role>     a client; role is
//                                                        read, write or admin
//
// A node's transport accepts a peer only if the certificate names a node of
// this cluster and the id the peer claims in the Raft handshake is that node;
// every message on the connection must then come from that node. A service's
// client port (the counter example) accepts a client certificate of this
// cluster and allows what its role allows. Roles are ordered: admin includes
// write, write includes read. The CN and other fields are ignored, so the
// cluster id in the URI is what separates two clusters that share a CA.
//
// Rotation. TlsCredentials holds the current ssl::context. reload() reads the
// files again and swaps in a new context only if all three load and the key
// matches the certificate; otherwise the old one stays and the error is
// returned. New connections take the current context; a connection keeps the
// context it was made with (it holds a shared_ptr), so connections made with
// the old certificate keep working until they close. reload_if_changed()
// does the same when a file's size or modification time changed: a transport
// calls it on a timer (TcpTransportOptions::tls.reload_check_interval).
//
// scripts/make-certs.sh makes a CA, node and client certificates of this
// form with the openssl command.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <boost/asio/ssl/context.hpp>

#include "raftkit/types.hpp"

namespace raftkit {

/// The certificate files of one side of mutual TLS (see the file comment).
struct TlsOptions {
  /// PEM file of the CA certificate(s) peers must chain to. All three files
  /// empty: TLS off (plaintext). Any of them set: all three are required.
  std::string ca_file;
  /// PEM file of this side's certificate (leaf first, then intermediates).
  std::string cert_file;
  /// PEM file of this side's private key (unencrypted).
  std::string key_file;
  /// How often a transport checks the three files for a change (size or
  /// modification time) and reloads them. Default 10 s; 0: never (then call
  /// reload_credentials()). Trade-off: a stat() of three files per period.
  std::chrono::milliseconds reload_check_interval{10000};
  /// Accept TLS 1.2 as well as 1.3. Default false (1.3 only): 1.3 has fewer
  /// round trips and no legacy cipher suites; allow 1.2 only for a peer
  /// library that lacks 1.3.
  bool allow_tls12 = false;

  /// Whether any file is set (TLS on).
  bool enabled() const { return !ca_file.empty() || !cert_file.empty() || !key_file.empty(); }
};

/// What a certificate may do on a service's client port. Ordered: a higher
/// role includes the lower ones.
enum class ClientRole : std::uint8_t { none = 0, read = 1, write = 2, admin = 3 };

std::string_view role_name(ClientRole r);
/// "read", "write", "admin" -> the role; anything else -> nullopt.
std::optional<ClientRole> parse_role(std::string_view s);

/// An identity named by a raftkit:// URI in a certificate.
struct CertIdentity {
  /// Whose certificate: a node's or a client's.
  enum class Kind : std::uint8_t { node, client };
  Kind kind = Kind::node;   ///< node or client
  std::string cluster_id;   ///< the cluster named in the URI
  NodeId node;                          ///< kind == node
  std::string client_name;              ///< kind == client
  ClientRole role = ClientRole::none;   ///< kind == client

  friend bool operator==(const CertIdentity&, const CertIdentity&) = default;
};

/// Parses "raftkit://<cluster>/node/<id>" (id nonzero, decimal) or
/// "raftkit://<cluster>/client/<name>?role=<role>". Nullopt if it is neither.
std::optional<CertIdentity> parse_identity_uri(std::string_view uri);
std::string node_identity_uri(std::string_view cluster_id, NodeId id);
std::string client_identity_uri(std::string_view cluster_id, std::string_view name, ClientRole role);

/// The raftkit:// identities in the subjectAltName of `cert` (an X509*),
/// in certificate order. Other SAN entries are ignored.
std::vector<CertIdentity> certificate_identities(const void* x509);
/// The identities of the verified peer certificate of the TLS connection
/// `ssl` (an SSL* whose handshake completed). Empty without a certificate.
std::vector<CertIdentity> peer_identities(void* ssl);
/// Why certificate verification failed on `ssl` (an SSL*), or empty if it did
/// not; for log lines ("certificate has expired", "unable to get local issuer
/// certificate").
std::string verify_failure(void* ssl);
/// A one-line description of a failed TLS operation: the verify failure if
/// there is one, else the error's message.
std::string describe_tls_error(void* ssl, const boost::system::error_code& ec);

/// The CA, certificate and key of one side, loaded into an ssl::context that
/// serves both as client and server. Thread-safe.
class TlsCredentials {
 public:
  /// Loads the files. Nullptr with `error` set if a file is missing or
  /// unreadable, or the key does not match the certificate.
  static std::shared_ptr<TlsCredentials> load(const TlsOptions& options, std::string& error);

  /// The current context. New connections take it; each connection keeps the
  /// shared_ptr it took for its whole life.
  std::shared_ptr<boost::asio::ssl::context> context() const;
  /// The identities in this side's own current certificate.
  std::vector<CertIdentity> own_identities() const;

  /// Re-reads the files. On success swaps the context and returns empty; on
  /// failure keeps the current one and returns why.
  std::string reload();
  /// reload() if any of the files' size or modification time changed since
  /// the last (attempted) load. Returns true if it reloaded successfully;
  /// `error` is set if a changed file failed to load.
  bool reload_if_changed(std::string& error);

  /// The files these credentials load.
  const TlsOptions& options() const { return options_; }

  /// Credentials for `options`; nothing is loaded yet.
  explicit TlsCredentials(TlsOptions options) : options_(std::move(options)) {}

 private:
  std::string build(std::shared_ptr<boost::asio::ssl::context>& out, std::vector<CertIdentity>& ids) const;
  std::string fingerprint() const;

  TlsOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<boost::asio::ssl::context> context_;
  std::vector<CertIdentity> own_;
  std::string files_seen_;
};

}  // namespace raftkit

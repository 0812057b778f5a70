// client.hpp — a blocking client for the replicated counter.
//
// A Client takes the client addresses of some or all servers. A call goes to
// the last known leader (at first: the first server), follows not-leader
// replies to the leader they name, and moves on to the next server when one
// cannot be reached or does not know the leader, until the call's deadline.
//
// Outcomes are reported honestly:
//   ok       the server acknowledged: the increment is committed and applied.
//   failed   nothing was done (no server reachable, refused, bad request).
//   unknown  an increment was delivered but no answer came (timeout, lost
//            connection, the server's own timeout): it may or may not have
//            been applied, now or later.
// An increment is retried only when the previous attempt certainly did
// nothing: the request was not completely written, or the server answered
// not-leader, busy, dropped or no_space (that server's disk is full: the
// next server is asked). It is never retried after an unknown outcome
// (the counter has no idempotency keys), so it is applied at most once.
// Reads (get), status and transfer-leader have no such hazard and are
// retried on other servers after a timeout.
//
// TLS: with options.tls set, every connection is mutual TLS; the server's
// certificate must chain to the CA, and this client's certificate carries its
// role (raftkit://<cluster-id>/client/<name>?role=read|write|admin). A request
// the role does not allow fails with the server's "permission_denied" reply
// (nothing was done). A server that refuses the TLS connection (wrong CA,
// expired certificate) counts as unreachable: the request was never read.
//
// Not thread-safe: use one Client per thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "protocol.hpp"
#include "raftkit/tls.hpp"

namespace raftkit::counter {

struct ClientOptions {
  std::vector<std::string> servers;  ///< client addresses, "host:port"
  /// One connect + request + reply on one server. Should exceed the server's
  /// request timeout, so that the server's own verdict arrives first.
  std::chrono::milliseconds attempt_timeout{4000};
  /// The whole call, redirects and retries included.
  std::chrono::milliseconds call_timeout{10000};
  std::chrono::milliseconds connect_timeout{1000};
  /// Pause before retrying when no server knows a leader.
  std::chrono::milliseconds retry_pause{50};
  /// Mutual TLS (all three files) or plaintext (none). The reload interval
  /// is unused: a client loads its files once.
  TlsOptions tls;
};

enum class Outcome { ok, failed, unknown };
std::string_view outcome_name(Outcome o);

struct Result {
  Outcome outcome = Outcome::failed;
  std::int64_t value = 0;    ///< the counter after the increment (incr) or its value (get)
  std::string message;       ///< why, when not ok
  std::string server;        ///< the server that gave the final answer
  std::uint64_t leader_id = 0;  ///< the node that answered ok, if it said so
  int attempts = 0;
};

class Client {
 public:
  /// Throws std::invalid_argument without servers, or if the TLS files do not load.
  explicit Client(ClientOptions options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  Result incr(std::int64_t n = 1);
  /// Linearizable, answered by the server asked (no redirect). `stale`:
  /// that server's own value at once — NOT linearizable, it may miss
  /// increments that completed.
  Result get(bool stale = false);
  Result transfer_leader(std::uint64_t target);
  /// Membership changes, sent to the leader like incr. Each attempt may take
  /// the whole call timeout (adding a server waits for it to catch up). An
  /// unknown outcome (timeout, lost connection) is not retried; both are
  /// idempotent, so the caller may simply ask again.
  Result add_server(std::uint64_t id, const std::string& raft_address, const std::string& client_address);
  /// Changes member `id`'s Raft and client addresses (it moved); its
  /// client address first, then the configuration. Restart it there after.
  Result update_server(std::uint64_t id, const std::string& raft_address, const std::string& client_address);
  Result remove_server(std::uint64_t id);
  /// Takes a snapshot now on `server` (no redirect); value = its index.
  Result snapshot(const std::string& server);

  /// One server's own view (no redirect), within `timeout`.
  std::optional<NodeInfo> status(const std::string& server, std::chrono::milliseconds timeout,
                                 std::string* error = nullptr);

  /// Drops every open connection (e.g. after a server was restarted).
  void disconnect();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace raftkit::counter

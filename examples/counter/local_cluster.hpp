// local_cluster.hpp — a cluster of raftkit-counter-server processes on
// loopback, for the demo and the integration tests.
//
// Each node is a child process (posix_spawn) with its own data directory
// under one temporary directory, its output read line by line by a thread
// (kept for error reports, optionally echoed), and its stdin a pipe from
// this process: the servers run with --exit-on-stdin-eof, so they shut down
// even if this process dies without cleaning up. The destructor kills every
// child (SIGKILL) and removes the directory: an RAII guard for tests.
//
// Readiness is the server's "ready ..." line; leadership is polled through
// the status request. Every wait is bounded.
//
// Membership. Nodes 1..nodes form the cluster (each bootstraps it on its
// first start); spare nodes nodes+1..nodes+spares get ports, a directory and
// certificates but are started only by start(id), never with --bootstrap:
// they wait, empty and non-voting, until a leader adds them (run_client
// "add-server ..."). A node started later gets --peers naming itself and the
// current members (members(), which the test keeps up to date with
// set_members() as it adds and removes nodes). wipe() empties a stopped
// node's data directory (or only its WAL); its next start() has no --bootstrap either, so it
// comes back under its old id as a new incarnation.
//
// TLS (on by default): the constructor runs scripts/make-certs.sh into
// <dir>/certs, making a CA for this run, a certificate per node and client
// certificates "admin" (admin), "writer" (write) and "reader" (read); the
// servers get --ca --cert --key, and client_options() / client_tls() give a
// client the certificate of the role asked for. The keys live and die with
// the cluster's temporary directory.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <sys/types.h>

#include "client.hpp"
#include "protocol.hpp"
#include "raftkit/tls.hpp"

namespace raftkit::counter {

struct LocalClusterOptions {
  std::string server_binary;
  std::size_t nodes = 3;
  int tick_ms = 50;
  int election_ticks = 10;
  int request_timeout_ms = 2000;
  std::uint64_t snapshot_interval = 10000;
  std::string cluster_id = "raftkit-counter-local";
  /// Parent of the cluster's directory; empty: $TMPDIR or /tmp.
  std::string temp_parent;
  /// Keep the data directories after the cluster is destroyed.
  bool keep_dir = false;
  /// Called (on a reader thread) for every line a server prints.
  std::function<void(std::uint64_t id, const std::string& line)> on_output;
  /// Appended to every server's command line (e.g. limits for a test).
  std::vector<std::string> extra_server_args;
  /// Appended to one server's command line after those (e.g. its own --metrics-port).
  std::function<std::vector<std::string>(std::uint64_t id)> server_args;
  /// Mutual TLS on both ports of every server, with certificates made for the run.
  bool tls = true;
  /// The certificate script (default: scripts/make-certs.sh of the source tree).
  std::string make_certs_script;
  /// The initial nodes' first start has --bootstrap. False: not (a
  /// newcomer's mistake, for tests); bootstrap_next_start() then adds it.
  bool bootstrap = true;
  /// Extra nodes (ids nodes+1 ...) not in the initial cluster; see the file comment.
  std::size_t spares = 0;
  /// raftkit-counter, for run_client().
  std::string client_binary;
};

struct LeaderInfo {
  std::uint64_t id = 0;
  std::uint64_t term = 0;
};

class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterOptions options);
  ~LocalCluster();
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  /// Chooses free ports and starts every node, waiting for each readiness
  /// line. Retries with other ports (and fresh directories) if a port turned
  /// out to be taken. False with `error` set on failure.
  bool start_all(std::chrono::milliseconds timeout, std::string& error);
  /// (Re)starts one node with its ports and data directory.
  bool start(std::uint64_t id, std::chrono::milliseconds timeout, std::string& error);
  /// (Re)starts the nodes `ids` at once (each spawned before any is waited
  /// for), keeping their data directories: a cluster restarted together.
  bool start_together(const std::vector<std::uint64_t>& ids, std::chrono::milliseconds timeout,
                      std::string& error);
  /// The next start(id) has --bootstrap, whatever the data directory holds.
  void bootstrap_next_start(std::uint64_t id);
  /// The exit code of node `id`'s last life that ended and was reaped (a
  /// start that failed included); -1 if a signal ended it or none has.
  int exit_status(std::uint64_t id) const;
  /// What wipe() removes: the whole data directory (a lost disk), or only
  /// its write-ahead log, the snapshots kept (a lost WAL volume).
  enum class Loss { everything, wal_only };
  /// Removes a stopped node's data directory, or the part `loss` names.
  /// False with `error` if the node is running.
  bool wipe(std::uint64_t id, std::string& error, Loss loss = Loss::everything);
  /// Gives stopped node `id` two new ports (Raft and clients), free now and
  /// never used by any node of this cluster: its next start() listens there
  /// and client_address() / raft_address() name them (a machine that moved;
  /// tell the cluster with run_client "update-server ..."). False with
  /// `error` if the node is running or no free port was found.
  bool move_ports(std::uint64_t id, std::string& error);
  /// The nodes this harness believes are members (initially 1..nodes).
  std::set<std::uint64_t> members() const;
  void set_members(std::set<std::uint64_t> ids);
  /// Runs the client binary (options.client_binary) with --servers (every
  /// node's client address), the admin certificate, --timeout-ms and then
  /// `args`; returns its exit code (-1 if it could not run) and sets
  /// `output` to what it printed (stdout and stderr).
  int run_client(const std::vector<std::string>& args, std::chrono::milliseconds timeout, std::string& output) const;

  /// SIGKILL, then reaps the process.
  void kill(std::uint64_t id);
  /// SIGSTOP / SIGCONT.
  void pause(std::uint64_t id);
  void resume(std::uint64_t id);
  /// SIGTERM (after SIGCONT), waits up to `timeout` for the exit, then
  /// SIGKILL. True if the server exited on its own with status 0.
  bool terminate(std::uint64_t id, std::chrono::milliseconds timeout);
  /// SIGKILL to every child, without locks or waiting: for a signal handler
  /// thread that is about to exit the process.
  void emergency_kill() noexcept;

  bool running(std::uint64_t id) const;
  /// The server's process id, or -1 when it is not running.
  pid_t pid(std::uint64_t id) const;
  bool paused(std::uint64_t id) const;
  std::vector<std::uint64_t> ids() const;
  std::string client_address(std::uint64_t id) const;
  std::string raft_address(std::uint64_t id) const;
  std::vector<std::string> client_addresses() const;
  std::string directory() const { return dir_; }
  /// The TLS files of client certificate `name` ("admin", "writer",
  /// "reader"), or empty options when the cluster runs without TLS.
  TlsOptions client_tls(const std::string& name = "admin") const;
  /// Every server's client address, with client_tls(name).
  ClientOptions client_options(const std::string& name = "admin") const;
  /// Where the run's certificates are (empty without TLS).
  std::string certs_directory() const { return certs_dir_; }
  /// The last lines a node printed (all its lives), for error reports.
  std::string output_tail(std::uint64_t id, std::size_t lines = 20) const;

  /// Lines any server printed that look like a sanitizer report (ASan, UBSan,
  /// TSan, LeakSanitizer) since the cluster was created: tests require 0.
  std::size_t sanitizer_reports() const { return sanitizer_reports_.load(); }

  /// A node's status, or nullopt if it does not answer within `timeout`.
  std::optional<NodeInfo> status(std::uint64_t id, std::chrono::milliseconds timeout) const;
  /// Polls the running, unpaused members not in `ignore` until one says it
  /// leads in a term >= `min_term` and a majority of members() agree (the
  /// leader included). Nullopt after `timeout`.
  std::optional<LeaderInfo> wait_for_leader(std::chrono::milliseconds timeout, std::uint64_t min_term = 0,
                                            const std::set<std::uint64_t>& ignore = {}) const;
  /// Polls `pred` every few milliseconds until it holds or `timeout` passes.
  static bool wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

 private:
  struct Proc;
  bool spawn(std::uint64_t id, std::string& error);
  bool wait_ready(std::uint64_t id, std::chrono::steady_clock::time_point deadline, std::string& error);
  void reap(Proc& p, bool force);
  bool pick_ports();

  LocalClusterOptions opt_;
  std::string dir_;
  std::string certs_dir_;
  std::map<std::uint64_t, std::unique_ptr<Proc>> procs_;  // fixed at construction
  std::set<std::uint64_t> members_;  // guarded by mu_
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<std::size_t> sanitizer_reports_{0};
};

}  // namespace raftkit::counter

// raftkit-counter — command-line client of the replicated counter.
//
//   raftkit-counter --servers 127.0.0.1:8001,127.0.0.1:8002,127.0.0.1:8003 incr 5
//   raftkit-counter --servers ... get
//   raftkit-counter --servers ... status [--json]
//   raftkit-counter --servers ... transfer-leader 2
//   raftkit-counter --servers ... add-server 4 127.0.0.1:7004 127.0.0.1:8004
//   raftkit-counter --servers ... remove-server 1
//   raftkit-counter --servers ... update-server 2 10.0.0.12:7002 10.0.0.12:8002
//   raftkit-counter --servers 127.0.0.1:8002 snapshot
//   raftkit-counter --ca ca.pem --cert client-alice.pem --key client-alice.key --servers ... incr
//
// With --ca --cert --key the client speaks mutual TLS; the certificate's role
// (raftkit://<cluster-id>/client/<name>?role=read|write|admin, made by
// scripts/make-certs.sh) decides what it may do: get and status need read,
// incr needs write; transfer-leader, add-server, remove-server and snapshot
// need admin.
// Any server will do: the client follows the leader hint of a follower
// (incr, get, transfer-leader, add-server, remove-server). add-server takes
// the new node's id, its Raft address (as in its --peers) and its client
// address; start that node first, without --bootstrap, with --peers naming
// itself and the current members. It receives the log as a non-voting
// staging member and becomes a voter once it has caught up; add-server
// returns then. remove-server returns once the node is no member. Both are
// idempotent: after an unknown outcome, ask again. update-server changes a
// member's Raft and client addresses (it moved) through the log, without
// removing it: the node keeps its id, log and vote; restart it on the new
// address afterwards (its --peers naming that address for itself) and the
// others dial it there. It returns once the leader has applied the change,
// and is idempotent too. snapshot goes to the
// first of --servers only and prints the index of the snapshot taken.
// status asks every server for its own view and prints a table, or with
// --json one JSON document for scripts and monitoring:
//   {"servers": [{"server": "127.0.0.1:8001", "reachable": true, "id": 1,
//                 "role": "leader", "term": 3, "leader": 1, "commit": 12,
//                 "applied": 12, "last_index": 12, "value": 7, "failure": "",
//                 "client_address": "127.0.0.1:8001", "voters": [1, 2, 3],
//                 "learners": [], "staging": [], "voters_outgoing": [],
//                 "joint": false, "replacing": false, "incarnation": "1",
//                 "snapshot_index": 0, "diagnosis": "", "disk_full": false},
//                {"server": "127.0.0.1:8002", "reachable": false,
//                 "error": "connection refused"}, ...]}
// ("leader" is 0 when the server knows no leader; "role" is one of follower,
// pre-candidate, candidate, leader, stopped. The configuration is the one
// the server knows, committed or not; "voters_outgoing" is non-empty and
// "joint" true while a change is half done; "staging" servers are being
// added and vote once caught up; "incarnation" (hexadecimal) is born with
// the node's log, and "replacing" is true on a node that came back with an
// empty log under its old id: the configuration still names its previous
// incarnation, and the leader swaps the new one in once it has caught up.
// "diagnosis" is empty when the server knows a leader, else one line saying
// why it knows none, e.g. "no quorum: nodes 2 and 3 unreachable for 12 s"
// (raftkit::diagnose(), the line the server's /raft page shows); the table
// prints it under the server's row. "disk_full" is true while the server's
// log writes are refused for want of space: it refuses increments with
// no_space, neither leads nor votes, and resumes by itself once space is
// freed; its diagnosis then says "disk full for ...".)
// Exit codes: 0 done, 1 failed (nothing was done), 3 unknown outcome (an
// increment may or may not have been applied), 2 bad usage.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "client.hpp"

using namespace raftkit::counter;

namespace {

int report(const Result& r, const std::string& what) {
  switch (r.outcome) {
    case Outcome::ok: return 0;
    case Outcome::failed:
      fmt::print(stderr, "{} failed (nothing was done): {}\n", what, r.message);
      return 1;
    case Outcome::unknown:
      fmt::print(stderr, "{}: outcome unknown (it may or may not have been applied): {}\n", what, r.message);
      return 3;
  }
  return 1;
}

boost::json::array id_array(const std::vector<std::uint64_t>& ids) {
  boost::json::array a;
  for (auto id : ids) a.push_back(id);
  return a;
}

// One server's answer to status, as a JSON object (see the file comment).
boost::json::object status_json(const std::string& server, const std::optional<NodeInfo>& info,
                                const std::string& error) {
  if (!info) return {{"server", server}, {"reachable", false}, {"error", error}};
  return {{"server", server},
          {"reachable", true},
          {"id", info->id},
          {"role", info->role},
          {"term", info->term},
          {"leader", info->leader},
          {"commit", info->commit},
          {"applied", info->applied},
          {"last_index", info->last_index},
          {"value", info->value},
          {"failure", info->failure},
          {"client_address", info->client_address},
          {"voters", id_array(info->voters)},
          {"learners", id_array(info->learners)},
          {"staging", id_array(info->staging)},
          {"voters_outgoing", id_array(info->voters_outgoing)},
          {"joint", !info->voters_outgoing.empty()},
          {"replacing", info->replacing},
          {"incarnation", fmt::format("{:x}", info->incarnation)},
          {"generation", info->generation},
          {"snapshot_index", info->snapshot_index},
          {"diagnosis", info->diagnosis},
          {"disk_full", info->disk_full}};
}

// "voters 1,2,3 | learners 4 | staging 5 | joint, old voters 1,2" (empty parts left out).
std::string configuration_text(const NodeInfo& i) {
  std::string out = fmt::format("voters {}", fmt::join(i.voters, ","));
  if (!i.learners.empty()) out += fmt::format(" | learners {}", fmt::join(i.learners, ","));
  if (!i.staging.empty()) out += fmt::format(" | staging {}", fmt::join(i.staging, ","));
  if (!i.voters_outgoing.empty()) out += fmt::format(" | joint, old voters {}", fmt::join(i.voters_outgoing, ","));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"raftkit replicated counter client"};
  std::string servers_text;
  int timeout_ms = 10000;
  app.add_option("--servers", servers_text, "client addresses of the servers: host:port,...")
      ->required()
      ->check(CLI::Validator(
          [](std::string& s) {
            std::vector<std::string> v;
            return parse_address_list(s, v);
          },
          "HOST:PORT,..."));
  app.add_option("--timeout-ms", timeout_ms, "give up after this long")->capture_default_str()->check(CLI::Range(1, 3600000));
  ClientOptions opt;
  app.add_option("--ca", opt.tls.ca_file, "PEM file of the cluster CA (turns on TLS)")->check(CLI::ExistingFile);
  app.add_option("--cert", opt.tls.cert_file, "PEM client certificate (carries the role)")->check(CLI::ExistingFile);
  app.add_option("--key", opt.tls.key_file, "PEM private key of the client certificate")->check(CLI::ExistingFile);
  app.require_subcommand(1);

  std::int64_t n = 1;
  auto* incr = app.add_subcommand("incr", "add n (default 1) and print the new value");
  incr->add_option("n", n, "amount (may be negative)");
  auto* get = app.add_subcommand("get", "print the value (linearizable read, on any server)");
  bool stale = false;
  get->add_flag("--stale", stale, "NOT linearizable: the first server's own value at once (may miss increments)");
  auto* status = app.add_subcommand("status", "print each server's role, term, leader, commit and applied index");
  bool json = false;
  status->add_flag("--json", json, "print one JSON document (for scripts) instead of a table");
  std::uint64_t target = 0;
  auto* transfer = app.add_subcommand("transfer-leader", "hand leadership to a node");
  transfer->add_option("id", target, "the node that should lead")->required()->check(CLI::PositiveNumber);
  std::uint64_t member = 0;
  std::string raft_address, client_address;
  auto* add = app.add_subcommand("add-server", "add a node (started first, without --bootstrap) to the cluster");
  add->add_option("id", member, "the new node's id")->required()->check(CLI::PositiveNumber);
  const auto host_port = CLI::Validator(
      [](std::string& s) { return raftkit::parse_host_port(s) ? std::string() : "not host:port: " + s; }, "HOST:PORT");
  add->add_option("raft-address", raft_address, "its Raft address (host:port, as in its --peers)")
      ->required()
      ->check(host_port);
  add->add_option("client-address", client_address, "its client address (host:port)")->required()->check(host_port);
  auto* update = app.add_subcommand("update-server", "change a member's addresses (it moved); restart it there after");
  update->add_option("id", member, "the member's id")->required()->check(CLI::PositiveNumber);
  update->add_option("raft-address", raft_address, "its new Raft address (host:port, as in its new --peers)")
      ->required()
      ->check(host_port);
  update->add_option("client-address", client_address, "its new client address (host:port)")
      ->required()
      ->check(host_port);
  auto* remove = app.add_subcommand("remove-server", "remove a node from the cluster");
  remove->add_option("id", member, "the node to remove")->required()->check(CLI::PositiveNumber);
  auto* snapshot = app.add_subcommand("snapshot", "take a snapshot now on the first of --servers; print its index");
  CLI11_PARSE(app, argc, argv);

  parse_address_list(servers_text, opt.servers);
  opt.call_timeout = std::chrono::milliseconds(timeout_ms);
  if (opt.tls.enabled() && (opt.tls.ca_file.empty() || opt.tls.cert_file.empty() || opt.tls.key_file.empty())) {
    fmt::print(stderr, "raftkit-counter: TLS needs all of --ca, --cert and --key\n");
    return 2;
  }
  std::unique_ptr<Client> owned;
  try {
    owned = std::make_unique<Client>(opt);
  } catch (const std::exception& e) {
    fmt::print(stderr, "raftkit-counter: {}\n", e.what());
    return 2;
  }
  Client& client = *owned;

  if (incr->parsed()) {
    auto r = client.incr(n);
    if (r.outcome == Outcome::ok) fmt::print("{}\n", r.value);
    return report(r, "incr");
  }
  if (get->parsed()) {
    auto r = client.get(stale);
    if (r.outcome == Outcome::ok) fmt::print("{}\n", r.value);
    return report(r, "get");
  }
  if (transfer->parsed()) {
    auto r = client.transfer_leader(target);
    if (r.outcome == Outcome::ok) fmt::print("node {} is the leader now\n", target);
    return report(r, "transfer-leader");
  }
  if (add->parsed()) {
    auto r = client.add_server(member, raft_address, client_address);
    if (r.outcome == Outcome::ok) fmt::print("node {} is a voter now\n", member);
    return report(r, "add-server");
  }
  if (update->parsed()) {
    auto r = client.update_server(member, raft_address, client_address);
    if (r.outcome == Outcome::ok)
      fmt::print("node {} is at {} (clients: {}) now; restart it there\n", member, raft_address, client_address);
    return report(r, "update-server");
  }
  if (remove->parsed()) {
    auto r = client.remove_server(member);
    if (r.outcome == Outcome::ok) fmt::print("node {} is no member now\n", member);
    return report(r, "remove-server");
  }
  if (snapshot->parsed()) {
    auto r = client.snapshot(opt.servers.front());
    if (r.outcome == Outcome::ok) fmt::print("{}\n", r.value);
    return report(r, "snapshot");
  }
  (void)status;
  if (!json)
    fmt::print("{:<22} {:>4} {:<14} {:>5} {:>7} {:>8} {:>8} {:>8} {:>10} {:>8} {:>3}  {}\n", "server", "id", "role",
               "term", "leader", "commit", "applied", "last", "value", "snapshot", "gen", "configuration");
  int rc = 0;
  boost::json::array servers;
  for (const auto& s : opt.servers) {
    std::string err;
    auto info = client.status(s, std::chrono::milliseconds(std::min(timeout_ms, 2000)), &err);
    if (!info) rc = 1;
    if (json) {
      servers.push_back(status_json(s, info, err));
      continue;
    }
    if (!info) {
      fmt::print("{:<22} unreachable: {}\n", s, err);
      continue;
    }
    fmt::print("{:<22} {:>4} {:<14} {:>5} {:>7} {:>8} {:>8} {:>8} {:>10} {:>8} {:>3}  {}{}{}{}\n", s, info->id,
               info->role, info->term, info->leader == 0 ? std::string("-") : std::to_string(info->leader),
               info->commit, info->applied, info->last_index, info->value, info->snapshot_index, info->generation,
               configuration_text(*info),
               info->replacing ? "  REPLACING (new incarnation: counts once the leader swaps it in)" : "",
               info->disk_full ? "  DISK FULL (writes refused with no_space)" : "",
               info->failure.empty() ? "" : "  failure: " + info->failure);
    if (!info->diagnosis.empty())
      fmt::print("{:<22} {}{}\n", "", info->disk_full ? "" : "no leader: ", info->diagnosis);
  }
  if (json) fmt::print("{}\n", boost::json::serialize(boost::json::object{{"servers", std::move(servers)}}));
  return rc;
}

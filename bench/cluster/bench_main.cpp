// raftkit-bench — benchmarks of real raftkit clusters, and of their failover.
//
//   raftkit-bench engine   [options]   replication engine: raftkit-bench-node
//                                      processes, clients are threads in the
//                                      leader calling Node::async_propose
//                                      (what NuRaft's raft_bench measures)
//   raftkit-bench counter  [options]   end to end: raftkit-counter-server
//                                      processes (WAL synced), closed-loop
//                                      clients of the counter protocol in
//                                      this process
//   raftkit-bench kv       [options]   end to end: raftkit-kv-server processes
//                                      (WAL synced), closed-loop HTTP clients
//                                      in this process: PUTs to the leader,
//                                      linearizable GETs to the leader or to
//                                      every node (--read-percent, --read-from)
//   raftkit-bench failover [options]   counter servers under client load;
//                                      SIGKILL / SIGSTOP / leadership transfer
//                                      of the leader, trial after trial
//   raftkit-bench compare A.json B.json   ratios B/A of every figure
//   raftkit-bench machine                 this machine's floors (wake-up, synced append)
//
// Why it is built this way. Only ratios measured on one machine in one
// sitting mean anything on a shared box, so every figure the tool prints
// is also written as flat JSON (--json) and `compare` divides two of them.
// Figures come from outside the code under test (see measure.hpp): CPU from
// /proc/<pid>/stat of every process of the cluster over the measured window,
// peak RSS from VmHWM, wire bytes from the kernel's per-socket counters.
// Latency percentiles are exact over every operation of the window (the
// warm-up before it is not counted). Processes are started with readiness
// lines and bounded waits, and die with the tool (PR_SET_PDEATHSIG for the
// engine nodes, --exit-on-stdin-eof for the counter servers, SIGKILL on
// SIGINT/SIGTERM and on every exit path).
#include <signal.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>

#include "child.hpp"
#include "client.hpp"
#include "local_cluster.hpp"
#include "measure.hpp"
#include "bench_tools.hpp"

using namespace raftkit::bench;
using namespace raftkit::bench::tools;

int main(int argc, char** argv) {
  install_cleanup_handlers();
  set_extra_kill(kill_cluster);

  CLI::App app{"raftkit-bench: real-process benchmarks of raftkit clusters (see bench/README-section.md)"};
  app.require_subcommand(0, 1);

  Common c;
  auto add_common = [&](CLI::App* s) {
    s->add_option("--nodes", c.nodes, "cluster size")->check(CLI::IsMember({3, 5}))->capture_default_str();
    s->add_option("--clients", c.clients, "closed-loop clients (one outstanding operation each)")
        ->capture_default_str()
        ->check(CLI::Range(1, 1024));
    s->add_option("--tick-ms", c.tick_ms, "protocol tick, ms")->capture_default_str()->check(CLI::Range(1, 10000));
    s->add_option("--election-ticks", c.election_ticks, "election timeout base T in ticks (drawn in [T, 2T))")
        ->capture_default_str()
        ->check(CLI::Range(2, 1000));
    s->add_option("--json", c.json_path, "also write the figures as one flat JSON object to this file");
    s->add_option("--label", c.label, "a name for this run, kept in the JSON");
    s->add_option("--work-dir", c.work_dir, "directory for data and logs (default: a fresh one under $TMPDIR)");
  };
  auto add_load = [&](CLI::App* s) {
    s->add_option("--seconds", c.seconds, "measured window")->capture_default_str()->check(CLI::Range(0.5, 3600.0));
    s->add_option("--warmup", c.warmup, "seconds of load before the window")->capture_default_str()
        ->check(CLI::Range(0.0, 600.0));
    s->add_option("--payload", c.payload, "bytes per command (engine mode) or value (kv mode)")->capture_default_str()
        ->check(CLI::Range(1, 8 << 20));
  };

  EngineOpts e;
  auto* eng = app.add_subcommand("engine", "replication engine: clients are threads in the leader's process");
  add_common(eng);
  add_load(eng);
  eng->add_option("--store", e.store, "memory or wal")->check(CLI::IsMember({"memory", "wal"}))->capture_default_str();
  eng->add_flag("--inproc", e.inproc, "all nodes in one process over the in-process transport");
  eng->add_option("--io-threads", e.io_threads, "io_context threads per process")->capture_default_str();
  eng->add_option("--follower-fault", e.follower_fault,
                  "during the window: kill one follower (SIGKILL), or slow it (SIGSTOP/SIGCONT duty cycle); prints "
                  "the leader's RSS every 0.5 s")
      ->check(CLI::IsMember({"none", "kill", "slow"}))
      ->capture_default_str();
  eng->add_option("--slow-factor", e.slow_factor, "slow: the follower runs 1/N of every 100 ms")
      ->capture_default_str()
      ->check(CLI::Range(2, 100));
  eng->add_flag("--use-future", e.use_future, "clients wait on asio::use_future instead of a callback");
  eng->add_flag("--async", e.async,
                "clients are callback chains on the leader's executor, not threads (many outstanding proposals "
                "without a context switch per operation)");
  eng->add_option("--node-binary", e.node_binary, "raftkit-bench-node to run")->capture_default_str();
  std::map<std::string, std::string> knobs;
  for (const char* k : {"max-entries-per-append", "max-bytes-per-append", "max-inflight-messages", "max-inflight-bytes",
                        "max-uncommitted-bytes", "heartbeat-ticks", "snapshot-interval", "send-queue-frames",
                        "max-frames-per-write", "groups"})
    eng->add_option(std::string("--") + k, knobs[k], "passed to every node (ProtocolOptions / TcpTransportOptions)");

  std::string server_binary = RAFTKIT_COUNTER_SERVER_DEFAULT;
  auto* cnt = app.add_subcommand("counter", "end to end through raftkit-counter-server and its client protocol");
  add_common(cnt);
  add_load(cnt);
  cnt->add_option("--server-binary", server_binary, "raftkit-counter-server to run")->capture_default_str();

  auto add_reads = [&](CLI::App* s) {
    s->add_option("--read-percent", c.read_percent, "share of operations that are linearizable reads, %")
        ->capture_default_str()
        ->check(CLI::Range(0, 100));
    s->add_option("--read-from", c.read_from,
                  "where reads go: leader, or all (spread over every node; engine mode: with --inproc)")
        ->capture_default_str()
        ->check(CLI::IsMember({"leader", "all"}));
  };
  add_reads(eng);
  std::string kv_binary = RAFTKIT_KV_SERVER_DEFAULT;
  int kv_keys = 10000;
  auto* kvm = app.add_subcommand("kv", "end to end through raftkit-kv-server over HTTP: PUTs and linearizable GETs");
  add_common(kvm);
  add_load(kvm);
  add_reads(kvm);
  kvm->add_option("--keys", kv_keys, "keys prefilled, read and written at random")->capture_default_str()
      ->check(CLI::Range(1, 10000000));
  kvm->add_option("--server-binary", kv_binary, "raftkit-kv-server to run")->capture_default_str();

  FailoverOpts f;
  auto* fo = app.add_subcommand("failover", "leader SIGKILL / SIGSTOP / transfer under client load");
  add_common(fo);
  fo->preparse_callback([&](std::size_t) { c.clients = 4; });  // failover's default load: 4 clients
  fo->add_option("--trials", f.trials, "trials of each kind")->capture_default_str()->check(CLI::Range(1, 10000));
  fo->add_option("--kinds", f.kinds, "any of kill, stop, transfer")
      ->check(CLI::IsMember({"kill", "stop", "transfer"}))
      ->delimiter(',');
  fo->add_option("--csv", f.csv, "per-trial CSV")->capture_default_str();
  fo->add_option("--png", f.png, "histogram (needs gnuplot; empty: none)")->capture_default_str();
  fo->add_option("--client-attempt-ms", f.attempt_ms,
                 "a client gives up on a server that does not answer within this (and tries the next)")
      ->capture_default_str();
  fo->add_option("--from-csv", f.from_csv,
                 "run nothing: summarise and plot a CSV of an earlier run (give its --tick-ms/--election-ticks/--trials "
                 "for the labels)");
  fo->add_option("--server-binary", f.server_binary, "raftkit-counter-server to run")->capture_default_str();

  std::vector<std::string> cmp_files;
  auto* cmp = app.add_subcommand("compare", "ratios B/A of two --json results");
  cmp->add_option("files", cmp_files, "A.json B.json")->expected(2)->required();

  auto* mach = app.add_subcommand("machine", "this machine's floors: a wake-up round trip and a synced append");
  mach->add_option("--work-dir", c.work_dir, "directory for the synced-append file (default: $TMPDIR)");

  CLI11_PARSE(app, argc, argv);
  if (cmp->parsed()) return run_compare(cmp_files[0], cmp_files[1]);
  for (auto& [k, v] : knobs)
    if (!v.empty()) {
      e.passthrough.push_back("--" + k);
      e.passthrough.push_back(v);
    }
  if (eng->parsed()) return run_engine(c, e);
  if (cnt->parsed()) return run_counter(c, server_binary);
  if (kvm->parsed()) return run_kv(c, kv_binary, kv_keys);
  if (fo->parsed()) return run_failover(c, f);
  if (mach->parsed()) return run_machine(c);
  fmt::print("{}", app.help());
  return 2;
}
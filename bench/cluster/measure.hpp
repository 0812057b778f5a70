// measure.hpp — what raftkit-bench reads from outside the processes it
// measures, and the little it needs to report it.
//
// The benchmark's figures must not depend on the code under test counting
// itself, so everything here comes from the kernel:
//   CPU       utime + stime of each process from /proc/<pid>/stat, read at the
//             start and at the end of the measured window (every thread of
//             the process, user and kernel time).
//   peak RSS  VmHWM from /proc/<pid>/status at the end of the window (the
//             high-water mark over the process's life, start-up included).
//   wire      TCP payload bytes the kernel delivered to the receiving
//             sockets (tcpi_bytes_received, as printed by `ss -ti`), summed
//             over the established connections that have one of the
//             benchmark's listening ports at either end; each byte is
//             received by exactly one socket, so nothing is counted twice.
//             Headers (TCP/IP) are not included; a connection opened and
//             closed inside the window is missed (none are, in a healthy run).
// Latency percentiles are exact: every operation's latency is kept (a few
// million 4-byte values at most) and sorted once at the end.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace raftkit::bench {

/// utime + stime of a live process, in microseconds; nullopt if it is gone.
std::optional<std::uint64_t> process_cpu_us(pid_t pid);
/// VmHWM of a live process in KiB; nullopt if it is gone.
std::optional<std::uint64_t> process_peak_rss_kib(pid_t pid);
/// VmRSS (current resident set) of a live process in KiB.
std::optional<std::uint64_t> process_rss_kib(pid_t pid);

/// Whether `ss` (iproute2) can be run: without it there are no wire figures.
bool have_ss();
/// Bytes received per TCP connection (key: "local peer") whose local or
/// peer port is in `ports`, from `ss -tinH`. Empty map if ss is missing.
std::map<std::string, std::uint64_t> tcp_bytes_received(const std::set<std::uint16_t>& ports);
/// Sum over connections of after - before (a connection new in `after`
/// counts from 0).
std::uint64_t bytes_between(const std::map<std::string, std::uint64_t>& before,
                            const std::map<std::string, std::uint64_t>& after);

/// Latency summary, in the unit of the samples it was made from.
struct Percentiles {
  std::uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0, mean = 0;
};
/// Sorts the samples and reads the nearest-rank percentiles.
Percentiles percentiles(std::vector<std::uint32_t>& samples);
Percentiles percentiles(std::vector<double>& samples);

/// A flat JSON object of numbers and strings: what --json writes and
/// `raftkit-bench compare` reads back. Parsing accepts exactly that shape and reports
/// anything else as an error (never aborts).
struct FlatJson {
  std::vector<std::pair<std::string, std::string>> fields;  // value kept as JSON text
  void num(const std::string& k, double v);
  void str(const std::string& k, const std::string& v);
  std::string dump() const;
  std::optional<double> number(const std::string& k) const;
  std::optional<std::string> string(const std::string& k) const;
  static std::optional<FlatJson> parse(const std::string& text, std::string& error);
};

/// One line about the machine: CPU model, cores, load average.
std::string machine_line();

/// What no replication round on this machine can beat, measured directly:
/// a closed-loop round of a 3-node cluster with a synced log costs at least
/// one synced append and, on its critical path, about six hand-offs between
/// processes or threads (client to leader, leader to follower, follower to
/// its disk thread and back, follower to leader, leader to client).
struct Floors {
  double wakeup_round_trip_us = 0;  ///< median: 1 byte there and back between two processes (socketpair)
  double synced_append_us = 0;      ///< median: 256 B pwrite + fdatasync inside a preallocated file
};
/// Measures both in `dir` (a file is created and removed there); nullopt and
/// `error` when a system call fails.
std::optional<Floors> measure_floors(const std::string& dir, std::string& error);

}  // namespace raftkit::bench

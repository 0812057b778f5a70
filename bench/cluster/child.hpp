// child.hpp — a child process the benchmark starts and always ends.
//
// Each child is forked with PR_SET_PDEATHSIG = SIGKILL (it dies with the
// benchmark, whatever kills the benchmark), its stdin a pipe (closing it
// asks the child to exit), and its stdout read line by line by a thread.
// Readiness is a line the child prints, waited for with a deadline: the
// benchmark never sleeps for a fixed time to let a process "come up".
// Every live child is in a process-wide list that kill_all_children()
// walks with kill(2) only, so a signal handler may call it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace raftkit::bench {

class Child {
 public:
  /// Starts argv[0] with argv; stderr goes to `stderr_file` (appended).
  Child(std::vector<std::string> argv, const std::string& stderr_file);
  ~Child();  // SIGKILL and reap
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  bool started() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  /// Writes one line to the child's stdin.
  bool send_line(const std::string& line);
  /// Waits for the first unread line for which `match` is true, consuming
  /// the lines up to it; nullopt at the deadline or when the child's output
  /// ends.
  std::optional<std::string> wait_line(const std::function<bool(const std::string&)>& match,
                                       std::chrono::steady_clock::time_point deadline);
  /// Closes stdin, waits up to `grace` for the exit, then SIGKILL. Returns
  /// the wait status (or -1).
  int finish(std::chrono::milliseconds grace);
  /// Every line printed so far (for error reports).
  std::string output_tail(std::size_t lines = 20) const;

 private:
  void reader();
  pid_t pid_ = -1;
  int in_fd_ = -1;
  int out_fd_ = -1;
  bool reaped_ = false;
  int status_ = -1;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> unread_;
  std::vector<std::string> all_;
  bool eof_ = false;
};

/// SIGKILL to every live child (async-signal-safe).
void kill_all_children() noexcept;
/// Also called by the signal handler (for children someone else started).
void set_extra_kill(void (*f)());
/// Installs SIGINT/SIGTERM/SIGHUP handlers that kill every child and exit
/// with 130, and ignores SIGPIPE.
void install_cleanup_handlers();

}  // namespace raftkit::bench

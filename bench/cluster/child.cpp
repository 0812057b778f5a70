#include "child.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>

namespace raftkit::bench {

namespace {

constexpr std::size_t kMaxChildren = 64;
std::array<std::atomic<pid_t>, kMaxChildren> g_children{};
std::atomic<void (*)()> g_extra_kill{nullptr};

void register_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t empty = 0;
    if (slot.compare_exchange_strong(empty, pid)) return;
  }
}
void unregister_child(pid_t pid) {
  for (auto& slot : g_children) {
    pid_t p = pid;
    if (slot.compare_exchange_strong(p, 0)) return;
  }
}

void on_signal(int) {
  kill_all_children();
  if (auto f = g_extra_kill.load()) f();
  ::_exit(130);
}

}  // namespace

void set_extra_kill(void (*f)()) { g_extra_kill = f; }

void kill_all_children() noexcept {
  for (auto& slot : g_children) {
    const pid_t p = slot.load();
    if (p > 0) {
      ::kill(p, SIGCONT);
      ::kill(p, SIGKILL);
    }
  }
}

void install_cleanup_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  ::sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);
}

Child::Child(std::vector<std::string> argv, const std::string& stderr_file) {
  int in[2], out[2];
  if (::pipe2(in, O_CLOEXEC) != 0) return;
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return;
  }
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int err_fd = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid == 0) {
    // Only async-signal-safe calls until exec.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    ::dup2(in[0], 0);
    ::dup2(out[1], 1);
    if (err_fd >= 0) ::dup2(err_fd, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  if (err_fd >= 0) ::close(err_fd);
  if (pid < 0) {
    ::close(in[1]);
    ::close(out[0]);
    return;
  }
  pid_ = pid;
  in_fd_ = in[1];
  out_fd_ = out[0];
  register_child(pid);
  thread_ = std::thread([this] { reader(); });
}

Child::~Child() {
  if (pid_ > 0 && !reaped_) {
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
    unregister_child(pid_);
  }
  if (in_fd_ >= 0) ::close(in_fd_);
  if (thread_.joinable()) thread_.join();
  if (out_fd_ >= 0) ::close(out_fd_);
}

bool Child::send_line(const std::string& line) {
  if (in_fd_ < 0) return false;
  const std::string l = line + "\n";
  std::size_t done = 0;
  while (done < l.size()) {
    const ssize_t n = ::write(in_fd_, l.data() + done, l.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

void Child::reader() {
  std::string partial;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(out_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    partial.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = partial.find('\n')) != std::string::npos) {
      std::lock_guard lk(mu_);
      unread_.push_back(partial.substr(0, nl));
      all_.push_back(unread_.back());
      partial.erase(0, nl + 1);
      cv_.notify_all();
    }
  }
  std::lock_guard lk(mu_);
  if (!partial.empty()) {
    unread_.push_back(partial);
    all_.push_back(partial);
  }
  eof_ = true;
  cv_.notify_all();
}

std::optional<std::string> Child::wait_line(const std::function<bool(const std::string&)>& match,
                                            std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lk(mu_);
  while (true) {
    while (!unread_.empty()) {
      std::string l = std::move(unread_.front());
      unread_.pop_front();
      if (match(l)) return l;
    }
    if (eof_) return std::nullopt;
    if (cv_.wait_until(lk, deadline) == std::cv_status::timeout && unread_.empty()) return std::nullopt;
  }
}

int Child::finish(std::chrono::milliseconds grace) {
  if (pid_ <= 0 || reaped_) return status_;
  if (in_fd_ >= 0) {
    ::close(in_fd_);
    in_fd_ = -1;
  }
  ::kill(pid_, SIGCONT);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    const pid_t r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) {
      reaped_ = true;
      unregister_child(pid_);
      return status_;
    }
    // Bounded poll of the exit: the child has no other way to say it is gone.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ::kill(pid_, SIGKILL);
  ::waitpid(pid_, &status_, 0);
  reaped_ = true;
  unregister_child(pid_);
  return status_;
}

std::string Child::output_tail(std::size_t lines) const {
  std::lock_guard lk(mu_);
  std::string o;
  const std::size_t from = all_.size() > lines ? all_.size() - lines : 0;
  for (std::size_t i = from; i < all_.size(); ++i) o += "  | " + all_[i] + "\n";
  return o;
}

}  // namespace raftkit::bench

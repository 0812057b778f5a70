#include "local_cluster.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <stdexcept>

#include <fmt/format.h>

#include "client.hpp"

extern char** environ;

namespace raftkit::counter {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct LocalCluster::Proc {
  std::uint64_t id = 0;
  std::uint16_t raft_port = 0;
  std::uint16_t client_port = 0;
  std::string data_dir;
  std::atomic<pid_t> pid{-1};
  int stdin_w = -1;
  std::thread reader;
  bool ready = false;  // guarded by mu_
  bool eof = false;    // guarded by mu_
  bool stopped = false;
  bool started_once = false;  // later starts keep the data directory: no --bootstrap
  int exit_status = -1;        // of the last life reaped: its exit code, or -1 (killed by a signal, or none yet)
  std::deque<std::string> lines;  // guarded by mu_
};

LocalCluster::LocalCluster(LocalClusterOptions options) : opt_(std::move(options)) {
  if (opt_.nodes == 0) throw std::invalid_argument("LocalCluster: no nodes");
  std::string parent = opt_.temp_parent;
  if (parent.empty()) {
    const char* t = std::getenv("TMPDIR");
    parent = t && *t ? t : "/tmp";
  }
  std::string templ = parent + "/raftkit-counter-XXXXXX";
  if (!::mkdtemp(templ.data())) throw std::runtime_error(fmt::format("mkdtemp in {}: {}", parent, std::strerror(errno)));
  dir_ = templ;
  for (std::uint64_t id = 1; id <= opt_.nodes + opt_.spares; ++id) {
    auto p = std::make_unique<Proc>();
    p->id = id;
    p->data_dir = fmt::format("{}/node{}", dir_, id);
    p->started_once = id > opt_.nodes;  // a spare never bootstraps
    if (id <= opt_.nodes) members_.insert(id);
    procs_.emplace(id, std::move(p));
  }
  if (opt_.tls) {
    std::string script = opt_.make_certs_script;
#ifdef RAFTKIT_MAKE_CERTS_DEFAULT
    if (script.empty()) script = RAFTKIT_MAKE_CERTS_DEFAULT;
#endif
    if (script.empty()) throw std::invalid_argument("LocalCluster: TLS needs make_certs_script");
    certs_dir_ = dir_ + "/certs";
    std::string nodes;
    for (std::uint64_t id = 1; id <= opt_.nodes + opt_.spares; ++id)
      nodes += fmt::format("{}{}", id == 1 ? "" : ",", id);
    const auto cmd = fmt::format(
        "bash '{}' '{}' '{}' --nodes {} --client admin:admin --client writer:write --client reader:read "
        ">'{}/make-certs.log' 2>&1",
        script, certs_dir_, opt_.cluster_id, nodes, dir_);
    if (std::system(cmd.c_str()) != 0) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
      throw std::runtime_error(fmt::format("LocalCluster: making certificates failed: {}", cmd));
    }
  }
}

TlsOptions LocalCluster::client_tls(const std::string& name) const {
  TlsOptions t;
  if (certs_dir_.empty()) return t;
  t.ca_file = certs_dir_ + "/ca.pem";
  t.cert_file = fmt::format("{}/client-{}.pem", certs_dir_, name);
  t.key_file = fmt::format("{}/client-{}.key", certs_dir_, name);
  return t;
}

ClientOptions LocalCluster::client_options(const std::string& name) const {
  ClientOptions o;
  o.servers = client_addresses();
  o.tls = client_tls(name);
  return o;
}

LocalCluster::~LocalCluster() {
  for (auto& [id, p] : procs_) reap(*p, true);
  if (!opt_.keep_dir) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
}

void LocalCluster::emergency_kill() noexcept {
  for (auto& [id, p] : procs_) {
    pid_t pid = p->pid.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
}

namespace {

bool bindable(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

// A port not in `chosen` that binds now, added to `chosen`; 0 if none found.
// Ports below Linux's ephemeral range (32768+), so that no outgoing
// connection of another node can be holding one when a node restarts.
std::uint16_t fresh_port(std::set<std::uint16_t>& chosen) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  std::uniform_int_distribution<int> dist(20000, 32000);
  for (int tries = 0; tries < 1000; ++tries) {
    const auto port = static_cast<std::uint16_t>(dist(rng));
    if (chosen.contains(port) || !bindable(port)) continue;
    chosen.insert(port);
    return port;
  }
  return 0;
}

}  // namespace

bool LocalCluster::pick_ports() {
  std::set<std::uint16_t> chosen;
  for (auto& [id, p] : procs_)
    for (std::uint16_t* port : {&p->raft_port, &p->client_port})
      if ((*port = fresh_port(chosen)) == 0) return false;
  return true;
}

bool LocalCluster::move_ports(std::uint64_t id, std::string& error) {
  if (running(id)) {
    error = fmt::format("node {} is running: stop it before moving it to new ports", id);
    return false;
  }
  std::set<std::uint16_t> chosen;  // no node's current port
  for (auto& [pid, p] : procs_) chosen.insert({p->raft_port, p->client_port});
  Proc& p = *procs_.at(id);
  const std::uint16_t raft = fresh_port(chosen), client = fresh_port(chosen);
  if (raft == 0 || client == 0) {
    error = "no free port found";
    return false;
  }
  p.raft_port = raft;
  p.client_port = client;
  return true;
}

std::string LocalCluster::client_address(std::uint64_t id) const {
  return fmt::format("127.0.0.1:{}", procs_.at(id)->client_port);
}
std::string LocalCluster::raft_address(std::uint64_t id) const {
  return fmt::format("127.0.0.1:{}", procs_.at(id)->raft_port);
}
std::vector<std::string> LocalCluster::client_addresses() const {
  std::vector<std::string> out;
  for (auto& [id, p] : procs_) out.push_back(client_address(id));
  return out;
}
std::vector<std::uint64_t> LocalCluster::ids() const {
  std::vector<std::uint64_t> out;
  for (auto& [id, p] : procs_) out.push_back(id);
  return out;
}
bool LocalCluster::running(std::uint64_t id) const { return procs_.at(id)->pid.load() > 0; }
pid_t LocalCluster::pid(std::uint64_t id) const {
  const pid_t p = procs_.at(id)->pid.load();
  return p > 0 ? p : -1;
}
bool LocalCluster::paused(std::uint64_t id) const {
  std::lock_guard lk(mu_);
  return procs_.at(id)->stopped;
}

std::string LocalCluster::output_tail(std::uint64_t id, std::size_t n) const {
  std::lock_guard lk(mu_);
  const auto& lines = procs_.at(id)->lines;
  std::string out;
  for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i)
    out += fmt::format("    [node {}] {}\n", id, lines[i]);
  return out;
}

bool LocalCluster::spawn(std::uint64_t id, std::string& error) {
  Proc& p = *procs_.at(id);
  std::string peers, clients;
  std::set<std::uint64_t> known = members();
  known.insert(id);
  for (std::uint64_t pid : known) {
    peers += fmt::format("{}{}={}", peers.empty() ? "" : ",", pid, raft_address(pid));
    clients += fmt::format("{}{}={}", clients.empty() ? "" : ",", pid, client_address(pid));
  }
  std::vector<std::string> args = {opt_.server_binary,
                                   "--id", std::to_string(id),
                                   "--peers", peers,
                                   "--clients", clients,
                                   "--client-host", "127.0.0.1",
                                   "--client-port", std::to_string(p.client_port),
                                   "--data-dir", p.data_dir,
                                   "--cluster-id", opt_.cluster_id,
                                   "--tick-ms", std::to_string(opt_.tick_ms),
                                   "--election-ticks", std::to_string(opt_.election_ticks),
                                   "--request-timeout-ms", std::to_string(opt_.request_timeout_ms),
                                   "--snapshot-interval", std::to_string(opt_.snapshot_interval),
                                   "--exit-on-stdin-eof"};
  // The first start of each node creates the cluster; a restart keeps its
  // data (and a node whose directory was wiped must not bootstrap again).
  if (!p.started_once) args.push_back("--bootstrap");
  p.started_once = true;
  args.insert(args.end(), opt_.extra_server_args.begin(), opt_.extra_server_args.end());
  if (opt_.server_args)
    for (std::string& a : opt_.server_args(id)) args.push_back(std::move(a));
  if (!certs_dir_.empty()) {
    for (const std::string& a :
         {std::string("--ca"), certs_dir_ + "/ca.pem", std::string("--cert"),
          fmt::format("{}/node-{}.pem", certs_dir_, id), std::string("--key"),
          fmt::format("{}/node-{}.key", certs_dir_, id)})
      args.push_back(a);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  int out[2], in[2];
  if (::pipe2(out, O_CLOEXEC) != 0) {
    error = fmt::format("pipe: {}", std::strerror(errno));
    return false;
  }
  if (::pipe2(in, O_CLOEXEC) != 0) {
    error = fmt::format("pipe: {}", std::strerror(errno));
    ::close(out[0]);
    ::close(out[1]);
    return false;
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&fa, out[1], STDERR_FILENO);
  // The child starts with no blocked signals and default dispositions, even
  // if this process blocks SIGINT/SIGTERM for a signal-handling thread.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGPIPE}) sigaddset(&defaults, s);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, opt_.server_binary.c_str(), &fa, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&fa);
  ::close(out[1]);
  ::close(in[0]);
  if (rc != 0) {
    ::close(out[0]);
    ::close(in[1]);
    error = fmt::format("cannot start {}: {}", opt_.server_binary, std::strerror(rc));
    return false;
  }
  {
    std::lock_guard lk(mu_);
    p.ready = false;
    p.eof = false;
    p.stopped = false;
    p.lines.push_back(fmt::format("--- started, pid {}", pid));
  }
  p.pid.store(pid);
  p.stdin_w = in[1];
  const int fd = out[0];
  p.reader = std::thread([this, &p, fd] {
    std::string buf;
    char chunk[4096];
    for (;;) {
      ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buf.append(chunk, static_cast<std::size_t>(n));
      for (std::size_t nl; (nl = buf.find('\n')) != std::string::npos;) {
        std::string line = buf.substr(0, nl);
        buf.erase(0, nl + 1);
        if (opt_.on_output) opt_.on_output(p.id, line);
        if (line.find("Sanitizer") != std::string::npos || line.find("runtime error:") != std::string::npos)
          ++sanitizer_reports_;
        std::lock_guard lk(mu_);
        if (line.rfind("ready ", 0) == 0) p.ready = true;
        p.lines.push_back(std::move(line));
        if (p.lines.size() > 400) p.lines.pop_front();
        cv_.notify_all();
      }
    }
    ::close(fd);
    std::lock_guard lk(mu_);
    if (!buf.empty()) p.lines.push_back(buf);
    p.eof = true;
    cv_.notify_all();
  });
  return true;
}

bool LocalCluster::wait_ready(std::uint64_t id, Clock::time_point deadline, std::string& error) {
  Proc& p = *procs_.at(id);
  std::unique_lock lk(mu_);
  if (!cv_.wait_until(lk, deadline, [&] { return p.ready || p.eof; })) {
    lk.unlock();
    error = fmt::format("node {} did not report readiness in time; its output:\n{}", id, output_tail(id));
    reap(p, true);
    return false;
  }
  if (!p.ready) {
    lk.unlock();
    reap(p, false);
    error = fmt::format("node {} exited before it was ready; its output:\n{}", id, output_tail(id));
    return false;
  }
  return true;
}

bool LocalCluster::start(std::uint64_t id, std::chrono::milliseconds timeout, std::string& error) {
  if (running(id)) {
    error = fmt::format("node {} is already running", id);
    return false;
  }
  if (!spawn(id, error)) return false;
  return wait_ready(id, Clock::now() + timeout, error);
}

bool LocalCluster::start_together(const std::vector<std::uint64_t>& ids, std::chrono::milliseconds timeout,
                                  std::string& error) {
  for (auto id : ids)
    if (running(id)) {
      error = fmt::format("node {} is already running", id);
      return false;
    }
  for (auto id : ids)
    if (!spawn(id, error)) return false;
  const auto deadline = Clock::now() + timeout;
  for (auto id : ids)
    if (!wait_ready(id, deadline, error)) return false;
  return true;
}

bool LocalCluster::wipe(std::uint64_t id, std::string& error, Loss loss) {
  if (running(id)) {
    error = fmt::format("node {} is running: stop it before wiping its data directory", id);
    return false;
  }
  const bool all = loss == Loss::everything;
  const fs::path path = all ? fs::path(procs_.at(id)->data_dir) : fs::path(procs_.at(id)->data_dir) / "wal";
  std::error_code ec;
  fs::remove_all(path, ec);
  if (ec) {
    error = fmt::format("removing {}: {}", path.string(), ec.message());
    return false;
  }
  std::lock_guard lk(mu_);
  procs_.at(id)->lines.push_back(all ? "--- data directory wiped" : "--- WAL directory wiped (snapshots kept)");
  return true;
}

std::set<std::uint64_t> LocalCluster::members() const {
  std::lock_guard lk(mu_);
  return members_;
}

void LocalCluster::set_members(std::set<std::uint64_t> ids) {
  std::lock_guard lk(mu_);
  members_ = std::move(ids);
}

int LocalCluster::run_client(const std::vector<std::string>& args, std::chrono::milliseconds timeout,
                             std::string& output) const {
  output.clear();
  if (opt_.client_binary.empty()) {
    output = "LocalCluster: no client_binary";
    return -1;
  }
  std::string servers;
  for (const auto& a : client_addresses()) servers += (servers.empty() ? "" : ",") + a;
  std::string command = fmt::format("'{}' --servers {} --timeout-ms {}", opt_.client_binary, servers, timeout.count());
  const TlsOptions tls = client_tls("admin");
  if (tls.enabled())
    command += fmt::format(" --ca '{}' --cert '{}' --key '{}'", tls.ca_file, tls.cert_file, tls.key_file);
  for (const auto& a : args) command += fmt::format(" '{}'", a);  // our own arguments: no quotes inside
  command += " 2>&1";
  FILE* f = ::popen(command.c_str(), "r");
  if (!f) {
    output = fmt::format("popen: {}", std::strerror(errno));
    return -1;
  }
  char buf[4096];
  while (std::size_t n = std::fread(buf, 1, sizeof buf, f)) output.append(buf, n);
  const int status = ::pclose(f);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

void LocalCluster::bootstrap_next_start(std::uint64_t id) { procs_.at(id)->started_once = false; }

int LocalCluster::exit_status(std::uint64_t id) const { return procs_.at(id)->exit_status; }

bool LocalCluster::start_all(std::chrono::milliseconds timeout, std::string& error) {
  const auto deadline = Clock::now() + timeout;
  const auto initial = members();
  for (int attempt = 1; attempt <= 3; ++attempt) {
    for (auto& [id, p] : procs_) reap(*p, true);
    std::error_code ec;
    for (auto& [id, p] : procs_) fs::remove_all(p->data_dir, ec);
    if (!pick_ports()) {
      error = "no free ports found";
      return false;
    }
    bool ok = true;
    for (auto id : initial) procs_.at(id)->started_once = !opt_.bootstrap;  // a retry bootstraps afresh
    for (auto id : initial)
      if (!spawn(id, error)) return false;
    for (auto id : initial)
      if (!wait_ready(id, deadline, error)) {
        ok = false;
        break;
      }
    if (ok) return true;
    if (error.find("in use") == std::string::npos) break;  // only a port race is worth another try
  }
  for (auto& [id, p] : procs_) reap(*p, true);
  return false;
}

void LocalCluster::reap(Proc& p, bool force) {
  pid_t pid = p.pid.load();
  if (pid > 0) {
    if (force) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    p.pid.store(-1);
    p.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  if (p.stdin_w >= 0) {
    ::close(p.stdin_w);
    p.stdin_w = -1;
  }
  if (p.reader.joinable()) p.reader.join();
  std::lock_guard lk(mu_);
  p.stopped = false;
}

void LocalCluster::kill(std::uint64_t id) {
  Proc& p = *procs_.at(id);
  {
    std::lock_guard lk(mu_);
    p.lines.push_back("--- killed with SIGKILL");
  }
  reap(p, true);
}

void LocalCluster::pause(std::uint64_t id) {
  Proc& p = *procs_.at(id);
  if (pid_t pid = p.pid.load(); pid > 0) ::kill(pid, SIGSTOP);
  std::lock_guard lk(mu_);
  p.stopped = true;
  p.lines.push_back("--- paused with SIGSTOP");
}

void LocalCluster::resume(std::uint64_t id) {
  Proc& p = *procs_.at(id);
  if (pid_t pid = p.pid.load(); pid > 0) ::kill(pid, SIGCONT);
  std::lock_guard lk(mu_);
  p.stopped = false;
  p.lines.push_back("--- resumed with SIGCONT");
}

bool LocalCluster::terminate(std::uint64_t id, std::chrono::milliseconds timeout) {
  Proc& p = *procs_.at(id);
  pid_t pid = p.pid.load();
  if (pid <= 0) return false;
  ::kill(pid, SIGCONT);
  ::kill(pid, SIGTERM);
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  bool exited = false;
  while (Clock::now() < deadline) {
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      exited = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a child's exit
  }
  if (exited) {
    p.pid.store(-1);
    p.exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    reap(p, false);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
  }
  {
    std::lock_guard lk(mu_);
    p.lines.push_back("--- did not exit after SIGTERM; killed");
  }
  reap(p, true);
  return false;
}

std::optional<NodeInfo> LocalCluster::status(std::uint64_t id, std::chrono::milliseconds timeout) const {
  if (!running(id)) return std::nullopt;
  ClientOptions o;
  o.servers = {client_address(id)};
  o.connect_timeout = timeout;
  o.tls = client_tls();
  Client c(o);
  return c.status(client_address(id), timeout);
}

std::optional<LeaderInfo> LocalCluster::wait_for_leader(std::chrono::milliseconds timeout, std::uint64_t min_term,
                                                        const std::set<std::uint64_t>& ignore) const {
  const auto deadline = Clock::now() + timeout;
  std::map<std::uint64_t, std::unique_ptr<Client>> clients;
  while (Clock::now() < deadline) {
    std::map<std::uint64_t, NodeInfo> seen;
    const auto members = this->members();
    for (auto id : members) {
      if (ignore.contains(id) || !running(id) || paused(id)) continue;
      auto& c = clients[id];
      if (!c) {
        ClientOptions o;
        o.servers = {client_address(id)};
        o.connect_timeout = std::chrono::milliseconds(500);
        o.tls = client_tls();
        c = std::make_unique<Client>(o);
      }
      if (auto info = c->status(client_address(id), std::chrono::milliseconds(500))) seen.emplace(id, *info);
    }
    for (auto& [id, info] : seen) {
      if (info.role != "leader" || info.term < min_term) continue;
      std::size_t agree = 0;
      for (auto& [oid, o] : seen)
        if (o.leader == id && o.term == info.term) ++agree;
      if (agree * 2 > members.size()) return LeaderInfo{id, info.term};
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling interval
  }
  return std::nullopt;
}

bool LocalCluster::wait_until(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    if (pred()) return true;
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // polling interval
  }
}

}  // namespace raftkit::counter

#include "measure.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <numeric>
#include <sstream>

#include <fmt/format.h>

namespace raftkit::bench {

std::optional<std::uint64_t> process_cpu_us(pid_t pid) {
  std::ifstream f(fmt::format("/proc/{}/stat", pid));
  std::string text;
  if (!f || !std::getline(f, text)) return std::nullopt;
  // The command name (field 2) may hold spaces: fields are counted after
  // its closing parenthesis. utime and stime are fields 14 and 15.
  const auto close = text.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(close + 1));
  std::string field;
  std::uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long hz = ::sysconf(_SC_CLK_TCK);
  return (utime + stime) * 1000000ULL / static_cast<std::uint64_t>(hz > 0 ? hz : 100);
}

namespace {
std::optional<std::uint64_t> status_field_kib(pid_t pid, const std::string& field) {
  std::ifstream f(fmt::format("/proc/{}/status", pid));
  std::string line;
  while (f && std::getline(f, line)) {
    if (line.rfind(field, 0) == 0) return std::stoull(line.substr(field.size()));
  }
  return std::nullopt;
}
}  // namespace

std::optional<std::uint64_t> process_peak_rss_kib(pid_t pid) { return status_field_kib(pid, "VmHWM:"); }
std::optional<std::uint64_t> process_rss_kib(pid_t pid) { return status_field_kib(pid, "VmRSS:"); }

namespace {
std::optional<std::uint16_t> port_of(const std::string& addr) {
  const auto colon = addr.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  try {
    const unsigned long p = std::stoul(addr.substr(colon + 1));
    if (p > 65535) return std::nullopt;
    return static_cast<std::uint16_t>(p);
  } catch (...) {
    return std::nullopt;
  }
}
}  // namespace

bool have_ss() {
  static const bool ok = std::system("command -v ss >/dev/null 2>&1") == 0;
  return ok;
}

std::map<std::string, std::uint64_t> tcp_bytes_received(const std::set<std::uint16_t>& ports) {
  std::map<std::string, std::uint64_t> out;
  FILE* p = ::popen("ss -tinH state established 2>/dev/null", "r");
  if (!p) return out;
  std::string text;
  char buf[8192];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) text.append(buf, n);
  ::pclose(p);
  std::istringstream lines(text);
  std::string line, key;
  bool wanted = false;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (line[0] != ' ' && line[0] != '\t') {
      // "Recv-Q Send-Q Local:Port Peer:Port"
      std::istringstream w(line);
      std::string rq, sq, local, peer;
      w >> rq >> sq >> local >> peer;
      const auto lp = port_of(local), pp = port_of(peer);
      wanted = (lp && ports.contains(*lp)) || (pp && ports.contains(*pp));
      key = local + " " + peer;
      continue;
    }
    if (!wanted) continue;
    const auto at = line.find("bytes_received:");
    out[key] = at == std::string::npos ? 0 : std::stoull(line.substr(at + 15));
    wanted = false;
  }
  return out;
}

std::uint64_t bytes_between(const std::map<std::string, std::uint64_t>& before,
                            const std::map<std::string, std::uint64_t>& after) {
  std::uint64_t sum = 0;
  for (auto& [k, v] : after) {
    auto it = before.find(k);
    const std::uint64_t b = it == before.end() ? 0 : it->second;
    if (v >= b) sum += v - b;
  }
  return sum;
}

namespace {
template <class T>
Percentiles summarize(std::vector<T>& v) {
  Percentiles r;
  if (v.empty()) return r;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    // nearest rank: the smallest value with at least q of the samples <= it
    auto k = static_cast<std::size_t>(std::ceil(q * static_cast<double>(v.size())));
    k = std::clamp<std::size_t>(k, 1, v.size());
    return static_cast<double>(v[k - 1]);
  };
  r.count = v.size();
  r.p50 = at(0.5);
  r.p90 = at(0.9);
  r.p99 = at(0.99);
  r.p999 = at(0.999);
  r.max = static_cast<double>(v.back());
  r.mean = std::accumulate(v.begin(), v.end(), 0.0) / static_cast<double>(v.size());
  return r;
}
}  // namespace

Percentiles percentiles(std::vector<std::uint32_t>& v) { return summarize(v); }
Percentiles percentiles(std::vector<double>& v) { return summarize(v); }

namespace {
std::string quote(const std::string& s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      o += fmt::format("\\u{:04x}", static_cast<int>(c));
      continue;
    }
    o += c;
  }
  return o + "\"";
}
}  // namespace

void FlatJson::num(const std::string& k, double v) {
  fields.emplace_back(k, std::isfinite(v) ? fmt::format("{}", v) : std::string("null"));
}
void FlatJson::str(const std::string& k, const std::string& v) { fields.emplace_back(k, quote(v)); }

std::string FlatJson::dump() const {
  std::string o = "{";
  for (std::size_t i = 0; i < fields.size(); ++i)
    o += fmt::format("{}{}: {}", i ? ", " : "", quote(fields[i].first), fields[i].second);
  return o + "}";
}

std::optional<double> FlatJson::number(const std::string& k) const {
  for (auto& [key, v] : fields)
    if (key == k && !v.empty() && v[0] != '"' && v != "null") {
      try {
        return std::stod(v);
      } catch (...) {
        return std::nullopt;
      }
    }
  return std::nullopt;
}

std::optional<std::string> FlatJson::string(const std::string& k) const {
  for (auto& [key, v] : fields)
    if (key == k && v.size() >= 2 && v[0] == '"') return v.substr(1, v.size() - 2);
  return std::nullopt;
}

std::optional<FlatJson> FlatJson::parse(const std::string& text, std::string& error) {
  FlatJson out;
  std::size_t i = 0;
  auto ws = [&] {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  };
  auto read_string = [&](std::string& s) -> bool {
    if (i >= text.size() || text[i] != '"') return false;
    ++i;
    while (i < text.size() && text[i] != '"') {
      if (text[i] == '\\' && i + 1 < text.size()) ++i;
      s += text[i++];
    }
    if (i >= text.size()) return false;
    ++i;
    return true;
  };
  ws();
  if (i >= text.size() || text[i] != '{') {
    error = "expected '{' at the start";
    return std::nullopt;
  }
  ++i;
  ws();
  if (i < text.size() && text[i] == '}') return out;
  while (true) {
    ws();
    std::string key;
    if (!read_string(key)) {
      error = fmt::format("expected a quoted key at offset {}", i);
      return std::nullopt;
    }
    ws();
    if (i >= text.size() || text[i] != ':') {
      error = fmt::format("expected ':' at offset {}", i);
      return std::nullopt;
    }
    ++i;
    ws();
    if (i < text.size() && text[i] == '"') {
      std::string v;
      if (!read_string(v)) {
        error = fmt::format("unterminated string at offset {}", i);
        return std::nullopt;
      }
      out.str(key, v);
    } else {
      const std::size_t start = i;
      while (i < text.size() && text[i] != ',' && text[i] != '}' && !std::isspace(static_cast<unsigned char>(text[i])))
        ++i;
      const std::string v = text.substr(start, i - start);
      if (v.empty()) {
        error = fmt::format("expected a value at offset {}", start);
        return std::nullopt;
      }
      out.fields.emplace_back(key, v);
    }
    ws();
    if (i < text.size() && text[i] == ',') {
      ++i;
      continue;
    }
    if (i < text.size() && text[i] == '}') return out;
    error = fmt::format("expected ',' or '}}' at offset {}", i);
    return std::nullopt;
  }
}

std::string machine_line() {
  std::ifstream cpu("/proc/cpuinfo");
  std::string line, model;
  while (std::getline(cpu, line))
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 2);
      break;
    }
  std::ifstream la("/proc/loadavg");
  std::string l1, l5, l15;
  la >> l1 >> l5 >> l15;
  return fmt::format("{} cores ({}), load average {} {} {}", ::sysconf(_SC_NPROCESSORS_ONLN), model, l1, l5, l15);
}

namespace {
double us_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t).count();
}

std::optional<double> wakeup_round_trip_us(std::string& error) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
    error = fmt::format("socketpair: {}", std::strerror(errno));
    return std::nullopt;
  }
  constexpr int kTrips = 2000;
  const pid_t child = ::fork();
  if (child < 0) {
    error = fmt::format("fork: {}", std::strerror(errno));
    ::close(sv[0]);
    ::close(sv[1]);
    return std::nullopt;
  }
  char b = 0;
  if (child == 0) {  // echoes every byte until the parent closes its end
    ::close(sv[0]);
    while (::read(sv[1], &b, 1) == 1 && ::write(sv[1], &b, 1) == 1) {
    }
    ::_exit(0);
  }
  ::close(sv[1]);
  std::vector<double> trips;
  trips.reserve(kTrips);
  for (int i = 0; i < kTrips; ++i) {
    const auto t = std::chrono::steady_clock::now();
    if (::write(sv[0], &b, 1) != 1 || ::read(sv[0], &b, 1) != 1) {
      error = fmt::format("ping-pong: {}", std::strerror(errno));
      break;
    }
    trips.push_back(us_since(t));
  }
  ::close(sv[0]);
  ::waitpid(child, nullptr, 0);
  if (!error.empty()) return std::nullopt;
  return percentiles(trips).p50;
}

std::optional<double> synced_append_us(const std::string& dir, std::string& error) {
  const std::string path = dir + "/raftkit-bench-floor.dat";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    error = fmt::format("open {}: {}", path, std::strerror(errno));
    return std::nullopt;
  }
  // As the WAL does (wal_store.cpp, "Preallocation"): zeros written and
  // synced ahead, so an append overwrites and fdatasync flushes data only.
  constexpr int kAppends = 500;
  constexpr std::size_t kRecord = 256;
  const std::vector<char> zeros(kAppends * kRecord, 0), record(kRecord, 0x5a);
  std::vector<double> appends;
  appends.reserve(kAppends);
  bool ok = ::pwrite(fd, zeros.data(), zeros.size(), 0) == static_cast<ssize_t>(zeros.size()) && ::fsync(fd) == 0;
  for (int i = 0; ok && i < kAppends; ++i) {
    const auto t = std::chrono::steady_clock::now();
    ok = ::pwrite(fd, record.data(), kRecord, static_cast<off_t>(i * kRecord)) == static_cast<ssize_t>(kRecord) &&
         ::fdatasync(fd) == 0;
    appends.push_back(us_since(t));
  }
  if (!ok) error = fmt::format("synced append to {}: {}", path, std::strerror(errno));
  ::close(fd);
  ::unlink(path.c_str());
  if (!ok) return std::nullopt;
  return percentiles(appends).p50;
}
}  // namespace

std::optional<Floors> measure_floors(const std::string& dir, std::string& error) {
  Floors f;
  auto rtt = wakeup_round_trip_us(error);
  if (!rtt) return std::nullopt;
  auto sync = synced_append_us(dir, error);
  if (!sync) return std::nullopt;
  f.wakeup_round_trip_us = *rtt;
  f.synced_append_us = *sync;
  return f;
}

}  // namespace raftkit::bench

#include "http_conn.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstring>

#include <fmt/format.h>

namespace raftkit::bench {

namespace {

void set_timeout(int fd, std::chrono::milliseconds t) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(t.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((t.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return out;
}

}  // namespace

HttpConnection::~HttpConnection() { close(); }

void HttpConnection::close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  in_.clear();
}

bool HttpConnection::connect(std::chrono::milliseconds timeout) {
  const auto colon = address_.rfind(':');
  if (colon == std::string::npos) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(std::stoul(address_.substr(colon + 1))));
  if (::inet_pton(AF_INET, address_.substr(0, colon).c_str(), &a.sin_addr) != 1) return false;
  fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  set_timeout(fd_, timeout);
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close();
    return false;
  }
  return true;
}

unsigned HttpConnection::request(std::string_view method, std::string_view target, std::string_view body,
                                 std::chrono::milliseconds timeout) {
  body_.clear();
  if (fd_ < 0 && !connect(timeout)) return 0;
  set_timeout(fd_, timeout);
  std::string out = fmt::format("{} {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n\r\n", method, target, address_,
                                body.size());
  out.append(body);
  for (std::size_t sent = 0; sent < out.size();) {
    const auto n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      close();
      return 0;
    }
    sent += static_cast<std::size_t>(n);
  }
  char buf[16384];
  const auto fill = [&] {
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    in_.append(buf, static_cast<std::size_t>(n));
    return true;
  };
  std::size_t head_end;
  while ((head_end = in_.find("\r\n\r\n")) == std::string::npos)
    if (!fill()) {
      close();
      return 0;
    }
  const std::string head = lower(std::string_view(in_).substr(0, head_end));
  unsigned status = 0;
  if (head.size() > 12) status = static_cast<unsigned>(std::atoi(head.c_str() + 9));  // "http/1.1 200"
  std::size_t length = 0;
  if (auto at = head.find("\r\ncontent-length:"); at != std::string::npos)
    length = static_cast<std::size_t>(std::strtoull(head.c_str() + at + 17, nullptr, 10));
  const bool closes = head.find("\r\nconnection: close") != std::string::npos;
  const std::size_t total = head_end + 4 + length;
  while (in_.size() < total)
    if (!fill()) {
      close();
      return 0;
    }
  body_ = in_.substr(head_end + 4, length);
  in_.erase(0, total);
  if (closes) close();
  return status;
}

}  // namespace raftkit::bench

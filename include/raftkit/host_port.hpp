// raftkit/host_port.hpp — the one parser of "host:port" addresses, for the
// transport's peer book, a node's own listen address and the examples' and
// tools' command lines.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace raftkit {

/// An address split into host and port.
struct HostPort {
  std::string host;        ///< a name or an IP literal, without brackets
  std::uint16_t port = 0;  ///< 1..65535

  friend bool operator==(const HostPort&, const HostPort&) = default;
};

/// "host:port" or "[v6-literal]:port" split into host and port; nullopt if
/// the host is empty, the port is not a number in 1..65535, or an IPv6
/// literal is not bracketed ("::1:80" is ambiguous).
std::optional<HostPort> parse_host_port(std::string_view address);

}  // namespace raftkit

// kv_support.hpp — what the key-value example's real-process tests share.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <boost/json.hpp>

#include "http_client.hpp"
#include "integration_support.hpp"
#include "local_cluster.hpp"

namespace raftkit::integration {

/// A running kv server's GET /status, parsed; nullopt when it is down, does
/// not answer within a second, or answers something that is not an object.
inline std::optional<boost::json::object> kv_status(const counter::LocalCluster& c, std::uint64_t id) {
  if (!c.running(id)) return std::nullopt;
  std::string error;
  auto r = examples::http_request(c.client_address(id), "GET", "/status", "", T(1000), error);
  if (!r || r->status != 200) return std::nullopt;
  boost::system::error_code ec;
  auto v = boost::json::parse(r->body, ec);
  if (ec || !v.is_object()) return std::nullopt;
  return v.as_object();
}

}  // namespace raftkit::integration

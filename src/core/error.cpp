#include "raftkit/error.hpp"

namespace raftkit {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "raftkit"; }
  std::string message(int v) const override {
    switch (static_cast<errc>(v)) {
      case errc::ok: return "success";
      case errc::not_leader: return "not the leader";
      case errc::timeout: return "timed out (outcome unknown)";
      case errc::shutting_down: return "node is shutting down";
      case errc::too_large: return "request too large";
      case errc::busy: return "busy (flow control); retry later";
      case errc::dropped: return "proposal dropped by a leader change";
      case errc::invalid_argument: return "invalid argument";
      case errc::compacted: return "entries compacted behind a snapshot";
      case errc::unavailable: return "entries not available";
      case errc::corrupted: return "data corrupted";
      case errc::io_error: return "storage I/O error";
      case errc::no_space: return "no space left on device";
      case errc::locked: return "data directory locked by another process";
      case errc::cluster_mismatch: return "peer belongs to another cluster";
      case errc::protocol_error: return "malformed message from peer";
    }
    return "unknown raftkit error";
  }
};

}  // namespace

std::string_view error_name(std::error_code ec) noexcept {
  if (ec.category() != raftkit_category()) return "system_error";
  switch (static_cast<errc>(ec.value())) {
    case errc::ok: return "ok";
    case errc::not_leader: return "not_leader";
    case errc::timeout: return "timeout";
    case errc::shutting_down: return "shutting_down";
    case errc::too_large: return "too_large";
    case errc::busy: return "busy";
    case errc::dropped: return "dropped";
    case errc::invalid_argument: return "invalid_argument";
    case errc::compacted: return "compacted";
    case errc::unavailable: return "unavailable";
    case errc::corrupted: return "corrupted";
    case errc::io_error: return "io_error";
    case errc::no_space: return "no_space";
    case errc::locked: return "locked";
    case errc::cluster_mismatch: return "cluster_mismatch";
    case errc::protocol_error: return "protocol_error";
  }
  return "unknown";
}

const std::error_category& raftkit_category() noexcept {
  static const Category category;
  return category;
}

}  // namespace raftkit

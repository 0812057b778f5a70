#include "raftkit/message.hpp"

namespace raftkit {

Payload::Payload(Bytes bytes) {
  if (!bytes.empty()) bytes_ = std::make_shared<const Bytes>(std::move(bytes));
}

std::string_view to_string(MessageType t) {
  switch (t) {
    case MessageType::append: return "append";
    case MessageType::append_response: return "append_response";
    case MessageType::vote: return "vote";
    case MessageType::vote_response: return "vote_response";
    case MessageType::pre_vote: return "pre_vote";
    case MessageType::pre_vote_response: return "pre_vote_response";
    case MessageType::heartbeat: return "heartbeat";
    case MessageType::heartbeat_response: return "heartbeat_response";
    case MessageType::snapshot: return "snapshot";
    case MessageType::snapshot_response: return "snapshot_response";
    case MessageType::timeout_now: return "timeout_now";
    case MessageType::read_index: return "read_index";
    case MessageType::read_index_response: return "read_index_response";
  }
  return "unknown";
}

}  // namespace raftkit

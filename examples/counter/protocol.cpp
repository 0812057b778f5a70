#include "protocol.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <capnp/message.h>
#include <capnp/serialize.h>
#include <fmt/format.h>
#include <kj/exception.h>

#include "counter.capnp.h"

namespace raftkit::counter {
namespace {

std::vector<std::uint8_t> frame(capnp::MessageBuilder& mb) {
  kj::Array<capnp::word> words = capnp::messageToFlatArray(mb);
  auto bytes = words.asBytes();
  std::vector<std::uint8_t> out(kFrameHeader + bytes.size());
  const auto n = static_cast<std::uint32_t>(bytes.size());
  out[0] = static_cast<std::uint8_t>(n >> 24);
  out[1] = static_cast<std::uint8_t>(n >> 16);
  out[2] = static_cast<std::uint8_t>(n >> 8);
  out[3] = static_cast<std::uint8_t>(n);
  std::copy(bytes.begin(), bytes.end(), out.begin() + kFrameHeader);
  return out;
}

capnp::ReaderOptions limits() {
  capnp::ReaderOptions o;
  o.traversalLimitInWords = kMaxFrameBody / 8 * 2;
  o.nestingLimit = 8;
  return o;
}

// The body is copied into word-aligned storage: a vector's bytes need not be.
kj::Array<capnp::word> aligned(const std::vector<std::uint8_t>& body) {
  auto words = kj::heapArray<capnp::word>(body.size() / 8);
  std::memcpy(words.begin(), body.data(), words.size() * 8);
  return words;
}

std::string text(capnp::Text::Reader t) { return std::string(t.cStr(), t.size()); }

}  // namespace

std::vector<std::uint8_t> encode_request(const Request& r) {
  capnp::MallocMessageBuilder mb;
  auto b = mb.initRoot<wire::Request>();
  std::visit(
      [&](const auto& q) {
        using T = std::decay_t<decltype(q)>;
        if constexpr (std::is_same_v<T, IncrRequest>) b.setIncr(q.delta);
        else if constexpr (std::is_same_v<T, GetRequest>) {
          if (q.stale) b.setGetStale();
          else b.setGet();
        }
        else if constexpr (std::is_same_v<T, StatusRequest>) b.setStatus();
        else if constexpr (std::is_same_v<T, TransferLeaderRequest>) b.setTransferLeader(q.target);
        else if constexpr (std::is_same_v<T, AddServerRequest>) {
          auto a = b.initAddServer();
          a.setId(q.id);
          a.setRaftAddress(q.raft_address);
          a.setClientAddress(q.client_address);
        } else if constexpr (std::is_same_v<T, UpdateServerRequest>) {
          auto a = b.initUpdateServer();
          a.setId(q.id);
          a.setRaftAddress(q.raft_address);
          a.setClientAddress(q.client_address);
        } else if constexpr (std::is_same_v<T, RemoveServerRequest>) b.setRemoveServer(q.id);
        else b.setSnapshot();
      },
      r);
  return frame(mb);
}

std::vector<std::uint8_t> encode_reply(const Reply& r) {
  capnp::MallocMessageBuilder mb;
  auto b = mb.initRoot<wire::Reply>();
  switch (r.kind) {
    case ReplyKind::ok: b.setKind(wire::ReplyKind::OK); break;
    case ReplyKind::not_leader: b.setKind(wire::ReplyKind::NOT_LEADER); break;
    case ReplyKind::failed: b.setKind(wire::ReplyKind::FAILED); break;
    case ReplyKind::unknown_outcome: b.setKind(wire::ReplyKind::UNKNOWN_OUTCOME); break;
  }
  b.setValue(r.value);
  b.setCode(r.code);
  b.setMessage(r.message);
  b.setLeaderId(r.leader_id);
  b.setLeaderAddress(r.leader_address);
  if (r.info) {
    auto i = b.initInfo();
    i.setId(r.info->id);
    i.setRole(r.info->role);
    i.setTerm(r.info->term);
    i.setLeader(r.info->leader);
    i.setCommit(r.info->commit);
    i.setApplied(r.info->applied);
    i.setLastIndex(r.info->last_index);
    i.setValue(r.info->value);
    i.setFailure(r.info->failure);
    i.setClientAddress(r.info->client_address);
    auto ids = [](auto list, const std::vector<std::uint64_t>& v) {
      for (unsigned k = 0; k < v.size(); ++k) list.set(k, v[k]);
    };
    ids(i.initVoters(static_cast<unsigned>(r.info->voters.size())), r.info->voters);
    ids(i.initLearners(static_cast<unsigned>(r.info->learners.size())), r.info->learners);
    ids(i.initStaging(static_cast<unsigned>(r.info->staging.size())), r.info->staging);
    ids(i.initVotersOutgoing(static_cast<unsigned>(r.info->voters_outgoing.size())), r.info->voters_outgoing);
    i.setReplacing(r.info->replacing);
    i.setIncarnation(r.info->incarnation);
    i.setGeneration(r.info->generation);
    i.setSnapshotIndex(r.info->snapshot_index);
    i.setDiagnosis(r.info->diagnosis);
    i.setDiskFull(r.info->disk_full);
  }
  return frame(mb);
}

std::optional<std::size_t> frame_body_size(const std::uint8_t (&h)[kFrameHeader]) {
  const std::size_t n = (std::size_t{h[0]} << 24) | (std::size_t{h[1]} << 16) | (std::size_t{h[2]} << 8) | h[3];
  if (n == 0 || n % 8 != 0 || n > kMaxFrameBody) return std::nullopt;
  return n;
}

std::optional<Request> decode_request(const std::vector<std::uint8_t>& body, std::string& error) {
  if (body.empty() || body.size() % 8 != 0 || body.size() > kMaxFrameBody) {
    error = "bad frame length";
    return std::nullopt;
  }
  try {
    auto words = aligned(body);
    capnp::FlatArrayMessageReader reader(words, limits());
    auto r = reader.getRoot<wire::Request>();
    switch (r.which()) {
      case wire::Request::INCR: return Request{IncrRequest{r.getIncr()}};
      case wire::Request::GET: return Request{GetRequest{}};
      case wire::Request::GET_STALE: return Request{GetRequest{true}};
      case wire::Request::STATUS: return Request{StatusRequest{}};
      case wire::Request::TRANSFER_LEADER: return Request{TransferLeaderRequest{r.getTransferLeader()}};
      case wire::Request::ADD_SERVER: {
        auto a = r.getAddServer();
        return Request{AddServerRequest{a.getId(), text(a.getRaftAddress()), text(a.getClientAddress())}};
      }
      case wire::Request::UPDATE_SERVER: {
        auto a = r.getUpdateServer();
        return Request{UpdateServerRequest{a.getId(), text(a.getRaftAddress()), text(a.getClientAddress())}};
      }
      case wire::Request::REMOVE_SERVER: return Request{RemoveServerRequest{r.getRemoveServer()}};
      case wire::Request::SNAPSHOT: return Request{SnapshotRequest{}};
    }
    error = "unknown request type";
  } catch (const kj::Exception& e) {
    error = "malformed request: " + std::string(e.getDescription().cStr());
  }
  return std::nullopt;
}

std::optional<Reply> decode_reply(const std::vector<std::uint8_t>& body, std::string& error) {
  if (body.empty() || body.size() % 8 != 0 || body.size() > kMaxFrameBody) {
    error = "bad frame length";
    return std::nullopt;
  }
  try {
    auto words = aligned(body);
    capnp::FlatArrayMessageReader reader(words, limits());
    auto r = reader.getRoot<wire::Reply>();
    Reply out;
    switch (r.getKind()) {
      case wire::ReplyKind::OK: out.kind = ReplyKind::ok; break;
      case wire::ReplyKind::NOT_LEADER: out.kind = ReplyKind::not_leader; break;
      case wire::ReplyKind::FAILED: out.kind = ReplyKind::failed; break;
      case wire::ReplyKind::UNKNOWN_OUTCOME: out.kind = ReplyKind::unknown_outcome; break;
      default: error = "unknown reply kind"; return std::nullopt;
    }
    out.value = r.getValue();
    out.code = text(r.getCode());
    out.message = text(r.getMessage());
    out.leader_id = r.getLeaderId();
    out.leader_address = text(r.getLeaderAddress());
    if (r.hasInfo()) {
      auto i = r.getInfo();
      NodeInfo n;
      n.id = i.getId();
      n.role = text(i.getRole());
      n.term = i.getTerm();
      n.leader = i.getLeader();
      n.commit = i.getCommit();
      n.applied = i.getApplied();
      n.last_index = i.getLastIndex();
      n.value = i.getValue();
      n.failure = text(i.getFailure());
      n.client_address = text(i.getClientAddress());
      for (auto id : i.getVoters()) n.voters.push_back(id);
      for (auto id : i.getLearners()) n.learners.push_back(id);
      for (auto id : i.getStaging()) n.staging.push_back(id);
      for (auto id : i.getVotersOutgoing()) n.voters_outgoing.push_back(id);
      n.replacing = i.getReplacing();
      n.incarnation = i.getIncarnation();
      n.generation = i.getGeneration();
      n.snapshot_index = i.getSnapshotIndex();
      n.diagnosis = text(i.getDiagnosis());
      n.disk_full = i.getDiskFull();
      out.info = std::move(n);
    }
    return out;
  } catch (const kj::Exception& e) {
    error = "malformed reply: " + std::string(e.getDescription().cStr());
  }
  return std::nullopt;
}

std::string_view kind_name(ReplyKind k) {
  switch (k) {
    case ReplyKind::ok: return "ok";
    case ReplyKind::not_leader: return "not leader";
    case ReplyKind::failed: return "failed";
    case ReplyKind::unknown_outcome: return "unknown outcome";
  }
  return "?";
}

namespace {
std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  while (true) {
    auto pos = s.find(sep);
    parts.push_back(s.substr(0, pos));
    if (pos == std::string_view::npos) break;
    s.remove_prefix(pos + 1);
  }
  return parts;
}
}  // namespace

std::string parse_address_list(std::string_view s, std::vector<std::string>& out) {
  out.clear();
  if (s.empty()) return "empty list";
  for (auto item : split(s, ',')) {
    if (!parse_host_port(item)) return fmt::format("'{}' is not host:port", item);
    out.emplace_back(item);
  }
  return {};
}

}  // namespace raftkit::counter

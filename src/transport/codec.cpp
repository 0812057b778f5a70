// transport/codec.cpp — see codec.hpp for the frame format and the limits.
#include "transport/codec.hpp"

#include <algorithm>
#include <cstring>
#include <limits>

#include <capnp/message.h>
#include <capnp/orphan.h>
#include <capnp/serialize.h>
#include <kj/array.h>
#include <kj/exception.h>

#include "raftkit.capnp.h"

namespace raftkit::transport {
namespace {

constexpr std::uint8_t kMagic0 = 'R';
constexpr std::uint8_t kMagic1 = 'K';
constexpr std::size_t kWord = sizeof(capnp::word);
constexpr std::size_t kAbsoluteMaxBody = std::numeric_limits<std::uint32_t>::max() & ~std::size_t{7};

std::size_t effective_max(const CodecLimits& limits) { return std::min(limits.max_frame_bytes, kAbsoluteMaxBody); }

void put_u32le(std::uint8_t* p, std::uint32_t v) {
  p[0] = static_cast<std::uint8_t>(v);
  p[1] = static_cast<std::uint8_t>(v >> 8);
  p[2] = static_cast<std::uint8_t>(v >> 16);
  p[3] = static_cast<std::uint8_t>(v >> 24);
}

std::uint32_t get_u32le(const std::uint8_t* p) {
  return static_cast<std::uint32_t>(p[0]) | static_cast<std::uint32_t>(p[1]) << 8 |
         static_cast<std::uint32_t>(p[2]) << 16 | static_cast<std::uint32_t>(p[3]) << 24;
}

// ---- encoding -------------------------------------------------------------

struct Encoder {
  capnp::Orphanage orphanage;
  const CodecLimits& limits;
  std::size_t external_segments = 0;

  // Sets a Data field, referencing the bytes in place when that is safe
  // (see codec.hpp), copying otherwise. `bytes` must outlive the builder.
  template <typename SetFn, typename AdoptFn>
  void put_data(const Bytes& bytes, SetFn&& set, AdoptFn&& adopt) {
    put_view(BytesView(bytes), std::forward<SetFn>(set), std::forward<AdoptFn>(adopt));
  }
  template <typename SetFn, typename AdoptFn>
  void put_view(BytesView bytes, SetFn&& set, AdoptFn&& adopt) {
    const bool aligned = reinterpret_cast<std::uintptr_t>(bytes.data()) % kWord == 0;
    if (!bytes.empty() && bytes.size() >= limits.external_payload_min_bytes && bytes.size() % kWord == 0 && aligned &&
        external_segments < kMaxExternalSegments) {
      ++external_segments;
      adopt(orphanage.referenceExternalData(capnp::Data::Reader(bytes.data(), bytes.size())));
    } else if (!bytes.empty()) {
      set(capnp::Data::Reader(bytes.data(), bytes.size()));
    }
  }

  static void put_ids(capnp::List<std::uint64_t>::Builder list, const std::vector<NodeId>& ids) {
    for (unsigned i = 0; i < ids.size(); ++i) list.set(i, ids[i].value);
  }

  static void put_incarnations(capnp::List<wire::Incarnation>::Builder list,
                               const std::map<NodeId, std::uint64_t>& incarnations) {
    unsigned i = 0;
    for (const auto& [id, incarnation] : incarnations) {
      list[i].setNode(id.value);
      list[i].setIncarnation(incarnation);
      ++i;
    }
  }

  void put_message(wire::Message::Builder b, const Message& m) {
    b.setType(static_cast<wire::MessageType>(static_cast<std::uint16_t>(m.type)));
    b.setFrom(m.from.value);
    b.setTo(m.to.value);
    b.setTerm(m.term.value);
    b.setLogTerm(m.log_term.value);
    b.setIndex(m.index.value);
    b.setCommit(m.commit.value);
    if (!m.entries.empty()) {
      auto entries = b.initEntries(static_cast<unsigned>(m.entries.size()));
      for (unsigned i = 0; i < m.entries.size(); ++i) {
        const Entry& e = m.entries[i];
        auto eb = entries[i];
        eb.setTerm(e.term.value);
        eb.setIndex(e.index.value);
        eb.setType(static_cast<wire::EntryType>(static_cast<std::uint16_t>(e.type)));
        put_view(
            e.payload, [&](capnp::Data::Reader d) { eb.setPayload(d); },
            [&](capnp::Orphan<capnp::Data>&& o) { eb.adoptPayload(kj::mv(o)); });
      }
    }
    b.setReject(m.reject);
    b.setRejectHint(m.reject_hint.value);
    b.setHintTerm(m.hint_term.value);
    b.setContext(m.context);
    b.setIncarnation(m.incarnation);
    b.setGeneration(m.generation);
    b.setGroup(m.group);
    if (m.snapshot) {
      auto sb = b.getSnapshot().initMeta();
      sb.setIndex(m.snapshot->index.value);
      sb.setTerm(m.snapshot->term.value);
      auto mb = sb.initMembership();
      const Membership& ms = m.snapshot->membership;
      put_ids(mb.initVoters(static_cast<unsigned>(ms.voters.size())), ms.voters);
      put_ids(mb.initLearners(static_cast<unsigned>(ms.learners.size())), ms.learners);
      put_ids(mb.initVotersOutgoing(static_cast<unsigned>(ms.voters_outgoing.size())), ms.voters_outgoing);
      put_ids(mb.initStaging(static_cast<unsigned>(ms.staging.size())), ms.staging);
      auto addresses = mb.initAddresses(static_cast<unsigned>(ms.addresses.size()));
      unsigned i = 0;
      for (const auto& [id, address] : ms.addresses) {
        addresses[i].setNode(id.value);
        addresses[i].setAddress(address);
        ++i;
      }
      put_incarnations(mb.initIncarnations(static_cast<unsigned>(ms.incarnations.size())), ms.incarnations);
      put_incarnations(mb.initOutgoingIncarnations(static_cast<unsigned>(ms.outgoing_incarnations.size())),
                       ms.outgoing_incarnations);
      mb.setGeneration(ms.generation);
    } else {
      b.getSnapshot().setNone();
    }
    put_data(
        m.snapshot_data, [&](capnp::Data::Reader d) { b.setSnapshotData(d); },
        [&](capnp::Orphan<capnp::Data>&& o) { b.adoptSnapshotData(kj::mv(o)); });
  }
};

// ---- decoding -------------------------------------------------------------

bool read_message(wire::Message::Reader r, Message& m) {
  const auto type = static_cast<std::uint16_t>(r.getType());
  if (type < static_cast<std::uint16_t>(MessageType::append) ||
      type > static_cast<std::uint16_t>(MessageType::read_index_response))
    return false;
  m.type = static_cast<MessageType>(type);
  m.from = NodeId{r.getFrom()};
  m.to = NodeId{r.getTo()};
  m.term = Term{r.getTerm()};
  m.log_term = Term{r.getLogTerm()};
  m.index = Index{r.getIndex()};
  m.commit = Index{r.getCommit()};
  auto entries = r.getEntries();
  m.entries.clear();
  m.entries.reserve(entries.size());
  for (auto e : entries) {
    const auto etype = static_cast<std::uint16_t>(e.getType());
    if (etype > static_cast<std::uint16_t>(EntryType::membership)) return false;
    auto payload = e.getPayload();
    m.entries.push_back(Entry{Term{e.getTerm()}, Index{e.getIndex()}, static_cast<EntryType>(etype),
                              Bytes(payload.begin(), payload.end())});
  }
  m.reject = r.getReject();
  m.reject_hint = Index{r.getRejectHint()};
  m.hint_term = Term{r.getHintTerm()};
  m.context = r.getContext();
  m.incarnation = r.getIncarnation();
  m.generation = r.getGeneration();
  m.group = r.getGroup();
  auto snap = r.getSnapshot();
  switch (snap.which()) {
    case wire::Message::Snapshot::NONE:
      m.snapshot.reset();
      break;
    case wire::Message::Snapshot::META: {
      auto meta = snap.getMeta();
      SnapshotMeta sm;
      sm.index = Index{meta.getIndex()};
      sm.term = Term{meta.getTerm()};
      auto mr = meta.getMembership();
      auto ids = [](capnp::List<std::uint64_t>::Reader list) {
        std::vector<NodeId> out;
        out.reserve(list.size());
        for (auto v : list) out.push_back(NodeId{v});
        return out;
      };
      sm.membership.voters = ids(mr.getVoters());
      sm.membership.learners = ids(mr.getLearners());
      sm.membership.voters_outgoing = ids(mr.getVotersOutgoing());
      sm.membership.staging = ids(mr.getStaging());
      for (auto a : mr.getAddresses()) {
        auto text = a.getAddress();
        if (!sm.membership.addresses.emplace(NodeId{a.getNode()}, std::string(text.begin(), text.end())).second)
          return false;
      }
      const auto incarnations = [](capnp::List<wire::Incarnation>::Reader list, std::map<NodeId, std::uint64_t>& out) {
        for (auto i : list)
          if (!out.emplace(NodeId{i.getNode()}, i.getIncarnation()).second) return false;
        return true;
      };
      if (!incarnations(mr.getIncarnations(), sm.membership.incarnations) ||
          !incarnations(mr.getOutgoingIncarnations(), sm.membership.outgoing_incarnations))
        return false;
      sm.membership.generation = mr.getGeneration();
      m.snapshot = std::move(sm);
      break;
    }
    default:
      return false;
  }
  auto data = r.getSnapshotData();
  m.snapshot_data.assign(data.begin(), data.end());
  return true;
}

std::error_code decode_aligned(kj::ArrayPtr<const capnp::word> words, FramePayload& out, const CodecLimits& limits) {
  capnp::ReaderOptions options;
  options.traversalLimitInWords = effective_max(limits) / kWord + 64;
  options.nestingLimit = limits.nesting_limit;
  capnp::FlatArrayMessageReader reader(words, options);
  if (reader.getEnd() != words.end()) return errc::protocol_error;  // trailing bytes
  auto frame = reader.getRoot<wire::Frame>();
  switch (frame.which()) {
    case wire::Frame::MESSAGE: {
      Message m;
      if (!read_message(frame.getMessage(), m)) return errc::protocol_error;
      out = std::move(m);
      return {};
    }
    case wire::Frame::HANDSHAKE: {
      auto h = frame.getHandshake();
      auto id = h.getClusterId();
      if (id.size() > kMaxClusterIdBytes) return errc::protocol_error;
      out = Handshake{std::string(id.cStr(), id.size()), NodeId{h.getNodeId()}, h.getProtocolVersion(),
                      NodeId{h.getExpectedPeer()}, h.getGeneration()};
      return {};
    }
    case wire::Frame::SNAPSHOT_CHUNK: {
      auto c = frame.getSnapshotChunk();
      SnapshotChunk chunk;
      if (!c.hasMessage() || !read_message(c.getMessage(), chunk.message)) return errc::protocol_error;
      if (chunk.message.type != MessageType::snapshot || !chunk.message.snapshot) return errc::protocol_error;
      chunk.transfer = c.getTransfer();
      chunk.offset = c.getOffset();
      chunk.total = c.getTotalBytes();
      chunk.checksum = c.getChecksum();
      auto data = c.getData();
      if (chunk.offset > chunk.total || data.size() > chunk.total - chunk.offset) return errc::protocol_error;
      chunk.data.assign(data.begin(), data.end());
      out = std::move(chunk);
      return {};
    }
    case wire::Frame::SNAPSHOT_ACK: {
      auto a = frame.getSnapshotAck();
      const auto status = static_cast<std::uint16_t>(a.getStatus());
      if (status > static_cast<std::uint16_t>(SnapshotAck::Status::failed)) return errc::protocol_error;
      out = SnapshotAck{NodeId{a.getFrom()}, NodeId{a.getTo()}, a.getTransfer(), a.getReceived(),
                        static_cast<SnapshotAck::Status>(status), a.getGroup()};
      return {};
    }
    case wire::Frame::HANDSHAKE_REPLY: {
      auto h = frame.getHandshakeReply();
      auto reason = h.getReason();
      if (reason.size() > 4096) return errc::protocol_error;
      out = HandshakeReply{h.getAccepted(), NodeId{h.getNodeId()}, std::string(reason.cStr(), reason.size()),
                           h.getMember(), NodeId{h.getLeader()}, Index{h.getCommit()}};
      return {};
    }
    default:
      return errc::protocol_error;  // a union member this version does not know
  }
}

}  // namespace

// ---- EncodedFrame -----------------------------------------------------------

struct EncodedFrame::State {
  FramePayload payload;  // owns external payloads; never moved once built
  capnp::MallocMessageBuilder builder;
  std::vector<std::uint8_t> head;  // raftkit header + capnp segment table
  std::vector<boost::asio::const_buffer> buffers;
  std::size_t size = 0;
  explicit State(FramePayload p) : payload(std::move(p)) {}
};

EncodedFrame::EncodedFrame() = default;
EncodedFrame::EncodedFrame(EncodedFrame&&) noexcept = default;
EncodedFrame& EncodedFrame::operator=(EncodedFrame&&) noexcept = default;
EncodedFrame::~EncodedFrame() = default;

const std::vector<boost::asio::const_buffer>& EncodedFrame::buffers() const {
  static const std::vector<boost::asio::const_buffer> empty;
  return state_ ? state_->buffers : empty;
}

std::size_t EncodedFrame::size() const { return state_ ? state_->size : 0; }

Bytes EncodedFrame::to_bytes() const {
  Bytes out;
  out.reserve(size());
  for (const auto& b : buffers()) {
    const auto* p = static_cast<const std::uint8_t*>(b.data());
    out.insert(out.end(), p, p + b.size());
  }
  return out;
}

std::error_code encode_frame(FramePayload payload, EncodedFrame& out, const CodecLimits& limits) {
  out = EncodedFrame{};
  try {
    auto state = std::make_unique<EncodedFrame::State>(std::move(payload));
    auto root = state->builder.initRoot<wire::Frame>();
    Encoder enc{state->builder.getOrphanage(), limits};
    if (const auto* m = std::get_if<Message>(&state->payload)) {
      enc.put_message(root.initMessage(), *m);
    } else if (const auto* h = std::get_if<Handshake>(&state->payload)) {
      if (h->cluster_id.size() > kMaxClusterIdBytes) return errc::invalid_argument;
      auto hb = root.initHandshake();
      hb.setClusterId(capnp::Text::Reader(h->cluster_id.data(), h->cluster_id.size()));
      hb.setNodeId(h->node.value);
      hb.setProtocolVersion(h->protocol_version);
      hb.setExpectedPeer(h->expected_peer.value);
      hb.setGeneration(h->generation);
    } else if (const auto* c = std::get_if<SnapshotChunk>(&state->payload)) {
      auto cb = root.initSnapshotChunk();
      enc.put_message(cb.initMessage(), c->message);
      cb.setTransfer(c->transfer);
      cb.setOffset(c->offset);
      cb.setTotalBytes(c->total);
      cb.setChecksum(c->checksum);
      const BytesView bytes = c->bytes();
      enc.put_view(
          bytes, [&](capnp::Data::Reader d) { cb.setData(d); },
          [&](capnp::Orphan<capnp::Data>&& o) { cb.adoptData(kj::mv(o)); });
    } else if (const auto* a = std::get_if<SnapshotAck>(&state->payload)) {
      auto ab = root.initSnapshotAck();
      ab.setFrom(a->from.value);
      ab.setTo(a->to.value);
      ab.setTransfer(a->transfer);
      ab.setReceived(a->received);
      ab.setStatus(static_cast<wire::SnapshotAckStatus>(static_cast<std::uint16_t>(a->status)));
      ab.setGroup(a->group);
    } else {
      const auto& r = std::get<HandshakeReply>(state->payload);
      auto rb = root.initHandshakeReply();
      rb.setAccepted(r.accepted);
      rb.setNodeId(r.node.value);
      rb.setReason(capnp::Text::Reader(r.reason.data(), r.reason.size()));
      rb.setMember(r.member);
      rb.setLeader(r.leader.value);
      rb.setCommit(r.commit.value);
    }

    auto segments = state->builder.getSegmentsForOutput();
    const std::size_t n = segments.size();
    const std::size_t table_bytes = (4 * (n + 1) + 7) & ~std::size_t{7};
    std::size_t body = table_bytes;
    for (auto s : segments) body += s.size() * kWord;
    if (body > effective_max(limits)) return errc::too_large;

    state->head.assign(kFrameHeaderBytes + table_bytes, 0);
    std::uint8_t* h = state->head.data();
    h[0] = kMagic0;
    h[1] = kMagic1;
    h[2] = kFrameVersion;
    h[3] = 0;
    put_u32le(h + 4, static_cast<std::uint32_t>(body));
    put_u32le(h + 8, static_cast<std::uint32_t>(n - 1));
    for (std::size_t i = 0; i < n; ++i) put_u32le(h + 12 + 4 * i, static_cast<std::uint32_t>(segments[i].size()));

    state->buffers.reserve(n + 1);
    state->buffers.emplace_back(state->head.data(), state->head.size());
    for (auto s : segments) state->buffers.emplace_back(s.begin(), s.size() * kWord);
    state->size = kFrameHeaderBytes + body;
    out.state_ = std::move(state);
    return {};
  } catch (const kj::Exception&) {
    return errc::protocol_error;
  } catch (const std::bad_alloc&) {
    return errc::too_large;
  }
}

std::error_code encode(Message msg, EncodedFrame& out, const CodecLimits& limits) {
  return encode_frame(FramePayload{std::move(msg)}, out, limits);
}

Bytes encode_to_bytes(const Message& msg, const CodecLimits& limits) {
  EncodedFrame frame;
  if (encode(msg, frame, limits)) return {};
  return frame.to_bytes();
}

std::error_code decode_frame_header(BytesView header, std::size_t& body_bytes, const CodecLimits& limits) {
  body_bytes = 0;
  if (header.size() < kFrameHeaderBytes) return errc::protocol_error;
  if (header[0] != kMagic0 || header[1] != kMagic1 || header[2] != kFrameVersion || header[3] != 0)
    return errc::protocol_error;
  const std::size_t len = get_u32le(header.data() + 4);
  if (len == 0 || len % kWord != 0) return errc::protocol_error;
  if (len > effective_max(limits)) return errc::too_large;
  body_bytes = len;
  return {};
}

std::error_code decode_frame_body(BytesView body, FramePayload& out, const CodecLimits& limits) {
  if (body.empty() || body.size() % kWord != 0) return errc::protocol_error;
  if (body.size() > effective_max(limits)) return errc::too_large;
  try {
    const std::size_t words = body.size() / kWord;
    if (reinterpret_cast<std::uintptr_t>(body.data()) % alignof(capnp::word) == 0) {
      return decode_aligned(
          kj::ArrayPtr<const capnp::word>(reinterpret_cast<const capnp::word*>(body.data()), words), out, limits);
    }
    auto copy = kj::heapArray<capnp::word>(words);
    std::memcpy(copy.begin(), body.data(), body.size());
    return decode_aligned(kj::ArrayPtr<const capnp::word>(copy.begin(), copy.size()), out, limits);
  } catch (const kj::Exception&) {
    return errc::protocol_error;
  } catch (const std::bad_alloc&) {
    return errc::too_large;
  }
}

std::error_code decode_frame(BytesView frame, FramePayload& out, const CodecLimits& limits) {
  std::size_t body = 0;
  if (auto ec = decode_frame_header(frame, body, limits)) return ec;
  if (frame.size() != kFrameHeaderBytes + body) return errc::protocol_error;
  return decode_frame_body(frame.subspan(kFrameHeaderBytes), out, limits);
}

std::error_code decode(BytesView frame, Message& out, const CodecLimits& limits) {
  FramePayload payload;
  if (auto ec = decode_frame(frame, payload, limits)) return ec;
  auto* m = std::get_if<Message>(&payload);
  if (!m) return errc::protocol_error;
  out = std::move(*m);
  return {};
}

}  // namespace raftkit::transport

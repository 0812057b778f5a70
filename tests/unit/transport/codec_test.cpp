// Codec: every message kind round-trips with every field set; malformed,
// truncated, oversized and bit-flipped frames are refused with an error and
// never crash.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <set>

#include <capnp/message.h>
#include <capnp/serialize.h>

#include "raftkit.capnp.h"
#include "transport/codec.hpp"
#include "unit/transport/test_messages.hpp"

using namespace raftkit;
using namespace raftkit::transport;

namespace {

// Wraps a hand-built wire::Frame into a raftkit frame (header + flat message).
Bytes frame_from_builder(capnp::MessageBuilder& b) {
  auto words = capnp::messageToFlatArray(b);
  auto bytes = words.asBytes();
  Bytes out(kFrameHeaderBytes, 0);
  out[0] = 'R';
  out[1] = 'K';
  out[2] = kFrameVersion;
  const auto n = static_cast<std::uint32_t>(bytes.size());
  for (int i = 0; i < 4; ++i) out[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  out.resize(kFrameHeaderBytes + bytes.size());
  std::memcpy(out.data() + kFrameHeaderBytes, bytes.begin(), bytes.size());
  return out;
}

}  // namespace

TEST_CASE("codec: every message type round-trips with all fields populated", "[codec]") {
  for (auto type : test::all_message_types()) {
    CAPTURE(to_string(type));
    const Message original = test::full_message(type);
    Bytes frame = encode_to_bytes(original);
    REQUIRE(!frame.empty());
    Message decoded;
    REQUIRE(decode(frame, decoded) == std::error_code{});
    CHECK(decoded == original);
  }
}

TEST_CASE("codec: an absent snapshot stays absent, an empty one stays present", "[codec]") {
  Message m;
  m.type = MessageType::heartbeat;
  m.from = NodeId{1};
  m.to = NodeId{2};
  Message out;
  REQUIRE(!decode(encode_to_bytes(m), out));
  CHECK(!out.snapshot.has_value());
  m.type = MessageType::snapshot;
  m.snapshot = SnapshotMeta{};
  REQUIRE(!decode(encode_to_bytes(m), out));
  CHECK(out == m);
}

TEST_CASE("codec: large aligned payloads are referenced in place, not copied, and still round-trip", "[codec]") {
  Message m = test::full_message(MessageType::append);
  m.entries.clear();
  for (int i = 0; i < 200; ++i)  // more than kMaxExternalSegments: the rest are copied
    m.entries.push_back(Entry{Term{3}, Index{static_cast<std::uint64_t>(10 + i)}, EntryType::normal, Bytes(2048, static_cast<std::uint8_t>(i))});
  const Message expected = m;
  std::set<const void*> payloads;
  for (const auto& e : m.entries) payloads.insert(e.payload.data());
  EncodedFrame frame;
  REQUIRE(!encode(std::move(m), frame));  // the frame keeps the moved payload buffers
  std::size_t referenced = 0;
  for (const auto& b : frame.buffers()) referenced += payloads.count(b.data());
  CHECK(referenced == kMaxExternalSegments);
  m = expected;
  Message out;
  REQUIRE(!decode(frame.to_bytes(), out));
  CHECK(out == m);
}

TEST_CASE("codec: handshake and reply round-trip", "[codec]") {
  Handshake h{"cluster-a", NodeId{7}, kProtocolVersion, NodeId{9}, 2};
  EncodedFrame f;
  REQUIRE(!encode_frame(h, f));
  FramePayload p;
  REQUIRE(!decode_frame(f.to_bytes(), p));
  REQUIRE(std::holds_alternative<Handshake>(p));
  CHECK(std::get<Handshake>(p) == h);

  HandshakeReply r{false, NodeId{9}, "wrong cluster", false, {}, {}};
  REQUIRE(!encode_frame(r, f));
  REQUIRE(!decode_frame(f.to_bytes(), p));
  REQUIRE(std::holds_alternative<HandshakeReply>(p));
  CHECK(std::get<HandshakeReply>(p) == r);

  // What a node says of itself, for a node about to bootstrap.
  HandshakeReply member{true, NodeId{9}, {}, true, NodeId{2}, Index{57}};
  REQUIRE(!encode_frame(member, f));
  REQUIRE(!decode_frame(f.to_bytes(), p));
  REQUIRE(std::holds_alternative<HandshakeReply>(p));
  CHECK(std::get<HandshakeReply>(p) == member);

  Message m;
  CHECK(decode(f.to_bytes(), m) == errc::protocol_error);  // a reply is not a Message
}

TEST_CASE("codec: unaligned input is decoded through a copy", "[codec]") {
  const Message original = test::full_message(MessageType::snapshot);
  Bytes frame = encode_to_bytes(original);
  Bytes shifted(frame.size() + 1);
  std::memcpy(shifted.data() + 1, frame.data(), frame.size());
  Message out;
  REQUIRE(!decode(BytesView(shifted).subspan(1), out));
  CHECK(out == original);
}

TEST_CASE("codec: every truncation of a frame is an error", "[codec][malformed]") {
  Bytes frame = encode_to_bytes(test::full_message(MessageType::append));
  for (std::size_t n = 0; n < frame.size(); ++n) {
    Message out;
    CAPTURE(n);
    CHECK(decode(BytesView(frame.data(), n), out) != std::error_code{});
  }
  // A body shorter than its header claims, decoded on its own, is refused too.
  FramePayload p;
  CHECK(decode_frame_body(BytesView(frame).subspan(kFrameHeaderBytes, 16), p) != std::error_code{});
}

TEST_CASE("codec: a frame longer than the limit is refused from its header, before any allocation", "[codec][malformed]") {
  CodecLimits small;
  small.max_frame_bytes = 1024;
  Message m = test::full_message(MessageType::append);
  Bytes frame = encode_to_bytes(m);
  REQUIRE(frame.size() > 1024 + kFrameHeaderBytes);
  std::size_t body = 0;
  CHECK(decode_frame_header(BytesView(frame.data(), kFrameHeaderBytes), body, small) == errc::too_large);
  Message out;
  CHECK(decode(frame, out, small) == errc::too_large);

  EncodedFrame f;
  CHECK(encode(m, f, small) == errc::too_large);
  CHECK(f.size() == 0);

  // A header claiming 4 GiB - 8 with the default limit: too large.
  Bytes huge = {'R', 'K', kFrameVersion, 0, 0xf8, 0xff, 0xff, 0xff};
  CHECK(decode_frame_header(huge, body) == errc::too_large);
}

TEST_CASE("codec: bad magic, version, reserved byte, length and trailing bytes are protocol errors", "[codec][malformed]") {
  const Bytes good = encode_to_bytes(test::full_message(MessageType::vote));
  Message out;
  for (std::size_t i : {0, 1, 2, 3}) {
    Bytes bad = good;
    bad[i] ^= 0x40;
    CHECK(decode(bad, out) == errc::protocol_error);
  }
  Bytes odd = good;
  odd[4] = static_cast<std::uint8_t>(odd[4] + 1);  // length not a multiple of 8
  CHECK(decode(odd, out) == errc::protocol_error);
  Bytes zero = {'R', 'K', kFrameVersion, 0, 0, 0, 0, 0};
  CHECK(decode(zero, out) == errc::protocol_error);
  Bytes trailing = good;
  trailing.insert(trailing.end(), 8, 0);
  CHECK(decode(trailing, out) == errc::protocol_error);  // bytes after the frame
  // Extra words inside the body (beyond the capnp message) are refused too.
  Bytes padded = good;
  padded.insert(padded.end(), 8, 0);
  const auto n = static_cast<std::uint32_t>(padded.size() - kFrameHeaderBytes);
  for (int i = 0; i < 4; ++i) padded[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
  CHECK(decode(padded, out) == errc::protocol_error);
}

TEST_CASE("codec: unknown message and entry types are protocol errors", "[codec][malformed]") {
  Message out;
  for (std::uint16_t bad : {0, 14, 200}) {
    CAPTURE(bad);
    capnp::MallocMessageBuilder b;
    auto m = b.initRoot<raftkit::wire::Frame>().initMessage();
    m.setType(static_cast<raftkit::wire::MessageType>(bad));
    CHECK(decode(frame_from_builder(b), out) == errc::protocol_error);
  }
  {
    capnp::MallocMessageBuilder b;
    auto m = b.initRoot<raftkit::wire::Frame>().initMessage();
    m.setType(raftkit::wire::MessageType::APPEND);
    m.initEntries(1)[0].setType(static_cast<raftkit::wire::EntryType>(3));
    CHECK(decode(frame_from_builder(b), out) == errc::protocol_error);
  }
  {
    capnp::MallocMessageBuilder b;
    auto m = b.initRoot<raftkit::wire::Frame>().initMessage();
    m.setType(raftkit::wire::MessageType::APPEND);
    REQUIRE(!decode(frame_from_builder(b), out));
    CHECK(out.type == MessageType::append);
  }
}

TEST_CASE("codec: garbage bodies behind a valid header never crash", "[codec][malformed]") {
  std::mt19937_64 rng(42);
  int errors = 0;
  for (int round = 0; round < 2000; ++round) {
    const std::size_t words = 1 + rng() % 64;
    Bytes frame(kFrameHeaderBytes + words * 8);
    frame[0] = 'R';
    frame[1] = 'K';
    frame[2] = kFrameVersion;
    const auto n = static_cast<std::uint32_t>(words * 8);
    for (int i = 0; i < 4; ++i) frame[4 + i] = static_cast<std::uint8_t>(n >> (8 * i));
    for (std::size_t i = kFrameHeaderBytes; i < frame.size(); ++i) frame[i] = static_cast<std::uint8_t>(rng());
    if (round % 2 == 0) {  // a plausible single-segment table, so the reader goes deeper
      std::memset(frame.data() + 8, 0, 4);
      const auto seg = static_cast<std::uint32_t>(words - 1);
      for (int i = 0; i < 4; ++i) frame[12 + i] = static_cast<std::uint8_t>(seg >> (8 * i));
    }
    Message out;
    if (decode(frame, out)) ++errors;
  }
  CHECK(errors > 1000);
}

TEST_CASE("codec: every single-bit flip of a frame decodes or fails cleanly", "[codec][malformed]") {
  const Bytes good = encode_to_bytes(test::full_message(MessageType::snapshot));
  int failures = 0;
  for (std::size_t bit = 0; bit < good.size() * 8; ++bit) {
    Bytes bad = good;
    bad[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    Message out;
    if (decode(bad, out)) ++failures;
  }
  CHECK(failures > 0);
}

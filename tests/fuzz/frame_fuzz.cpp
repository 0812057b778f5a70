// libFuzzer target for the transport's frame decoder: any bytes, as they
// would arrive from an untrusted peer, must decode or fail with an error
// value — never crash, hang, read out of bounds or allocate without bound.
// Whatever decodes must re-encode and decode to the same value.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "transport/codec.hpp"

using namespace raftkit;
using namespace raftkit::transport;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  CodecLimits limits;
  limits.max_frame_bytes = 1 << 20;
  BytesView input(data, size);

  // Header path as the TCP reader uses it: header first, then the body.
  std::size_t body = 0;
  if (size >= kFrameHeaderBytes && !decode_frame_header(input.first(kFrameHeaderBytes), body, limits)) {
    if (body > limits.max_frame_bytes) std::abort();  // the header check let an oversized frame through
  }

  FramePayload payload;
  if (decode_frame(input, payload, limits)) return 0;
  // The body decoder on its own, from an unaligned copy, must agree.
  Bytes shifted(size + 1);
  std::memcpy(shifted.data() + 1, data, size);
  FramePayload again;
  if (decode_frame_body(BytesView(shifted).subspan(1 + kFrameHeaderBytes), again, limits) || !(again == payload))
    std::abort();

  if (auto* m = std::get_if<Message>(&payload)) {
    Bytes re = encode_to_bytes(*m);  // default limit: a re-encoding may be a little larger
    Message round;
    if (re.empty() || decode(re, round) || !(round == *m)) std::abort();
  }
  return 0;
}

// Codec micro-benchmarks: encode and decode of an append carrying 64 entries
// of 256 B (payloads copied into the message: below the reference threshold),
// the same append with payload referencing forced on, and a heartbeat.
//
// Reproduce:
//   cmake -S . -B build-transport -DCMAKE_BUILD_TYPE=RelWithDebInfo
//   cmake --build build-transport -j2 --target bench_codec
//   build-transport/bench/bench_codec --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include "transport/codec.hpp"

using namespace raftkit;
using namespace raftkit::transport;

namespace {

Message append_64x256() {
  Message m;
  m.type = MessageType::append;
  m.from = NodeId{1};
  m.to = NodeId{2};
  m.term = Term{5};
  m.log_term = Term{5};
  m.index = Index{1000};
  m.commit = Index{999};
  for (std::uint64_t i = 0; i < 64; ++i)
    m.entries.push_back(Entry{Term{5}, Index{1001 + i}, EntryType::normal, Bytes(256, static_cast<std::uint8_t>(i))});
  return m;
}

Message heartbeat() {
  Message m;
  m.type = MessageType::heartbeat;
  m.from = NodeId{1};
  m.to = NodeId{2};
  m.term = Term{5};
  m.commit = Index{999};
  m.context = 42;
  return m;
}

void encode_bench(benchmark::State& state, const Message& m, const CodecLimits& limits) {
  std::size_t bytes = 0;
  for (auto _ : state) {
    EncodedFrame frame;
    Message copy = m;  // encode consumes its message; the copy is part of the cost a caller pays
    if (encode(std::move(copy), frame, limits)) state.SkipWithError("encode failed");
    bytes = frame.size();
    benchmark::DoNotOptimize(frame.buffers().data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * bytes));
  state.counters["frame_bytes"] = static_cast<double>(bytes);
}

void decode_bench(benchmark::State& state, const Message& m) {
  const Bytes frame = encode_to_bytes(m);
  for (auto _ : state) {
    Message out;
    if (decode(frame, out)) state.SkipWithError("decode failed");
    benchmark::DoNotOptimize(out.entries.data());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * frame.size()));
}

void BM_encode_append_64x256(benchmark::State& s) { encode_bench(s, append_64x256(), CodecLimits{}); }
void BM_encode_append_64x256_referenced(benchmark::State& s) {
  CodecLimits limits;
  limits.external_payload_min_bytes = 256;
  encode_bench(s, append_64x256(), limits);
}
void BM_decode_append_64x256(benchmark::State& s) { decode_bench(s, append_64x256()); }
void BM_encode_heartbeat(benchmark::State& s) { encode_bench(s, heartbeat(), CodecLimits{}); }
void BM_decode_heartbeat(benchmark::State& s) { decode_bench(s, heartbeat()); }

}  // namespace

BENCHMARK(BM_encode_append_64x256);
BENCHMARK(BM_encode_append_64x256_referenced);
BENCHMARK(BM_decode_append_64x256);
BENCHMARK(BM_encode_heartbeat);
BENCHMARK(BM_decode_heartbeat);

BENCHMARK_MAIN();

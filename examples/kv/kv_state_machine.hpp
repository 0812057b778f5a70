// kv_state_machine.hpp — the replicated key-value map and its wire format.
//
// The state is a std::map<std::string, std::string>: ordered, so a range
// scan is a walk from lower_bound, and deterministic, so every node that
// applies the same commands holds the same map.
//
// Commands (entry payloads) and queries are a small length-prefixed binary
// format, written and read by the functions below and nowhere else:
//
//   string  := length:u32 little-endian, then that many bytes
//   command := 'P' key value            put
//            | 'D' key                  delete
//            | 'C' key expected value   compare-and-set: put if the key
//                                       exists with value `expected`
//   query   := 'G' key                  get
//            | 'S' from to limit:u32    scan keys in [from, to) (to empty:
//                                       no upper bound), at most limit
//
// Every command's result begins with a status byte (see Status). A command
// that does not decode — a bug in a client, or bytes from another program —
// changes nothing and answers Status::malformed on every node alike: apply
// never throws and never crashes, so one bad entry cannot stop the cluster.
//
// The snapshot is "KV1\n", a count:u64, then count (key, value) strings in
// key order. It is checksummed by raftkit's snapshot files; a snapshot that
// does not decode here was written by another program and restore_snapshot
// returns errc::corrupted rather than silently start from a wrong state.
// The capture is a copy of the map made on the strand (memory work only);
// the encoding runs on the node's disk thread while applies go on.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "raftkit/metrics.hpp"
#include "raftkit/state_machine.hpp"

namespace raftkit::kv {

/// The first byte of every result.
enum class Status : std::uint8_t {
  ok = 0,
  not_found = 1,     ///< delete or get of a key that does not exist
  cas_conflict = 2,  ///< compare-and-set refused: the key is absent or holds another value
  malformed = 0xFF,  ///< the command or query did not decode; nothing changed
};

Bytes put_command(std::string_view key, std::string_view value);
Bytes delete_command(std::string_view key);
Bytes cas_command(std::string_view key, std::string_view expected, std::string_view value);
Bytes get_query(std::string_view key);
Bytes scan_query(std::string_view from, std::string_view to, std::uint32_t limit);

/// A decoded command or query result.
struct Result {
  Status status = Status::malformed;
  /// get: the value; cas_conflict: the current value (nullopt: key absent).
  std::optional<std::string> value;
  /// scan: the pairs found, in key order.
  std::vector<std::pair<std::string, std::string>> items;
  /// scan: true if the range holds more keys than `limit`.
  bool more = false;
};

/// Decodes what apply() or query() returned; nullopt if it does not decode.
std::optional<Result> decode_result(BytesView bytes);

class KvStateMachine final : public StateMachine {
 public:
  /// `metrics` (may be null) receives entries_applied, applied_index and the
  /// snapshot sizes and durations.
  explicit KvStateMachine(MetricsRegistry* metrics = nullptr) : metrics_(metrics) {}

  Bytes apply(const Entry& entry) override;
  Bytes query(BytesView query) const override;
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override;
  std::error_code restore_snapshot(SnapshotReader& in) override;

  /// Keys held on this node now, readable from any thread (for /status; not
  /// a linearizable read).
  std::size_t local_size() const { return size_.load(std::memory_order_relaxed); }

 private:
  std::map<std::string, std::string> map_;
  std::atomic<std::size_t> size_{0};
  MetricsRegistry* metrics_;
};

}  // namespace raftkit::kv

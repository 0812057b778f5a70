#include "kv_state_machine.hpp"

#include <chrono>
#include <stdexcept>

namespace raftkit::kv {

namespace {

// Appends little-endian integers and length-prefixed strings.
class Writer {
 public:
  explicit Writer(std::uint8_t first) { out_.push_back(first); }
  Writer() = default;
  Writer& u8(std::uint8_t v) {
    out_.push_back(v);
    return *this;
  }
  Writer& u32(std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    return *this;
  }
  Writer& u64(std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    return *this;
  }
  Writer& str(std::string_view s) {
    u32(static_cast<std::uint32_t>(s.size()));
    out_.insert(out_.end(), s.begin(), s.end());
    return *this;
  }
  Bytes take() { return std::move(out_); }

 private:
  Bytes out_;
};

// Reads what Writer wrote; every read checks the remaining length first, so
// any byte string is safe to read (a failed read leaves ok() false).
class Reader {
 public:
  explicit Reader(BytesView in) : in_(in) {}
  bool u8(std::uint8_t& v) {
    if (in_.size() < 1) return ok_ = false;
    v = in_[0];
    in_ = in_.subspan(1);
    return true;
  }
  bool u32(std::uint32_t& v) {
    if (in_.size() < 4) return ok_ = false;
    v = 0;
    for (std::size_t i = 0; i < 4; ++i) v |= std::uint32_t{in_[i]} << (8 * i);
    in_ = in_.subspan(4);
    return true;
  }
  bool u64(std::uint64_t& v) {
    if (in_.size() < 8) return ok_ = false;
    v = 0;
    for (std::size_t i = 0; i < 8; ++i) v |= std::uint64_t{in_[i]} << (8 * i);
    in_ = in_.subspan(8);
    return true;
  }
  bool str(std::string& s) {
    std::uint32_t n = 0;
    if (!u32(n)) return false;
    if (in_.size() < n) return ok_ = false;
    s.assign(in_.begin(), in_.begin() + n);
    in_ = in_.subspan(n);
    return true;
  }
  /// True if every read succeeded and nothing is left over.
  bool finished() const { return ok_ && in_.empty(); }

 private:
  BytesView in_;
  bool ok_ = true;
};

Bytes status_only(Status s) { return Writer(static_cast<std::uint8_t>(s)).take(); }

constexpr char kSnapshotMagic[] = "KV1\n";

}  // namespace

Bytes put_command(std::string_view key, std::string_view value) { return Writer('P').str(key).str(value).take(); }
Bytes delete_command(std::string_view key) { return Writer('D').str(key).take(); }
Bytes cas_command(std::string_view key, std::string_view expected, std::string_view value) {
  return Writer('C').str(key).str(expected).str(value).take();
}
Bytes get_query(std::string_view key) { return Writer('G').str(key).take(); }
Bytes scan_query(std::string_view from, std::string_view to, std::uint32_t limit) {
  return Writer('S').str(from).str(to).u32(limit).take();
}

// Result encodings:
//   ok / not_found / malformed         status
//   get ok                             status value
//   cas_conflict                       status present:u8 [value]
//   scan ok                            status more:u8 count:u32 (key value)*
// decode_result cannot tell a get from a scan by the bytes alone if both
// were empty, so get and scan results carry a tag byte after the status.
std::optional<Result> decode_result(BytesView bytes) {
  Reader r(bytes);
  std::uint8_t status = 0;
  if (!r.u8(status)) return std::nullopt;
  Result out;
  switch (static_cast<Status>(status)) {
    case Status::ok: {
      out.status = Status::ok;
      std::uint8_t tag = 0;
      if (bytes.size() == 1) return out;  // a command's plain success
      if (!r.u8(tag)) return std::nullopt;
      if (tag == 'v') {
        std::string v;
        if (!r.str(v)) return std::nullopt;
        out.value = std::move(v);
      } else if (tag == 's') {
        std::uint8_t more = 0;
        std::uint32_t count = 0;
        if (!r.u8(more) || !r.u32(count)) return std::nullopt;
        out.more = more != 0;
        for (std::uint32_t i = 0; i < count; ++i) {
          std::string k, v;
          if (!r.str(k) || !r.str(v)) return std::nullopt;
          out.items.emplace_back(std::move(k), std::move(v));
        }
      } else {
        return std::nullopt;
      }
      break;
    }
    case Status::not_found:
    case Status::malformed:
      out.status = static_cast<Status>(status);
      break;
    case Status::cas_conflict: {
      out.status = Status::cas_conflict;
      std::uint8_t present = 0;
      if (!r.u8(present)) return std::nullopt;
      if (present) {
        std::string v;
        if (!r.str(v)) return std::nullopt;
        out.value = std::move(v);
      }
      break;
    }
    default:
      return std::nullopt;
  }
  if (!r.finished()) return std::nullopt;
  return out;
}

Bytes KvStateMachine::apply(const Entry& entry) {
  if (metrics_) {
    metrics_->entries_applied.add();
    metrics_->applied_index.set(static_cast<std::int64_t>(entry.index.value));
  }
  Reader r(entry.payload);
  std::uint8_t op = 0;
  std::string key, expected, value;
  if (!r.u8(op)) return status_only(Status::malformed);
  switch (op) {
    case 'P':
      if (!r.str(key) || !r.str(value) || !r.finished()) return status_only(Status::malformed);
      map_.insert_or_assign(std::move(key), std::move(value));
      break;
    case 'D':
      if (!r.str(key) || !r.finished()) return status_only(Status::malformed);
      if (map_.erase(key) == 0) return status_only(Status::not_found);
      break;
    case 'C': {
      if (!r.str(key) || !r.str(expected) || !r.str(value) || !r.finished()) return status_only(Status::malformed);
      auto it = map_.find(key);
      if (it == map_.end()) return Writer(static_cast<std::uint8_t>(Status::cas_conflict)).u8(0).take();
      if (it->second != expected)
        return Writer(static_cast<std::uint8_t>(Status::cas_conflict)).u8(1).str(it->second).take();
      it->second = std::move(value);
      break;
    }
    default:
      return status_only(Status::malformed);
  }
  size_.store(map_.size(), std::memory_order_relaxed);
  return status_only(Status::ok);
}

Bytes KvStateMachine::query(BytesView q) const {
  Reader r(q);
  std::uint8_t op = 0;
  if (!r.u8(op)) return status_only(Status::malformed);
  if (op == 'G') {
    std::string key;
    if (!r.str(key) || !r.finished()) return status_only(Status::malformed);
    auto it = map_.find(key);
    if (it == map_.end()) return status_only(Status::not_found);
    return Writer(static_cast<std::uint8_t>(Status::ok)).u8('v').str(it->second).take();
  }
  if (op == 'S') {
    std::string from, to;
    std::uint32_t limit = 0;
    if (!r.str(from) || !r.str(to) || !r.u32(limit) || !r.finished()) return status_only(Status::malformed);
    std::vector<const std::pair<const std::string, std::string>*> found;
    bool more = false;
    for (auto it = map_.lower_bound(from); it != map_.end() && (to.empty() || it->first < to); ++it) {
      if (found.size() == limit) {
        more = true;
        break;
      }
      found.push_back(&*it);
    }
    Writer w(static_cast<std::uint8_t>(Status::ok));
    w.u8('s').u8(more ? 1 : 0).u32(static_cast<std::uint32_t>(found.size()));
    for (const auto* kv : found) w.str(kv->first).str(kv->second);
    return w.take();
  }
  return status_only(Status::malformed);
}

namespace {

// The capture: a copy of the map, made on the strand (a std::map copy is
// memory work only), serialised on the disk thread in 64 KiB writes.
class KvCapture final : public SnapshotCapture {
 public:
  KvCapture(std::map<std::string, std::string> map, MetricsRegistry* metrics)
      : map_(std::move(map)), metrics_(metrics) {}
  std::error_code write_to(SnapshotWriter& out) override {
    const auto start = std::chrono::steady_clock::now();
    std::uint64_t total = 0;
    Writer w;
    for (const char* c = kSnapshotMagic; *c; ++c) w.u8(static_cast<std::uint8_t>(*c));
    w.u64(map_.size());
    Bytes chunk = w.take();
    for (const auto& [k, v] : map_) {
      Writer kv;
      kv.str(k).str(v);
      const Bytes b = kv.take();
      chunk.insert(chunk.end(), b.begin(), b.end());
      if (chunk.size() >= (64u << 10)) {
        if (auto ec = out.write(chunk)) return ec;
        total += chunk.size();
        chunk.clear();
      }
    }
    if (auto ec = out.write(chunk)) return ec;
    total += chunk.size();
    if (metrics_) {
      metrics_->snapshot_bytes.record(total);
      metrics_->snapshot_save_us.record(std::chrono::steady_clock::now() - start);
    }
    return {};
  }

 private:
  std::map<std::string, std::string> map_;
  MetricsRegistry* metrics_;
};

// Reads the little-endian integers and length-prefixed strings of a
// snapshot from a stream; a string longer than what is left is corruption.
struct StreamReader {
  SnapshotReader& in;
  std::error_code u64(std::uint64_t& v) {
    std::uint8_t b[8];
    if (auto ec = in.read_exact(b)) return ec;
    v = 0;
    for (std::size_t i = 0; i < 8; ++i) v |= std::uint64_t{b[i]} << (8 * i);
    return {};
  }
  std::error_code str(std::string& s) {
    std::uint8_t b[4];
    if (auto ec = in.read_exact(b)) return ec;
    std::uint32_t n = 0;
    for (std::size_t i = 0; i < 4; ++i) n |= std::uint32_t{b[i]} << (8 * i);
    if (n > in.remaining()) return errc::corrupted;
    s.resize(n);
    return in.read_exact(std::span(reinterpret_cast<std::uint8_t*>(s.data()), s.size()));
  }
};

}  // namespace

std::unique_ptr<SnapshotCapture> KvStateMachine::capture_snapshot() const {
  return std::make_unique<KvCapture>(map_, metrics_);
}

std::error_code KvStateMachine::restore_snapshot(SnapshotReader& in) {
  std::map<std::string, std::string> loaded;
  if (in.remaining() != 0) {  // empty: the initial state
    StreamReader r{in};
    for (const char* c = kSnapshotMagic; *c; ++c) {
      std::uint8_t b = 0;
      if (in.read_exact(std::span(&b, 1)) || b != static_cast<std::uint8_t>(*c))
        return errc::corrupted;  // not a snapshot of this state machine
    }
    std::uint64_t count = 0;
    if (r.u64(count)) return errc::corrupted;
    for (std::uint64_t i = 0; i < count; ++i) {
      std::string k, v;
      if (r.str(k) || r.str(v)) return errc::corrupted;
      loaded.insert_or_assign(std::move(k), std::move(v));
    }
    if (in.remaining() != 0) return errc::corrupted;  // bytes after the last entry
  }
  map_ = std::move(loaded);
  size_.store(map_.size(), std::memory_order_relaxed);
  return {};
}

}  // namespace raftkit::kv

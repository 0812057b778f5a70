// The shared log (storage/shared_log.hpp): many groups, one write-ahead log.
//
// Files. A directory holds LOCK and segments slog-<seq>.log in the WAL
// store's format (wal_record.hpp) and with its rules for rolling,
// preallocation, torn tails and poisoning (segment_log.hpp, wal_store.cpp).
// A fresh directory gets an empty first segment, slog-0000000000000001.log.
//
// Records. group_entries, group_hard_state and group_snapshot carry the WAL
// store's payloads after the u64 id of their group; release(U) says that no
// group needs the segments before U any more.
//
// Pins. A group needs the segment holding the record of its current hard
// state, the one holding its current snapshot record, and every segment
// holding one of its live entries (after the snapshot). Live entries are
// written in segment order (a conflicting suffix is rewritten in a newer
// segment), so the last is the segment of the group's first live entry. The
// oldest segment any group needs is the group's pin; segments older than
// every group's pin hold nothing anyone needs.
//
// Cleanup (after a roll and after a snapshot). E = the oldest segment
// holding some group's live entries (the open segment if none). A group
// whose hard state or snapshot record sits in a segment older than E gets
// it written again into the open segment (so idle groups never keep old
// segments). Then a release(E) record is staged, and once a sync has made it
// durable the segments before E are deleted, oldest first, and the
// directory fsync'ed. cleanup_holder() names the group whose entries pin
// the oldest segment: it has to take a snapshot before space comes back.
//
// Replay. On open every segment is read. U = the highest release record's
// number (1 if none); segments before U are leftovers of a deletion the
// crash interrupted and are deleted again; segments from U on must all be
// there. Their records are replayed per group into a map from index to
// entry: entries from index i drop every key >= i and add theirs; a
// snapshot that kept the log drops the keys up to its index, one that did
// not drops them all; the last hard state and snapshot records win. Given
// the pins, replaying a suffix of the history this way gives exactly the
// state the whole history gives (entries that were live were written inside
// the suffix; anything the suffix misses was dead). The live entries must
// then run without a gap from the snapshot index + 1, or the log is corrupt.
// When no segment was ever released (U = 1) replay also checks what the WAL
// store checks: entries fit the log and a kept snapshot agrees with it.
#include "storage/shared_log.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <deque>
#include <limits>
#include <map>
#include <mutex>
#include <set>

#include "raftkit/error.hpp"
#include "storage/log_image.hpp"
#include "storage/segment_log.hpp"
#include "storage/wal_record.hpp"

namespace raftkit::storage {
namespace {

constexpr const char* kPrefix = "slog";
constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();

struct Group {
  explicit Group(GroupId gid) : id(gid) {}
  const GroupId id;
  SharedLogImage image;  // what the view reads; its own mutex
  // Everything below: under the segments' mutex.
  std::uint64_t hs_seg = 0;    // segment of the current hard state's record (0: none written)
  std::uint64_t snap_seg = 0;  // segment of the current snapshot's record (0: none written)
  std::deque<std::pair<Index, std::uint64_t>> runs;  // live entries from .first on were written in segment .second
  std::uint64_t ticket = 0;  // its newest staged write
  bool dirty = false;        // written since the host's last sync

  std::uint64_t entry_pin() const { return runs.empty() ? kNone : runs.front().second; }
  std::uint64_t state_pin() const {
    std::uint64_t p = kNone;
    if (hs_seg != 0) p = std::min(p, hs_seg);
    if (snap_seg != 0) p = std::min(p, snap_seg);
    return p;
  }
  void on_entries(Index first, std::uint64_t seg) {
    while (!runs.empty() && runs.back().first >= first) runs.pop_back();
    if (runs.empty() || runs.back().second != seg) runs.emplace_back(first, seg);
  }
  void on_snapshot(const LogImage& im) {
    const Index from = im.snap.index + 1;
    if (im.last() < from) runs.clear();
    while (runs.size() >= 2 && runs[1].first <= from) runs.pop_front();
    if (!runs.empty() && runs.front().first < from) runs.front().first = from;
  }
};

/// One group's state while the segments are replayed (see "Replay").
struct Replayed {
  HardState hs;
  SnapshotMeta snap;
  std::uint64_t hs_seg = 0, snap_seg = 0;
  std::map<std::uint64_t, std::pair<Entry, std::uint64_t>> log;  // index -> entry, segment
};

class Core {
 public:
  Core(std::shared_ptr<FileSystem> fs, const std::string& dir, const SharedLogOptions& opt)
      : opt_(opt), seg_(std::move(fs), dir, kPrefix, opt.segment_bytes, opt.logger, /*recoverable_no_space=*/false) {}

  SegmentLog& segments() { return seg_; }
  void hold(std::unique_ptr<FileLock> lock) { lock_ = std::move(lock); }
  void close() {
    seg_.close();
    std::lock_guard lock(seg_.mutex());
    lock_.reset();
  }

  Group& group(GroupId g) {
    std::lock_guard lock(seg_.mutex());
    return group_locked(g);
  }
  std::vector<GroupId> groups() {
    std::lock_guard lock(seg_.mutex());
    std::vector<GroupId> out;
    for (const auto& [id, g] : groups_) {
      if (g->ticket != 0 || g->hs_seg != 0 || g->snap_seg != 0 || !g->runs.empty()) out.push_back(id);
    }
    return out;
  }

  // ---- writes of one group (its view) ---------------------------------------------

  std::error_code append(Group& g, std::span<const Entry> entries) {
    if (entries.empty()) return {};
    std::lock_guard lock(seg_.mutex());
    if (auto ec = seg_.failed()) return ec;
    const Index first = entries.front().index;
    if (!g.image.writer_view().fits(first)) return errc::invalid_argument;
    for (std::size_t i = 0; i < entries.size(); ++i) {
      if (entries[i].index != first + i) return errc::invalid_argument;
      if (entries[i].payload.size() > kMaxRecordPayload / 2) return errc::too_large;
    }
    scratch_.clear();
    frame_entries(scratch_, RecordType::group_entries, prefix(g.id), entries);
    if (auto ec = stage_locked(g, scratch_)) return ec;
    g.on_entries(first, seg_.open_seq());
    g.image.update([&](LogImage& im) { im.append(entries.begin(), entries.end()); });
    after_roll_locked();
    return {};
  }

  std::error_code save_hard_state(Group& g, const HardState& hs) {
    std::lock_guard lock(seg_.mutex());
    if (auto ec = seg_.failed()) return ec;
    if (hs == g.image.writer_view().hs) return {};
    if (auto ec = write_hard_state_locked(g, hs)) return ec;
    g.image.update([&](LogImage& im) { im.hs = hs; });
    after_roll_locked();
    return {};
  }

  std::error_code install_snapshot(Group& g, const SnapshotMeta& meta) {
    std::lock_guard lock(seg_.mutex());
    if (auto ec = seg_.failed()) return ec;
    const LogImage& im = g.image.writer_view();
    if (meta.index <= im.snap.index && im.snap.index != Index{0}) return {};
    const bool kept = im.agrees(meta);
    if (auto ec = write_snapshot_locked(g, meta, kept)) return ec;
    g.image.update([&](LogImage& m) { m.install(meta, kept); });
    g.on_snapshot(g.image.writer_view());
    cleanup_locked();
    return {};
  }

  std::error_code sync_group(Group& g) {
    std::unique_lock lock(seg_.mutex());
    const std::error_code ec = seg_.sync(lock, g.ticket);
    if (!ec) finish_release_locked();
    return ec;
  }

  // ---- the host's batch --------------------------------------------------------

  std::error_code sync(std::vector<GroupId>* durable) {
    std::unique_lock lock(seg_.mutex());
    if (auto ec = seg_.sync(lock, seg_.last_ticket())) return ec;
    finish_release_locked();
    std::vector<Group*> still;
    for (Group* g : dirty_) {
      if (g->ticket > seg_.synced_ticket()) {
        still.push_back(g);  // written by another thread after this sync began
        continue;
      }
      g->dirty = false;
      if (durable != nullptr) durable->push_back(g->id);
    }
    dirty_ = std::move(still);
    if (durable != nullptr) std::sort(durable->begin(), durable->end());
    return {};
  }

  std::optional<CleanupHolder> cleanup_holder() {
    std::lock_guard lock(seg_.mutex());
    if (seg_.segment_count() < 2) return std::nullopt;
    const Group* by_entries = nullptr;
    const Group* by_state = nullptr;
    for (const auto& [id, g] : groups_) {
      if (g->entry_pin() == seg_.oldest_seq() && by_entries == nullptr) by_entries = g.get();
      if (g->state_pin() == seg_.oldest_seq() && by_state == nullptr) by_state = g.get();
    }
    const Group* h = by_entries != nullptr ? by_entries : by_state;
    if (h == nullptr) return std::nullopt;
    return CleanupHolder{h->id, seg_.oldest_seq(), h->image.writer_view().offset() + 1, seg_.segment_count()};
  }

  std::size_t segment_count() {
    std::lock_guard lock(seg_.mutex());
    return seg_.segment_count();
  }
  std::uint64_t disk_bytes() {
    std::lock_guard lock(seg_.mutex());
    return seg_.total_bytes();
  }

  // ---- open ----------------------------------------------------------------------

  std::error_code create_fresh(std::string& detail) {
    std::lock_guard lock(seg_.mutex());
    return seg_.replace_all_locked({}, detail);
  }

  std::error_code recover(const std::vector<std::uint64_t>& seqs, std::string& detail);

 private:
  static Bytes prefix(GroupId g) {
    Bytes b;
    Encoder(b).u64(g);
    return b;
  }

  Group& group_locked(GroupId g) {
    auto& slot = groups_[g];
    if (!slot) slot = std::make_unique<Group>(g);
    return *slot;
  }

#ifdef RAFTKIT_PLANTED_BUGS
  bool planted(SharedLogBug b) const { return (opt_.planted_bugs & b) != 0; }
#else
  // No planted bugs in this build: a constant, no code, no symbol.
  static consteval bool planted(SharedLogBug) { return false; }
#endif

  /// Stages a group's records; a roll on the way starts a cleanup.
  std::error_code stage_locked(Group& g, BytesView frames) {
    const std::uint64_t open = seg_.open_seq();
    std::uint64_t ticket = 0;
    if (auto ec = seg_.stage_locked(frames, ticket)) return ec;
    g.ticket = ticket;
    if (!g.dirty) {
      g.dirty = true;
      dirty_.push_back(&g);
    }
    if (seg_.open_seq() != open) rolled_ = true;
    return {};
  }

  std::error_code write_hard_state_locked(Group& g, const HardState& hs) {
    Bytes payload = prefix(g.id);
    Encoder(payload).hard_state(hs);
    Bytes frame;
    frame_record(frame, RecordType::group_hard_state, payload);
    if (auto ec = stage_locked(g, frame)) return ec;
    g.hs_seg = seg_.open_seq();
    return {};
  }

  std::error_code write_snapshot_locked(Group& g, const SnapshotMeta& meta, bool kept) {
    Bytes payload = prefix(g.id);
    Encoder enc(payload);
    enc.u8(kept ? 1 : 0);
    enc.snapshot_meta(meta);
    Bytes frame;
    frame_record(frame, RecordType::group_snapshot, payload);
    if (auto ec = stage_locked(g, frame)) return ec;
    g.snap_seg = seg_.open_seq();
    return {};
  }

  void after_roll_locked() {
    if (!rolled_) return;
    rolled_ = false;
    cleanup_locked();
  }

  /// See "Cleanup" at the top of the file.
  void cleanup_locked() {
    rolled_ = false;
    if (seg_.failed() || seg_.segment_count() < 2) return;
    std::uint64_t e = seg_.open_seq();
    for (const auto& [id, g] : groups_) e = std::min(e, g->entry_pin());
    if (e <= std::max(seg_.oldest_seq(), released_)) return;
    for (const auto& [id, g] : groups_) {
      if (g->state_pin() >= e) continue;
      const LogImage& im = g->image.writer_view();
      if (g->hs_seg != 0 && g->hs_seg < e && write_hard_state_locked(*g, im.hs)) return;
      if (g->snap_seg != 0 && g->snap_seg < e && write_snapshot_locked(*g, im.snap, true)) return;
    }
    Bytes payload;
    Encoder(payload).u64(e);
    Bytes frame;
    frame_record(frame, RecordType::release, payload);
    std::uint64_t ticket = 0;
    if (seg_.stage_locked(frame, ticket)) return;
    released_ = e;
    release_ticket_ = ticket;
  }

  /// Deletes the released segments once the release record is durable.
  void finish_release_locked() {
    if (release_ticket_ == 0 || seg_.synced_ticket() < release_ticket_) return;
    release_ticket_ = 0;
    seg_.drop_before_locked(released_);
  }

  std::error_code replay_record(std::map<GroupId, Replayed>& st, const RecordView& r, std::uint64_t seq, bool strict,
                                const std::string& p, std::string& detail);
  std::error_code publish(std::map<GroupId, Replayed>& st, std::string& detail);

  const SharedLogOptions opt_;
  std::unique_ptr<FileLock> lock_;  // declared first: released after the files are closed
  SegmentLog seg_;
  // Under seg_.mutex():
  std::map<GroupId, std::unique_ptr<Group>> groups_;  // never erased: views hold Group&
  std::vector<Group*> dirty_;
  std::uint64_t released_ = 0;       // a release record for this number was staged
  std::uint64_t release_ticket_ = 0; // its ticket, until the segments before it are deleted
  bool rolled_ = false;
  Bytes scratch_;
  GroupId last_entries_group_ = kNone;  // replay: the group of the previous entries record (planted bug)
};

std::error_code Core::replay_record(std::map<GroupId, Replayed>& st, const RecordView& r, std::uint64_t seq, bool strict,
                                    const std::string& p, std::string& detail) {
  auto bad = [&](std::string_view why) {
    detail = fmt::format("{}: corrupted at offset {}: {}", p, r.offset, why);
    return make_error_code(errc::corrupted);
  };
  Decoder dec(r.payload);
  if (r.type == RecordType::release) {
    std::uint64_t upto = 0;
    if (!dec.u64(upto) || !dec.done() || upto > seq) return bad("malformed release record");
    last_entries_group_ = kNone;
    return {};
  }
  GroupId gid = 0;
  if (!dec.u64(gid)) return bad("record without a group");
  switch (r.type) {
    case RecordType::group_entries: {
      Index first;
      std::vector<Entry> batch;
      if (!decode_entries(dec, first, batch)) return bad("malformed entries record");
      if (planted(bug_replay_into_wrong_group) && last_entries_group_ != kNone) gid = last_entries_group_;
      last_entries_group_ = gid;
      Replayed& g = st[gid];
      const std::uint64_t last = g.log.empty() ? g.snap.index.value : g.log.rbegin()->first;
      if (first <= g.snap.index || (strict && first.value > last + 1))
        return bad(fmt::format("group {}: entries from index {} do not fit the log ({}..{})", gid, first, g.snap.index, last));
      g.log.erase(g.log.lower_bound(first.value), g.log.end());
      for (Entry& e : batch) g.log.emplace(e.index.value, std::pair{std::move(e), seq});
      return {};
    }
    case RecordType::group_hard_state: {
      last_entries_group_ = kNone;
      HardState hs;
      if (!dec.hard_state(hs) || !dec.done()) return bad("malformed hard state record");
      st[gid].hs = hs;
      st[gid].hs_seg = seq;
      return {};
    }
    case RecordType::group_snapshot: {
      last_entries_group_ = kNone;
      std::uint8_t kept = 0;
      SnapshotMeta meta;
      if (!dec.u8(kept) || kept > 1 || !dec.snapshot_meta(meta) || !dec.done()) return bad("malformed snapshot record");
      Replayed& g = st[gid];
      if (kept == 1 && strict) {
        const auto it = g.log.find(meta.index.value);
        const bool agrees = meta.index == g.snap.index ? meta.term == g.snap.term : it != g.log.end() && it->second.first.term == meta.term;
        if (!agrees) return bad(fmt::format("group {}: snapshot record keeps a log that does not match it", gid));
      }
      if (kept == 1) g.log.erase(g.log.begin(), g.log.upper_bound(meta.index.value));
      else g.log.clear();
      g.snap = meta;
      g.snap_seg = seq;
      return {};
    }
    default: return bad("a WAL store's record in a shared log");
  }
}

/// Checks every replayed group and makes it the live state.
std::error_code Core::publish(std::map<GroupId, Replayed>& st, std::string& detail) {
  for (auto& [gid, r] : st) {
    std::uint64_t expect = r.snap.index.value + 1;
    for (const auto& [i, e] : r.log) {
      if (i != expect) {
        detail = fmt::format("{}: group {}: entries {}..{} are missing (snapshot at {})", seg_.dir(), gid, expect, i - 1, r.snap.index);
        return errc::corrupted;
      }
      ++expect;
    }
    Group& g = group_locked(gid);
    g.hs_seg = r.hs_seg;
    g.snap_seg = r.snap_seg;
    for (const auto& [i, e] : r.log) g.on_entries(Index{i}, e.second);
    Replayed& rep = r;  // (a structured binding; clang 14 does not capture one)
    g.image.update([&rep](LogImage& im) {
      im.reset(rep.hs, rep.snap);
      for (auto& [i, e] : rep.log) im.log.push_back(std::move(e.first));
    });
  }
  return {};
}

std::error_code Core::recover(const std::vector<std::uint64_t>& seqs, std::string& detail) {
  std::lock_guard lock(seg_.mutex());
  std::vector<Bytes> contents(seqs.size());
  std::vector<SegmentScan> scans(seqs.size());
  std::uint64_t base = 1;
  for (std::size_t i = 0; i < seqs.size(); ++i) {
    if (auto ec = seg_.read_segment(seqs[i], i + 1 == seqs.size(), contents[i], scans[i], detail)) return ec;
    for (const RecordView& r : scans[i].records) {
      Decoder dec(r.payload);
      std::uint64_t upto = 0;
      if (r.type == RecordType::release && dec.u64(upto) && dec.done() && upto <= seqs[i]) base = std::max(base, upto);
    }
  }
  const auto first = std::lower_bound(seqs.begin(), seqs.end(), base);
  const std::size_t from = static_cast<std::size_t>(first - seqs.begin());
  for (std::size_t i = from; i < seqs.size(); ++i) {
    if (seqs[i] != base + (i - from)) {
      detail = fmt::format("{}: segment {} is missing", seg_.dir(), seg_.path(base + (i - from), "log"));
      return errc::corrupted;
    }
  }
  std::map<GroupId, Replayed> st;
  std::vector<std::uint64_t> used, bytes;
  for (std::size_t i = from; i < seqs.size(); ++i) {
    const std::string p = seg_.path(seqs[i], "log");
    if (scans[i].tail == SegmentScan::Tail::corrupt) {
      detail = fmt::format("{}: corrupted at offset {}: {}", p, scans[i].bad_offset, scans[i].why);
      return errc::corrupted;
    }
    last_entries_group_ = kNone;
    for (const RecordView& r : scans[i].records) {
      if (auto ec = replay_record(st, r, seqs[i], base == 1, p, detail)) return ec;
    }
    used.push_back(seqs[i]);
    bytes.push_back(scans[i].valid_end);
  }
  if (auto ec = publish(st, detail)) return ec;
  const SegmentScan& last = scans.back();
  if (last.tail == SegmentScan::Tail::torn) {
    if (auto ec = seg_.cut_torn_tail(seqs.back(), last, contents.back().size(), detail)) return ec;
  }
  if (from > 0) {  // leftovers of a deletion the crash interrupted
    for (std::size_t i = 0; i < from; ++i) (void)seg_.fs().unlink(seg_.path(seqs[i], "log"));
    if (auto ec = seg_.fs().sync_dir(seg_.dir())) return SegmentLog::io_failure(ec, seg_.dir(), detail);
  }
  released_ = base;
  const std::uint64_t file_end = last.tail == SegmentScan::Tail::torn ? last.valid_end : contents.back().size();
  return seg_.adopt_locked(used, bytes, file_end, detail);
}

/// Group g's LogStore: reads from its image, writes through the core.
class GroupStore final : public LogStore {
 public:
  GroupStore(std::shared_ptr<Core> core, Group& g) : core_(std::move(core)), g_(g) {}

  HardState hard_state() const override { return g_.image.hard_state(); }
  SnapshotMeta snapshot_meta() const override { return g_.image.snapshot_meta(); }
  Index first_index() const override { return g_.image.first_index(); }
  Index last_index() const override { return g_.image.last_index(); }
  std::optional<Term> term(Index i) const override { return g_.image.term(i); }
  std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const override {
    return g_.image.entries(lo, hi, max_bytes, out);
  }
  std::error_code append(std::span<const Entry> entries) override { return core_->append(g_, entries); }
  std::error_code save_hard_state(const HardState& hs) override { return core_->save_hard_state(g_, hs); }
  std::error_code install_snapshot(const SnapshotMeta& meta) override { return core_->install_snapshot(g_, meta); }
  std::error_code sync() override { return core_->sync_group(g_); }

 private:
  const std::shared_ptr<Core> core_;
  Group& g_;
};

class SharedLogImpl final : public SharedLog {
 public:
  explicit SharedLogImpl(std::shared_ptr<Core> core) : core_(std::move(core)) {}
  std::unique_ptr<LogStore> group(GroupId g) override { return std::make_unique<GroupStore>(core_, core_->group(g)); }
  std::vector<GroupId> groups() const override { return core_->groups(); }
  std::error_code sync(std::vector<GroupId>* durable) override { return core_->sync(durable); }
  void close() override { core_->close(); }
  std::optional<CleanupHolder> cleanup_holder() const override { return core_->cleanup_holder(); }
  std::size_t segment_count() const override { return core_->segment_count(); }
  std::uint64_t disk_bytes() const override { return core_->disk_bytes(); }

 private:
  const std::shared_ptr<Core> core_;
};

}  // namespace

std::error_code open_shared_log(std::shared_ptr<FileSystem> fs, const std::string& dir, const SharedLogOptions& options,
                                std::unique_ptr<SharedLog>& out, std::string* error_detail) {
  std::string detail_buf;
  std::string& detail = error_detail != nullptr ? *error_detail : detail_buf;
  if (options.segment_bytes < 4096) {
    detail = "SharedLogOptions::segment_bytes must be at least 4096";
    return errc::invalid_argument;
  }
  auto core = std::make_shared<Core>(std::move(fs), dir, options);
  std::unique_ptr<FileLock> lock;
  std::vector<std::uint64_t> seqs;
  if (auto ec = core->segments().open_dir(lock, seqs, detail)) return ec;
  core->hold(std::move(lock));
  const std::error_code ec = seqs.empty() ? core->create_fresh(detail) : core->recover(seqs, detail);
  if (ec) return ec;
  out = std::make_unique<SharedLogImpl>(std::move(core));
  return {};
}

}  // namespace raftkit::storage

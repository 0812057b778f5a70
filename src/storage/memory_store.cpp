// The in-memory LogStore: the shared log image (storage/log_image.hpp) with
// LogStore's argument checks, and nothing durable. Every method holds the
// image's mutex for its whole duration, so concurrent writers see each
// other's changes whole.
#include "raftkit/error.hpp"
#include "raftkit/log_store.hpp"
#include "storage/log_image.hpp"

namespace raftkit {
namespace {

using storage::LogImage;

class MemoryStore final : public LogStore {
 public:
  HardState hard_state() const override { return image_.hard_state(); }
  SnapshotMeta snapshot_meta() const override { return image_.snapshot_meta(); }
  Index first_index() const override { return image_.first_index(); }
  Index last_index() const override { return image_.last_index(); }
  std::optional<Term> term(Index i) const override { return image_.term(i); }
  std::error_code entries(Index lo, Index hi, std::size_t max_bytes, std::vector<Entry>& out) const override {
    return image_.entries(lo, hi, max_bytes, out);
  }

  std::error_code append(std::span<const Entry> entries) override {
    if (entries.empty()) return {};
    return image_.update([&](LogImage& im) -> std::error_code {
      const Index first = entries.front().index;
      if (!im.fits(first)) return errc::invalid_argument;
      for (std::size_t i = 0; i < entries.size(); ++i) {
        if (entries[i].index != first + i) return errc::invalid_argument;  // indexes must be contiguous
      }
      im.append(entries.begin(), entries.end());
      return {};
    });
  }
  std::error_code save_hard_state(const HardState& hs) override {
    image_.update([&](LogImage& im) { im.hs = hs; });
    return {};
  }
  std::error_code install_snapshot(const SnapshotMeta& meta) override {
    image_.update([&](LogImage& im) {
      if (meta.index <= im.snap.index && im.snap.index != Index{0}) return;
      im.install(meta, im.agrees(meta));
    });
    return {};
  }
  std::error_code sync() override { return {}; }
  bool performs_io() const override { return false; }

 private:
  storage::SharedLogImage image_;
};

}  // namespace

std::unique_ptr<LogStore> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace raftkit

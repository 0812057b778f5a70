// Both snapshot stores keep the newest snapshot when saves finish out of
// order: a follower takes a snapshot of what it applied (index 10) while it
// installs one received from its leader (index 20); the install finishes
// first. The store must then load index 20: loading 10 would hand the state
// machine a state older than the log the node already compacted.
#include <unistd.h>

#include <filesystem>

#include <catch2/catch.hpp>

#include "runtime/snapshot_store.hpp"

using namespace raftkit;

namespace {

SnapshotMeta meta_at(std::uint64_t index) {
  SnapshotMeta m;
  m.index = Index{index};
  m.term = Term{1};
  return m;
}

void check_newest_kept(runtime::SnapshotStore& store) {
  std::string detail;
  const Bytes newer{2, 2}, older{1};
  REQUIRE_FALSE(store.save(meta_at(20), newer, detail));
  REQUIRE_FALSE(store.save(meta_at(10), older, detail));  // finishes later
  SnapshotMeta meta;
  Bytes data;
  REQUIRE_FALSE(store.load(meta, data, detail));
  CHECK(meta.index == Index{20});
  CHECK(data == newer);
  REQUIRE_FALSE(store.save(meta_at(30), older, detail));  // a newer one still replaces it
  REQUIRE_FALSE(store.load(meta, data, detail));
  CHECK(meta.index == Index{30});
  CHECK(data == older);
}

}  // namespace

TEST_CASE("memory snapshot store: an older save finishing after a newer one keeps the newer", "[snapshot]") {
  check_newest_kept(*runtime::make_memory_snapshot_store());
}

TEST_CASE("file snapshot store: an older save finishing after a newer one keeps the newer", "[snapshot]") {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("raftkit-snapstore-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  check_newest_kept(*runtime::make_file_snapshot_store(dir.string()));
  std::filesystem::remove_all(dir);
}

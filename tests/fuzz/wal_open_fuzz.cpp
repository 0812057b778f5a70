// Fuzzes WAL recovery: the input becomes the segment files of a data
// directory, and the store must either open or return an error, never crash,
// hang or read out of bounds. A store that did open must accept an append and
// a sync and open again with that entry (the repair left a valid log).
//
// Input: byte 0 picks how many segment files (1..3) and, if the next byte is
// odd, whether the first segment is prefixed with a valid empty checkpoint
// record (so the fuzzer reaches replay quickly); the rest is split evenly.
// Files go to a temp directory under /dev/shm (tmpfs: fdatasync is free) or
// $TMPDIR, removed after each run.
//
//   CC=clang CXX=clang++ cmake -S . -B build-fuzz -DRAFTKIT_FUZZ=ON -DRAFTKIT_SANITIZE=address
//   cmake --build build-fuzz -j2 --target fuzz_wal_open
//   build-fuzz/tests/fuzz/fuzz_wal_open -max_total_time=60
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "raftkit/error.hpp"
#include "raftkit/wal_store.hpp"
#include "storage/wal_record.hpp"

using namespace raftkit;

namespace {

const std::string& base_dir() {
  static const std::string dir = [] {
    std::string root = std::filesystem::exists("/dev/shm") ? "/dev/shm" : (std::getenv("TMPDIR") ? std::getenv("TMPDIR") : "/tmp");
    std::string tmpl = root + "/raftkit-walfuzz-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) std::abort();
    return tmpl;
  }();
  return dir;
}

void write_file(const std::string& path, const std::uint8_t* p, std::size_t n, const Bytes& prefix) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(prefix.data()), static_cast<std::streamsize>(prefix.size()));
  out.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2 || size > (1u << 20)) return 0;
  const std::string dir = base_dir() + "/d";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directory(dir);
  const std::size_t files = 1 + data[0] % 3;
  Bytes checkpoint;
  if (data[1] & 1) {
    Bytes payload(8 * 3 + 8 * 2 + 4 * 3, 0);  // zero hard state and snapshot meta, empty membership
    storage::frame_record(checkpoint, storage::RecordType::checkpoint, payload);
  }
  data += 2;
  size -= 2;
  const std::size_t chunk = size / files;
  for (std::size_t i = 0; i < files; ++i) {
    const std::size_t n = i + 1 == files ? size - chunk * i : chunk;
    write_file(fmt::format("{}/wal-{:016x}.log", dir, i + 1), data + chunk * i, n, i == 0 ? checkpoint : Bytes{});
  }

  WalOptions opt;
  opt.segment_bytes = 4096;
  opt.logger = Logger::discard();
  std::unique_ptr<LogStore> store;
  std::string detail;
  if (!open_wal_store(dir, opt, store, &detail)) {
    const Index next = store->last_index() + 1;
    std::vector<Entry> out;
    if (next > store->first_index()) (void)store->entries(store->first_index(), next, 1 << 16, out);
    const Entry e{Term{7}, next, EntryType::normal, to_bytes("fuzz")};
    if (!store->append(std::span<const Entry>(&e, 1)) && !store->sync()) {
      store.reset();
      if (auto ec = open_wal_store(dir, opt, store, &detail)) {
        std::fprintf(stderr, "reopen after a successful open and append failed: %s: %s\n", ec.message().c_str(), detail.c_str());
        std::abort();
      }
      if (store->last_index() != next || store->term(next) != Term{7}) std::abort();
    }
  } else if (detail.empty()) {
    std::abort();  // every failure must say why
  }
  store.reset();
  std::filesystem::remove_all(dir);
  return 0;
}

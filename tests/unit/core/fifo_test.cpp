// core::Fifo (core/fifo.hpp): the core's queues. Order is kept across the
// head's compaction, and a copy holds the live elements only.
#include <catch2/catch.hpp>

#include <vector>

#include "core/fifo.hpp"

using raftkit::core::Fifo;

namespace {

std::vector<int> contents(const Fifo<int>& f) { return {f.begin(), f.end()}; }

}  // namespace

TEST_CASE("Fifo: first in, first out across the head's compaction", "[core][fifo]") {
  Fifo<int> f;
  CHECK(f.empty());
  int next_in = 0, next_out = 0;
  // Pushes and pops interleaved so the head passes half of the vector many
  // times (it compacts once the head reaches 16 and half the size).
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 7; ++i) f.push_back(next_in++);
    for (int i = 0; i < 5; ++i) {
      REQUIRE(f.front() == next_out);
      f.pop_front();
      ++next_out;
    }
    REQUIRE(f.size() == static_cast<std::size_t>(next_in - next_out));
  }
  std::vector<int> expected;
  for (int v = next_out; v < next_in; ++v) expected.push_back(v);
  CHECK(contents(f) == expected);
  CHECK(std::vector<int>(f.rbegin(), f.rend()) == std::vector<int>(expected.rbegin(), expected.rend()));
}

TEST_CASE("Fifo: a copy holds what is live, and is independent", "[core][fifo]") {
  Fifo<int> f;
  for (int v = 0; v < 10; ++v) f.push_back(v);
  for (int i = 0; i < 4; ++i) f.pop_front();
  Fifo<int> g = f;
  CHECK(contents(g) == std::vector<int>{4, 5, 6, 7, 8, 9});
  g.pop_front();
  g.push_back(10);
  CHECK(contents(f) == std::vector<int>{4, 5, 6, 7, 8, 9});
  CHECK(contents(g) == std::vector<int>{5, 6, 7, 8, 9, 10});
  f = g;
  CHECK(contents(f) == contents(g));
  f.clear();
  CHECK(f.empty());
  CHECK(g.size() == 6);
  // Emptied by pops, it starts over at the front of its vector.
  while (!g.empty()) g.pop_front();
  g.emplace_back(42);
  CHECK(contents(g) == std::vector<int>{42});
}

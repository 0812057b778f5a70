// support/catch_printers.hpp — readable Catch2 output for raftkit's types.
#pragma once

#include <catch2/catch.hpp>
#include <fmt/format.h>

#include "raftkit/message.hpp"
#include "raftkit/types.hpp"

namespace Catch {
template <>
struct StringMaker<raftkit::Term> {
  static std::string convert(raftkit::Term t) { return fmt::format("term {}", t.value); }
};
template <>
struct StringMaker<raftkit::Index> {
  static std::string convert(raftkit::Index i) { return fmt::format("index {}", i.value); }
};
template <>
struct StringMaker<raftkit::NodeId> {
  static std::string convert(raftkit::NodeId n) { return fmt::format("node {}", n.value); }
};
template <>
struct StringMaker<std::optional<raftkit::Term>> {
  static std::string convert(const std::optional<raftkit::Term>& t) {
    return t ? fmt::format("term {}", t->value) : std::string("no term");
  }
};
}  // namespace Catch

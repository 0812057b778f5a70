// The runtime tests' state machine: an entry "<n>" adds n and returns the
// new value; a query returns the value; a snapshot holds it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "raftkit/state_machine.hpp"

namespace raftkit::test {

class Counter final : public StateMachine {
 public:
  Bytes apply(const Entry& e) override {
    value_ += std::stoll(to_string(e.payload));
    return to_bytes(std::to_string(value_));
  }
  Bytes query(BytesView) const override { return to_bytes(std::to_string(value_)); }
  std::unique_ptr<SnapshotCapture> capture_snapshot() const override {
    return std::make_unique<CopiedSnapshot>(to_bytes(std::to_string(value_)));
  }
  std::error_code restore_snapshot(SnapshotReader& in) override {
    Bytes b;
    if (auto ec = read_all(in, b)) return ec;
    value_ = b.empty() ? 0 : std::stoll(to_string(b));
    return {};
  }

 private:
  std::int64_t value_ = 0;
};

}  // namespace raftkit::test

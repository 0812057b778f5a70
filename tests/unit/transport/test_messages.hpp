// Messages with every field set, for codec and transport tests (and the bench).
#pragma once

#include <vector>

#include "raftkit/message.hpp"

namespace raftkit::test {

inline std::vector<MessageType> all_message_types() {
  std::vector<MessageType> out;
  for (int t = static_cast<int>(MessageType::append); t <= static_cast<int>(MessageType::read_index_response); ++t)
    out.push_back(static_cast<MessageType>(t));
  return out;
}

/// A message of `type` with every field of Message populated (non-zero),
/// including payloads of odd and word-multiple sizes on both copy and
/// reference paths of the encoder.
inline Message full_message(MessageType type) {
  Message m;
  m.type = type;
  m.from = NodeId{1};
  m.to = NodeId{2};
  m.term = Term{7};
  m.log_term = Term{6};
  m.index = Index{41};
  m.commit = Index{40};
  m.entries = {
      Entry{Term{6}, Index{42}, EntryType::normal, to_bytes("hello")},
      Entry{Term{7}, Index{43}, EntryType::noop, {}},
      Entry{Term{7}, Index{44}, EntryType::membership, Bytes(4096, 0xab)},
      Entry{Term{7}, Index{45}, EntryType::normal, Bytes(1001, 0x5a)},
  };
  m.reject = true;
  m.reject_hint = Index{30};
  m.hint_term = Term{5};
  m.context = 0xdeadbeefcafef00dULL;
  m.generation = 3;
  m.incarnation = 0x1234;
  m.group = 0x4700000000000009ULL;
  m.snapshot = SnapshotMeta{Index{20}, Term{4},
                            Membership{{NodeId{1}, NodeId{2}, NodeId{3}}, {NodeId{4}}, {NodeId{1}, NodeId{5}}, {NodeId{6}},
                                       {{NodeId{1}, "10.0.0.1:7001"}, {NodeId{6}, "[::1]:7006"}},
                                       {{NodeId{3}, 0x3333}, {NodeId{6}, 0x6666}},
                                       {{NodeId{5}, 0x5555}},
                                       3}};
  m.snapshot_data = Bytes(2048, 0x11);
  m.snapshot_data[7] = 0x99;
  return m;
}

}  // namespace raftkit::test

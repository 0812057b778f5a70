// libFuzzer target for the protocol core on untrusted input: the bytes are
// read as a sequence of arbitrary messages (any type, any field values, as a
// confused or hostile peer past the handshake could send them) and stepped
// into a node that is a follower or a leader, with ticks and proposals in
// between. Whatever a peer sends, the core must not abort, and its
// Ready/advance cycle must keep working.
#include <cstddef>
#include <cstdint>

#include "core/raft.hpp"

using namespace raftkit;

namespace {

struct Reader {
  const std::uint8_t* p;
  std::size_t n;
  bool empty() const { return n == 0; }
  std::uint64_t byte() {
    if (n == 0) return 0;
    --n;
    return *p++;
  }
  // Small values mostly, so that terms and indexes meet the node's own.
  std::uint64_t num() {
    const std::uint64_t b = byte();
    return b < 240 ? b % 24 : (byte() << 8 | byte()) + (b == 255 ? ~std::uint64_t{0} - 70000 : 0);
  }
};

Message read_message(Reader& in) {
  Message m;
  m.type = static_cast<MessageType>(1 + in.byte() % 13);
  m.from = NodeId{in.byte() % 5};
  m.to = NodeId{1};
  m.term = Term{in.num()};
  m.log_term = Term{in.num()};
  m.index = Index{in.num()};
  m.commit = Index{in.num()};
  m.reject = in.byte() & 1;
  m.reject_hint = Index{in.num()};
  m.hint_term = Term{in.num()};
  m.context = in.num();
  const std::uint64_t entries = in.byte() % 6;
  for (std::uint64_t k = 0; k < entries; ++k) {
    Entry e;
    e.term = Term{in.num()};
    e.index = (in.byte() & 3) ? m.index + (k + 1) : Index{in.num()};
    e.type = static_cast<EntryType>(in.byte() % 4);
    e.payload = Bytes(in.byte() % 8, 0x61);
    m.entries.push_back(std::move(e));
  }
  if (m.type == MessageType::snapshot && (in.byte() & 1)) {
    SnapshotMeta s;
    s.index = Index{in.num()};
    s.term = Term{in.num()};
    s.membership.voters = {NodeId{1}, NodeId{2}, NodeId{3}};
    m.snapshot = s;
  }
  return m;
}

void drain(core::Raft& r, LogStore& store) {
  while (r.has_ready()) {
    core::Ready rd = r.ready();
    if (rd.snapshot) (void)store.install_snapshot(*rd.snapshot);
    (void)store.append(rd.entries);
    if (rd.hard_state) (void)store.save_hard_state(*rd.hard_state);
    r.advance(rd);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Reader in{data, size};
  auto store = make_memory_store();
  ProtocolOptions o;
  o.id = NodeId{1};
  o.initial_voters = {NodeId{1}, NodeId{2}, NodeId{3}};
  o.lease_reads = in.byte() & 1;
  core::Raft raft(o, *store);
  if (in.byte() & 1) {  // start as the leader of term 1
    raft.campaign();
    drain(raft, *store);
    Message grant;
    grant.type = MessageType::vote_response;
    grant.from = NodeId{2};
    grant.to = NodeId{1};
    grant.term = raft.term();
    raft.step(grant);
    drain(raft, *store);
  }
  while (!in.empty()) {
    raft.step(read_message(in));
    switch (in.byte() % 6) {
      case 0: raft.tick(); break;
      case 1: (void)raft.propose(to_bytes("p")); break;
      case 2: (void)raft.read_index(in.num()); break;
      case 3: (void)raft.transfer_leader(NodeId{in.byte() % 4}); break;
      default: break;
    }
    drain(raft, *store);
  }
  return 0;
}

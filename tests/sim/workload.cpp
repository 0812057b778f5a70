#include "sim/workload.hpp"

#include <cstring>

#include "sim/rng.hpp"

namespace raftkit::sim {

std::string_view to_string(OpKind k) {
  switch (k) {
    case OpKind::counter_add: return "add";
    case OpKind::counter_get: return "get";
    case OpKind::reg_write: return "write";
    case OpKind::reg_read: return "read";
    case OpKind::reg_cas: return "cas";
    case OpKind::probe: return "probe";
  }
  return "?";
}

namespace {
constexpr std::size_t kCommandBytes = 1 + 4 + 8 + 8 + 8;

template <class T>
void put(Bytes& out, std::size_t& at, T v) {
  std::memcpy(out.data() + at, &v, sizeof v);  // little-endian hosts only; a sim run never leaves the process
  at += sizeof v;
}
template <class T>
T get(BytesView in, std::size_t& at) {
  T v;
  std::memcpy(&v, in.data() + at, sizeof v);
  at += sizeof v;
  return v;
}
}  // namespace

Bytes encode(const Command& c) {
  Bytes out(kCommandBytes);
  std::size_t at = 0;
  put(out, at, static_cast<std::uint8_t>(c.kind));
  put(out, at, c.client);
  put(out, at, c.request);
  put(out, at, c.a);
  put(out, at, c.b);
  return out;
}

std::optional<Command> decode(BytesView in) {
  if (in.size() != kCommandBytes) return std::nullopt;
  std::size_t at = 0;
  Command c;
  const auto kind = get<std::uint8_t>(in, at);
  if (kind < 1 || kind > static_cast<std::uint8_t>(OpKind::probe)) return std::nullopt;
  c.kind = static_cast<OpKind>(kind);
  c.client = get<std::uint32_t>(in, at);
  c.request = get<std::uint64_t>(in, at);
  c.a = get<std::int64_t>(in, at);
  c.b = get<std::int64_t>(in, at);
  return c;
}

OpOutput StateMachine::apply(const Entry& e) {
  applied = e.index;
  hash = hash_mix(hash_mix(hash_mix(hash, e.index.value), e.term.value), static_cast<std::uint64_t>(e.type));
  for (std::uint8_t byte : e.payload) hash = hash_mix(hash, byte);
  OpOutput out;
  if (e.type != EntryType::normal) return out;
  const auto cmd = decode(e.payload);
  if (!cmd) return out;
  switch (cmd->kind) {
    case OpKind::counter_add:
      counter += cmd->a;
      out.value = counter;
      break;
    case OpKind::counter_get: out.value = counter; break;
    case OpKind::reg_write: reg = cmd->a; break;
    case OpKind::reg_read: out.value = reg; break;
    case OpKind::reg_cas:
      out.ok = reg == cmd->a;
      if (out.ok) reg = cmd->b;
      break;
    case OpKind::probe: break;
  }
  return out;
}

OpOutput StateMachine::read(OpKind kind) const {
  OpOutput out;
  out.value = kind == OpKind::counter_get ? counter : reg;
  return out;
}

Histories build_histories(const std::vector<OpRecord>& ops) {
  Histories h;
  for (const OpRecord& op : ops) {
    if (op.status == OpStatus::failed) continue;
    const bool known = op.status == OpStatus::ok;
    if (is_counter(op.kind)) {
      const auto in = op.kind == OpKind::counter_add ? CounterModel::Input::add(op.a) : CounterModel::Input::get();
      if (known)
        h.counter.add(op.client, op.call, op.ret, in, CounterModel::Output::of(op.output.value));
      else
        h.counter.add_unknown(op.client, op.call, in);
    } else {
      RegisterModel::Input in;
      RegisterModel::Output out;
      switch (op.kind) {
        case OpKind::reg_write: in = RegisterModel::Input::write(op.a); break;
        case OpKind::reg_read:
          in = RegisterModel::Input::read();
          out = RegisterModel::Output::read(op.output.value);
          break;
        case OpKind::reg_cas:
          in = RegisterModel::Input::cas(op.a, op.b);
          out = RegisterModel::Output::cas(op.output.ok);
          break;
        default: continue;
      }
      if (known)
        h.reg.add(op.client, op.call, op.ret, in, out);
      else
        h.reg.add_unknown(op.client, op.call, in);
    }
  }
  return h;
}

}  // namespace raftkit::sim

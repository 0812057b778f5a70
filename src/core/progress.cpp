#include "core/progress.hpp"

namespace raftkit::core {

std::string_view to_string(ProgressState s) {
  switch (s) {
    case ProgressState::probe: return "probe";
    case ProgressState::replicate: return "replicate";
    case ProgressState::snapshot: return "snapshot";
  }
  return "unknown";
}

void Inflights::add(Index last, std::size_t bytes) {
  sent_.push_back({last, bytes});
  bytes_ += bytes;
}

void Inflights::free_to(Index index) {
  while (!sent_.empty() && sent_.front().last <= index) {
    bytes_ -= sent_.front().bytes;
    sent_.pop_front();
  }
}

void Inflights::reset() {
  sent_.clear();
  bytes_ = 0;
}

void Progress::become_probe() {
  ++stream;
  // Coming back from a snapshot, resume after it; otherwise right after match.
  if (state == ProgressState::snapshot) {
    next = std::max(match + 1, pending_snapshot + 1);
  } else {
    next = match + 1;
  }
  state = ProgressState::probe;
  probe_sent = false;
  pending_snapshot = Index{};
  inflights.reset();
}

void Progress::become_replicate() {
  ++stream;
  state = ProgressState::replicate;
  next = match + 1;
  probe_sent = false;
  pending_snapshot = Index{};
  inflights.reset();
}

void Progress::become_snapshot(Index snapshot_index) {
  ++stream;
  state = ProgressState::snapshot;
  probe_sent = false;
  pending_snapshot = snapshot_index;
  snapshot_ticks = 0;
  inflights.reset();
}

bool Progress::maybe_update(Index n) {
  bool grew = false;
  if (match < n) {
    match = n;
    grew = true;
    probe_sent = false;
  }
  next = std::max(next, n + 1);
  return grew;
}

void Progress::sent_entries(Index last, std::size_t bytes) {
  if (state == ProgressState::replicate) {
    next = last + 1;
    inflights.add(last, bytes);
  } else if (state == ProgressState::probe) {
    probe_sent = true;
  }
}

bool Progress::maybe_decrease_to(Index rejected, Index hint) {
  if (state == ProgressState::replicate) {
    // A rejection of something at or below match is stale (reordered).
    if (rejected <= match) return false;
    next = match + 1;
    return true;
  }
  // Probe: only the rejection of the probe we sent (at next-1) counts.
  if (next - 1 != rejected) return false;
  next = std::max(std::min(rejected, hint + 1), match + 1);
  probe_sent = false;
  return true;
}

bool Progress::paused() const {
  switch (state) {
    case ProgressState::probe: return probe_sent;
    case ProgressState::replicate: return inflights.full();
    case ProgressState::snapshot: return true;
  }
  return true;
}

void Progress::restart_as(std::uint64_t new_incarnation) {
  incarnation = new_incarnation;
  match = Index{};
  pending_snapshot = Index{};
  state = ProgressState::probe;
  become_probe();
}

}  // namespace raftkit::core

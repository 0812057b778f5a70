// transport/snapshot_stream.cpp — see snapshot_stream.hpp.
#include "transport/snapshot_stream.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "storage/crc32c.hpp"

namespace raftkit::transport {

SnapshotTransfer::SnapshotTransfer(Message metadata, std::shared_ptr<const Bytes> data, std::uint32_t checksum,
                                   std::uint64_t id)
    : metadata_(std::move(metadata)), data_(std::move(data)), checksum_(checksum), id_(id) {}

std::vector<SnapshotChunk> SnapshotTransfer::next_chunks(const SnapshotStreamLimits& limits) {
  std::vector<SnapshotChunk> chunks;
  const std::uint64_t total = data_->size();
  const std::uint64_t window = std::uint64_t{limits.chunk_bytes} * limits.window_chunks;
  while ((next_ < total || !sent_any_) && next_ - acked_ < window) {
    SnapshotChunk chunk;
    chunk.message = metadata_;
    chunk.transfer = id_;
    chunk.offset = next_;
    chunk.total = total;
    chunk.checksum = checksum_;
    chunk.shared = data_;
    chunk.shared_length = static_cast<std::size_t>(std::min<std::uint64_t>(limits.chunk_bytes, total - next_));
    next_ += chunk.shared_length;
    sent_any_ = true;
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

TransferVerdict SnapshotTransfer::on_ack(const SnapshotAck& ack, std::string& why) {
  using Status = SnapshotAck::Status;
  if (ack.transfer != id_) return TransferVerdict::sending;  // an older transfer's
  if (ack.received > data_->size()) {
    why = fmt::format("node {} acknowledged {} bytes of a {}-byte snapshot; abandoning it", ack.from, ack.received,
                      data_->size());
    return TransferVerdict::failed;
  }
  switch (ack.status) {
    case Status::complete:
      return TransferVerdict::delivered;
    case Status::failed:
      why = fmt::format("node {} refused the snapshot stream (transfer {})", ack.from, ack.transfer);
      return TransferVerdict::failed;
    case Status::gap:
      acked_ = next_ = ack.received;
      sent_any_ = ack.received > 0;
      break;
    case Status::receiving:
      if (ack.received > acked_) {
        acked_ = ack.received;
        next_ = std::max(next_, acked_);
        ++progress_;
        stalls_ = 0;
      } else if (ack.received < acked_) {  // the receiver lost what it held: start over from there
        acked_ = next_ = ack.received;
        sent_any_ = ack.received > 0;
      }
      break;
  }
  return TransferVerdict::sending;
}

TransferVerdict SnapshotTransfer::on_stall_check(const SnapshotStreamLimits& limits) {
  const bool stalled = progress_ == progress_seen_;
  progress_seen_ = progress_;
  if (!stalled) return TransferVerdict::sending;
  if (++stalls_ >= limits.stalls_before_failure) return TransferVerdict::failed;
  rewind();
  return TransferVerdict::sending;
}

void SnapshotTransfer::rewind() {
  next_ = acked_;
  sent_any_ = acked_ > 0;
}

SnapshotReceiver::Step SnapshotReceiver::on_chunk(NodeId self, NodeId from, const SnapshotChunk& chunk,
                                                  Clock::time_point now, const SnapshotStreamLimits& limits) {
  using Status = SnapshotAck::Status;
  const GroupId group = chunk.message.group;
  Step step;
  step.ack = SnapshotAck{self, from, chunk.transfer, 0, Status::receiving, group};
  auto refuse = [&](std::string why) {
    step.refusal = std::move(why);
    step.ack.status = Status::failed;
    return std::move(step);
  };
  if (chunk.total > limits.max_snapshot_bytes)
    return refuse(fmt::format("snapshot of {} bytes exceeds max_snapshot_bytes ({})", chunk.total,
                              limits.max_snapshot_bytes));
  auto it = partials_.find(group);
  if (it == partials_.end() || it->second.from != from || it->second.transfer != chunk.transfer) {
    if (it != partials_.end() && chunk.message.term < it->second.message.term)
      return refuse(fmt::format("term {} is older than the snapshot being received (term {})", chunk.message.term,
                                it->second.message.term));
    if (chunk.offset != 0) {
      step.ack.status = Status::gap;  // not the start of a stream we hold: from the beginning, please
      return step;
    }
    if (it == partials_.end() && partials_.size() >= limits.max_partial_snapshots)
      return refuse(fmt::format("{} snapshots of other groups are being received (max_partial_snapshots)",
                                partials_.size()));
    if (it != partials_.end()) partials_.erase(it);
    it = partials_.emplace(group, PartialSnapshot{}).first;
    step.started = true;
    PartialSnapshot& fresh = it->second;
    fresh.from = from;
    fresh.transfer = chunk.transfer;
    fresh.message = chunk.message;
    fresh.total = chunk.total;
    fresh.checksum = chunk.checksum;
    fresh.data.reserve(static_cast<std::size_t>(std::min<std::uint64_t>(chunk.total, std::uint64_t{64} << 20)));
  }
  PartialSnapshot& in = it->second;
  in.last_chunk = now;
  if (chunk.total != in.total || chunk.checksum != in.checksum || !(chunk.message == in.message)) {
    partials_.erase(it);
    return refuse("the chunk's length, checksum or metadata differ from its transfer's");
  }
  const BytesView bytes = chunk.bytes();
  step.ack.received = in.data.size();
  if (chunk.offset < in.data.size()) return step;  // a duplicate
  if (chunk.offset > in.data.size()) {
    step.ack.status = Status::gap;
    return step;
  }
  in.data.insert(in.data.end(), bytes.begin(), bytes.end());
  in.crc = storage::crc32c_extend(in.crc, bytes.data(), bytes.size());
  step.ack.received = in.data.size();
  if (in.data.size() < in.total) return step;
  if (in.crc != in.checksum) {
    partials_.erase(it);
    return refuse("checksum mismatch over the whole snapshot");
  }
  step.complete = std::move(in.message);
  step.complete->snapshot_data = std::move(in.data);
  partials_.erase(it);
  step.ack.status = Status::complete;
  return step;
}

std::vector<std::string> SnapshotReceiver::expire(Clock::time_point now, Clock::duration limit) {
  std::vector<std::string> dropped;
  for (auto it = partials_.begin(); it != partials_.end();) {
    const PartialSnapshot& p = it->second;
    if (now - p.last_chunk < limit) {
      ++it;
      continue;
    }
    dropped.push_back(fmt::format("a partial snapshot of group {} from node {} (transfer {}, {} of {} bytes): no chunk for {} ms",
                                  it->first, p.from, p.transfer, p.data.size(), p.total,
                                  std::chrono::duration_cast<std::chrono::milliseconds>(limit).count()));
    it = partials_.erase(it);
  }
  return dropped;
}

}  // namespace raftkit::transport

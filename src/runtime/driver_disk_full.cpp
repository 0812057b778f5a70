// The Driver's full disk (A FULL DISK in driver.hpp): a write refused with
// errc::no_space, its retries, and the way back.
#include <fmt/format.h>

#include "raftkit/diagnose.hpp"
#include "raftkit/error.hpp"
#include "runtime/driver.hpp"

namespace raftkit::runtime {

// The write `id` was refused with no_space and left the store as it was.
// A snapshot's write is the lifecycle's to drop or retry. The log write of
// the Ready in flight is kept with its Ready and handed out again later:
// until it succeeds nothing of that Ready counts as persisted, so none of
// its acknowledgements or votes leave and nothing after it is applied.
void Driver::write_refused(std::uint64_t id, const std::string& what) {
  metrics_.no_space_writes.add();
  if (snapshot_.write_refused(id, *raft_)) return process();
  if (!persisting_ || id != persisting_id_) return;
  persisting_id_ = 0;  // nothing in flight until the retry
  disk_retry_at_ = now_ + std::chrono::duration_cast<TimePoint>(options_.disk_full_retry);
  if (disk_full()) return;  // a retry refused again
  disk_full_since_ = now_;
  metrics_.disk_full.set(1);
  const bool led = raft_->role() == core::Role::leader;
  options_.logger.error(options_.id, raft_->term(),
                        "disk full ({}: no space left on the device): refusing writes with no_space{}, not "
                        "campaigning or voting, acknowledging nothing unwritten; retrying every {} ms",
                        what, led ? ", stepping down as leader" : "", options_.disk_full_retry.count());
  // A leader that cannot write its own log cannot commit anything a
  // follower would not have to carry alone: it gives way, and the others
  // (if they are a quorum) elect one of themselves meanwhile.
  raft_->step_down();
  raft_->hold_campaigns(true);
  process();
}

// Hands the refused log write out again, as a new write (a new id in the
// hand-out order): its steps are idempotent (a hard state already saved is
// not written twice; entries appended again replace themselves).
void Driver::retry_refused_write() {
  if (!persisting_ || !persisting_write_ || persisting_id_ != 0) return;
  auto w = ids_.new_write(persisting_write_->apply);
  persisting_write_ = w;
  persisting_id_ = w->id;
  persist_started_ = now_;
  stall_reported_ = false;
  io_.persist(std::move(w));
}

// The refused write went through at last: the node is what it was.
void Driver::disk_space_back() {
  options_.logger.warn(options_.id, raft_->term(), "disk space available again after {}: resuming",
                       duration_text(now_ - *disk_full_since_));
  disk_full_since_.reset();
  metrics_.disk_full.set(0);
  raft_->hold_campaigns(false);
}

}  // namespace raftkit::runtime

// Linearizable local reads: a read waits, without sending anything, until its replica has
// applied everything it had seen prepared when the read began (docs/replica.md says why this
// is enough).
#include "replica/replica.h"

namespace mk::replica {

std::uint64_t Replica::read_target() const {
  switch (object_->options.protocol) {
    case Protocol::ordered:
      return stashed_seq_;
    case Protocol::two_phase:
      return prepares_;
    case Protocol::one_phase:
      return 0;
  }
  return 0;
}

bool Replica::read_ready(std::uint64_t target) const {
  switch (object_->options.protocol) {
    case Protocol::ordered:
      return applied_seq_ >= target;
    case Protocol::two_phase:
      return unresolved_.empty() || *unresolved_.begin() > target;
    case Protocol::one_phase:
      return true;
  }
  return true;
}

bool Replica::read_now(detail::ReadWaiter& waiter) {
  if (!member_) {
    waiter.error = not_member("read");
    return true;
  }
  waiter.target = read_target();
  if (!read_ready(waiter.target)) return false;
  waiter.state = machine_->state();
  return true;
}

void Replica::wait_read(detail::ReadWaiter& waiter) {
  const std::uint64_t id = ++reads_made_;
  reads_.emplace(id, ReadWait{&waiter, waiter.target, deadline_in(Deadline::Kind::read, id)});
}

void Replica::wake_reads() {
  for (auto it = reads_.begin(); it != reads_.end();) {
    // A kernel that left answers every waiting read at once, with an error.
    if (member_ && !read_ready(it->second.target)) {
      ++it;
      continue;
    }
    detail::ReadWaiter* waiter = it->second.waiter;
    host_.cancel_deadline(it->second.deadline);
    it = reads_.erase(it);
    if (machine_ && member_) {
      waiter->state = machine_->state();
    } else {
      waiter->error = not_member("read");
    }
    detail::KernelAccess::make_ready(kernel_, waiter->handle);
  }
}

}  // namespace mk::replica

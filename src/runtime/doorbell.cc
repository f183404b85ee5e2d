#include "runtime/doorbell.h"

namespace mk::runtime {

void post(Inbox& inbox, Doorbell& doorbell, InboxItem* item) noexcept {
  // The push is the published work; ring() takes the waker's barrier before it looks at the
  // sleeping flag.
  inbox.push(item);
  doorbell.ring();
}

}  // namespace mk::runtime

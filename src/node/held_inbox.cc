#include "node/held_inbox.h"

namespace nodelink::node {

void HeldInbox::Complete(uint64_t inbox_id) {
  {
    std::lock_guard lock(mu_);
    if (held_.count(inbox_id) != 0) return;  // Release completes it
  }
  inner_.Complete(inbox_id);
}

void HeldInbox::Hold(uint64_t inbox_id) {
  if (inbox_id == 0) return;
  std::lock_guard lock(mu_);
  held_.insert(inbox_id);
}

void HeldInbox::Release(uint64_t inbox_id) {
  if (inbox_id == 0) return;
  {
    std::lock_guard lock(mu_);
    held_.erase(inbox_id);
  }
  inner_.Complete(inbox_id);
}

}  // namespace nodelink::node

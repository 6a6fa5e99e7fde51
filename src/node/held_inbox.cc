#include "node/held_inbox.h"

#include <future>
#include <memory>

namespace nodelink::node {

void HeldInbox::Complete(uint64_t inbox_id, std::function<void()> durable) {
  {
    std::lock_guard lock(mu_);
    if (held_.count(inbox_id) != 0) return;  // Release completes it
  }
  inner_.Complete(inbox_id, std::move(durable));
}

void HeldInbox::Hold(uint64_t inbox_id) {
  if (inbox_id == 0) return;
  std::lock_guard lock(mu_);
  held_.insert(inbox_id);
}

bool HeldInbox::Release(uint64_t inbox_id, std::chrono::milliseconds timeout) {
  if (inbox_id == 0) return true;
  {
    std::lock_guard lock(mu_);
    held_.erase(inbox_id);
  }
  auto removed = std::make_shared<std::promise<void>>();
  std::future<void> done = removed->get_future();
  inner_.Complete(inbox_id, [removed] { removed->set_value(); });
  if (done.wait_for(timeout) != std::future_status::ready) return false;
  try {
    done.get();
    return true;
  } catch (const std::future_error&) {  // the store dropped the change (failed or stopping)
    return false;
  }
}

}  // namespace nodelink::node

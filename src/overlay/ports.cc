#include "overlay/ports.h"

#include <algorithm>

namespace nodelink::overlay {

bool JournalBatch::empty() const {
  return put_channels.empty() && delete_channels.empty() && windows.empty() &&
         send_seqs.empty() && put_setup_log.empty() && put_inbox.empty() &&
         delete_inbox.empty() && put_sent.empty() && mark_resent.empty() &&
         put_answered.empty() && prune_setup_log_before_ms == 0 && prune_sent_before_ms == 0 &&
         prune_answered_before_ms == 0 && !erased_secrets;
}

namespace {
template <typename T>
void MoveAppend(std::vector<T>& to, std::vector<T>& from) {
  for (T& item : from) to.push_back(std::move(item));
  from.clear();
}
}  // namespace

void JournalBatch::Absorb(JournalBatch&& other) {
  // A whole row written later supersedes partial updates queued earlier for the same channel.
  for (const ChannelRow& row : other.put_channels) {
    ChannelKey key{row.peer, row.channel_id};
    windows.erase(key);
    send_seqs.erase(key);
  }
  MoveAppend(put_channels, other.put_channels);
  MoveAppend(delete_channels, other.delete_channels);
  for (auto& [key, window] : other.windows) windows[key] = std::move(window);
  for (auto& [key, seq] : other.send_seqs) send_seqs[key] = seq;
  MoveAppend(put_setup_log, other.put_setup_log);
  MoveAppend(put_inbox, other.put_inbox);
  for (uint64_t id : other.delete_inbox) {
    // Ids grow in the order rows are queued: a removal below the first put of the batch (the
    // usual case under load) is of a row committed before, with no scan.
    auto put = put_inbox.empty() || id < put_inbox.front().id
                   ? put_inbox.end()
                   : std::find_if(put_inbox.begin(), put_inbox.end(),
                                  [id](const InboxRow& row) { return row.id == id; });
    if (put != put_inbox.end()) {
      put_inbox.erase(put);
    } else {
      delete_inbox.push_back(id);
    }
  }
  other.delete_inbox.clear();
  MoveAppend(put_sent, other.put_sent);
  MoveAppend(mark_resent, other.mark_resent);
  MoveAppend(put_answered, other.put_answered);
  prune_setup_log_before_ms = std::max(prune_setup_log_before_ms, other.prune_setup_log_before_ms);
  prune_sent_before_ms = std::max(prune_sent_before_ms, other.prune_sent_before_ms);
  prune_answered_before_ms = std::max(prune_answered_before_ms, other.prune_answered_before_ms);
  erased_secrets = erased_secrets || other.erased_secrets;
}

}  // namespace nodelink::overlay

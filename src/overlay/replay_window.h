// The per-channel, per-direction anti-replay window of PROTOCOL.md section 6 (the sliding window
// of RFC 4303 section 3.4.3): the highest sequence number accepted and a bitmap of the `size`
// numbers at and below it.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "core/bytes.h"

namespace nodelink::overlay {

class ReplayWindow {
 public:
  enum class Verdict {
    kNew,        // above the window, or inside it and unmarked
    kDuplicate,  // inside the window and marked
    kTooOld,     // below the window (PROTOCOL 7 check 5: STALE)
  };

  // Tracks the highest number and at least `size` numbers below it (size >= 1024; the bitmap is
  // rounded up to whole 64-bit words). Not thread-safe: the channel manager serializes access.
  explicit ReplayWindow(uint64_t size = 1024);

  Verdict Check(uint64_t seq) const;
  // Marks `seq` as seen. Call only after Check(seq) returned kNew and every later check passed.
  void Mark(uint64_t seq);

  uint64_t highest() const { return highest_; }
  // Numbers tracked, the highest included.
  uint64_t size() const { return bits_.size() * 64; }

  // The bitmap as bytes, for the store (with highest() in its own column).
  Bytes SerializeBitmap() const;
  // Rebuilds a window. A bitmap of another size (the node's max_in_flight changed) is resized: a
  // larger window counts the numbers it never tracked as seen (refusing them is safe; accepting
  // them could accept a replay), a smaller one drops the oldest. DataLoss if the bitmap is not
  // whole 64-bit words.
  static absl::StatusOr<ReplayWindow> Restore(uint64_t highest, ByteView bitmap, uint64_t size);

 private:
  bool Bit(uint64_t offset) const;  // offset 0 = highest_
  void SetBit(uint64_t offset);
  void ShiftUp(uint64_t by);

  uint64_t highest_ = 0;
  std::vector<uint64_t> bits_;
};

}  // namespace nodelink::overlay

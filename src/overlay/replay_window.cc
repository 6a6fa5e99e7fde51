#include "overlay/replay_window.h"

#include <algorithm>

#include "core/status.h"

namespace nodelink::overlay {

ReplayWindow::ReplayWindow(uint64_t size) {
  size = std::max<uint64_t>(size, 1024);
  // PROTOCOL 6: `size` numbers below the highest, plus the highest itself.
  bits_.assign((size + 1 + 63) / 64, 0);
}

bool ReplayWindow::Bit(uint64_t offset) const {
  return (bits_[offset / 64] >> (offset % 64)) & 1u;
}

void ReplayWindow::SetBit(uint64_t offset) { bits_[offset / 64] |= uint64_t{1} << (offset % 64); }

// Moves every bit `by` places away from the top (offsets grow as highest_ grows).
void ReplayWindow::ShiftUp(uint64_t by) {
  if (by >= size()) {
    std::fill(bits_.begin(), bits_.end(), 0);
    return;
  }
  const size_t words = bits_.size();
  const size_t word_shift = static_cast<size_t>(by / 64);
  const unsigned bit_shift = static_cast<unsigned>(by % 64);
  for (size_t i = words; i-- > 0;) {
    uint64_t v = 0;
    if (i >= word_shift) {
      v = bits_[i - word_shift] << bit_shift;
      if (bit_shift != 0 && i >= word_shift + 1) v |= bits_[i - word_shift - 1] >> (64 - bit_shift);
    }
    bits_[i] = v;
  }
}

ReplayWindow::Verdict ReplayWindow::Check(uint64_t seq) const {
  if (seq > highest_) return Verdict::kNew;
  uint64_t offset = highest_ - seq;
  if (offset >= size()) return Verdict::kTooOld;
  return Bit(offset) ? Verdict::kDuplicate : Verdict::kNew;
}

void ReplayWindow::Mark(uint64_t seq) {
  if (seq == 0) core::Die("ReplayWindow::Mark(0): sequence numbers start at 1");
  if (seq > highest_) {
    ShiftUp(seq - highest_);
    highest_ = seq;
    SetBit(0);
    return;
  }
  uint64_t offset = highest_ - seq;
  if (offset >= size()) core::Die("ReplayWindow::Mark below the window");
  SetBit(offset);
}

Bytes ReplayWindow::SerializeBitmap() const {
  Bytes out;
  out.reserve(bits_.size() * 8);
  for (uint64_t word : bits_) {
    for (int shift = 56; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(word >> shift));
  }
  return out;
}

absl::StatusOr<ReplayWindow> ReplayWindow::Restore(uint64_t highest, ByteView bitmap,
                                                   uint64_t size) {
  ReplayWindow w(size);
  if (bitmap.empty() && highest == 0) return w;
  if (bitmap.empty() || bitmap.size() % 8 != 0) {
    return absl::DataLossError("stored anti-replay window is not a whole number of words");
  }
  const size_t stored_words = bitmap.size() / 8;
  for (size_t i = 0; i < w.bits_.size(); ++i) {
    uint64_t word = ~uint64_t{0};  // beyond what was stored: counted as seen
    if (i < stored_words) {
      word = 0;
      for (size_t j = 0; j < 8; ++j) word = (word << 8) | bitmap[i * 8 + j];
    }
    w.bits_[i] = word;
  }
  w.highest_ = highest;
  return w;
}

}  // namespace nodelink::overlay

#include <doctest/doctest.h>

#include <random>
#include <set>

#include "overlay/replay_window.h"

namespace nodelink::overlay {
namespace {

using V = ReplayWindow::Verdict;

TEST_CASE("new, duplicate and too-old numbers") {
  ReplayWindow w(1024);
  CHECK(w.size() == 1024);
  CHECK(w.Check(1) == V::kNew);
  w.Mark(1);
  CHECK(w.Check(1) == V::kDuplicate);
  w.Mark(5);
  CHECK(w.Check(3) == V::kNew);  // inside the window, unmarked: out-of-order arrival is fine
  w.Mark(3);
  CHECK(w.Check(3) == V::kDuplicate);
  w.Mark(5000);
  CHECK(w.Check(5000 - 1023) == V::kNew);
  CHECK(w.Check(5000 - 1024) == V::kTooOld);
  CHECK(w.Check(5) == V::kTooOld);
  CHECK(w.Check(6000) == V::kNew);
}

TEST_CASE("matches a reference set under random arrival within the window") {
  std::mt19937_64 rng(42);
  ReplayWindow w(2048);
  std::set<uint64_t> seen;
  uint64_t highest = 0;
  for (int i = 0; i < 20000; ++i) {
    uint64_t seq = std::max<uint64_t>(1, highest + (rng() % 300) - 200);
    V expected;
    if (seq > highest) expected = V::kNew;
    else if (highest - seq >= 2048) expected = V::kTooOld;
    else expected = seen.count(seq) ? V::kDuplicate : V::kNew;
    REQUIRE(w.Check(seq) == expected);
    if (expected == V::kNew) {
      w.Mark(seq);
      seen.insert(seq);
      highest = std::max(highest, seq);
    }
  }
}

TEST_CASE("serialize and restore keep every mark; wrong sizes are refused") {
  ReplayWindow w(1024);
  for (uint64_t s : {1, 2, 10, 64, 65, 700, 900}) w.Mark(s);
  auto r = ReplayWindow::Restore(w.highest(), w.SerializeBitmap(), 1024);
  REQUIRE(r.ok());
  for (uint64_t s = 1; s <= 901; ++s) CHECK(r->Check(s) == w.Check(s));
  CHECK_FALSE(ReplayWindow::Restore(900, Bytes(3), 1024).ok());
  CHECK(ReplayWindow::Restore(0, Bytes{}, 1024).ok());
}

TEST_CASE("large jumps clear the window") {
  ReplayWindow w(1024);
  w.Mark(10);
  w.Mark(1'000'000);
  CHECK(w.Check(10) == V::kTooOld);
  CHECK(w.Check(999'999) == V::kNew);
  w.Mark(999'999);
  CHECK(w.Check(999'999) == V::kDuplicate);
}

}  // namespace
}  // namespace nodelink::overlay

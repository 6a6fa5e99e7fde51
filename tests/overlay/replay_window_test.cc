#include <doctest/doctest.h>

#include <random>
#include <set>

#include "overlay/replay_window.h"

namespace nodelink::overlay {
namespace {

using V = ReplayWindow::Verdict;

TEST_CASE("new, duplicate and too-old numbers") {
  ReplayWindow w(1024);
  CHECK(w.size() >= 1025);  // 1024 numbers below the highest, and the highest
  CHECK(w.Check(1) == V::kNew);
  w.Mark(1);
  CHECK(w.Check(1) == V::kDuplicate);
  w.Mark(5);
  CHECK(w.Check(3) == V::kNew);  // inside the window, unmarked: out-of-order arrival is fine
  w.Mark(3);
  CHECK(w.Check(3) == V::kDuplicate);
  w.Mark(5000);
  CHECK(w.Check(5000 - 1024) == V::kNew);  // the 1,024th number below is still tracked
  CHECK(w.Check(5000 - w.size()) == V::kTooOld);
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
    else if (highest - seq >= w.size()) expected = V::kTooOld;
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

TEST_CASE("a window restored at another size keeps its marks and refuses what it never tracked") {
  ReplayWindow small(1024);
  small.Mark(2000);
  small.Mark(1990);
  auto grown = ReplayWindow::Restore(small.highest(), small.SerializeBitmap(), 4096);
  REQUIRE(grown.ok());
  CHECK(grown->size() > small.size());
  CHECK(grown->Check(1990) == V::kDuplicate);
  CHECK(grown->Check(1991) == V::kNew);
  CHECK(grown->Check(2000 - small.size() - 10) == V::kDuplicate);  // untracked before: refused
  auto shrunk = ReplayWindow::Restore(grown->highest(), grown->SerializeBitmap(), 1024);
  REQUIRE(shrunk.ok());
  CHECK(shrunk->Check(1990) == V::kDuplicate);
  CHECK(shrunk->Check(2001) == V::kNew);
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

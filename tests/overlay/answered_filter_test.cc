#include "overlay/answered_filter.h"

#include <doctest/doctest.h>

#include <string>

namespace nodelink::overlay {
namespace {

TEST_CASE("answered filter: no false 'no'; few false 'maybe's; the key is the pair") {
  AnsweredFilter f;
  for (int i = 0; i < 20'000; ++i) f.Add("node-a", "request-" + std::to_string(i), 1'000);
  int missing = 0;
  for (int i = 0; i < 20'000; ++i)
    missing += !f.MayContain("node-a", "request-" + std::to_string(i));
  CHECK(missing == 0);
  int maybes = 0;
  for (int i = 0; i < 20'000; ++i) maybes += f.MayContain("node-a", "other-" + std::to_string(i));
  // ~1e-8 expected at this fill (20,000 keys in 8 Mbit, 4 probes); a handful would still pass.
  CHECK(maybes < 10);
  // Another peer's request of the same id, and the same bytes split differently, are other keys.
  CHECK_FALSE(f.MayContain("node-b", "request-1"));
  f.Add("ab", "c", 1'000);
  CHECK_FALSE(f.MayContain("a", "bc"));
}

TEST_CASE("answered filter: a key stays until its expiry and a margin have passed") {
  AnsweredFilter f;
  constexpr uint64_t kMargin = AnsweredFilter::kKeepAfterExpiryMs;
  f.Add("node-a", "early", 1'000);
  f.Rotate(500);  // the empty older generation goes; "early" moves to the older one
  CHECK(f.MayContain("node-a", "early"));
  f.Add("node-a", "late", 5'000);
  f.Rotate(1'000 + kMargin);  // "early" is within its margin: nothing is dropped
  CHECK(f.MayContain("node-a", "early"));
  CHECK(f.MayContain("node-a", "late"));
  f.Rotate(1'001 + kMargin);  // "early"'s generation goes; "late" moves to the older one
  CHECK_FALSE(f.MayContain("node-a", "early"));
  CHECK(f.MayContain("node-a", "late"));
  f.Rotate(5'000 + kMargin);
  CHECK(f.MayContain("node-a", "late"));
  f.Rotate(5'001 + kMargin);  // "late" has expired, with the margin: its generation goes
  CHECK_FALSE(f.MayContain("node-a", "late"));
}

}  // namespace
}  // namespace nodelink::overlay

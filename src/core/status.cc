#include "core/status.h"

#include <cstdio>
#include <cstdlib>

namespace nodelink::core {

void Die(std::string_view what) {
  std::fprintf(stderr, "nodelink: internal invariant broken: %.*s\n", static_cast<int>(what.size()),
               what.data());
  std::abort();
}

}  // namespace nodelink::core

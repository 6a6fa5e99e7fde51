#include <cstdio>

#include <nodelink/version.hpp>

int main() {
  std::printf("nodelink %s speaks %s\n", nodelink::Version(), nodelink::ProtocolName());
  return 0;
}

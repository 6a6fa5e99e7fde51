// nodelink-keys: identities, the federation CA, certificates, trust and channels of a
// participant's key store. See `nodelink-keys --help`.
#include <iostream>

#include "cli.h"

int main(int argc, char** argv) {
  return nodelink::keys::cli::Run(argc, argv, std::cout, std::cerr);
}

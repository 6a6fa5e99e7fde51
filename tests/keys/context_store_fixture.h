#pragma once

#include <string>

#include "core/sha256.h"
#include "keys/context_store.h"

namespace nodelink::keys::testing {

inline SecaggContext SampleContext(const std::string& researcher, const std::string& id) {
  SecaggContext c;
  c.researcher = researcher;
  c.context_id = id;
  c.scheme = 1;
  c.created_ms = 1000;
  c.params_digest = core::Sha256Bytes(AsBytes(researcher + "/" + id));
  c.parties = {"node-a", "node-b", "node-c"};
  return c;
}

}  // namespace nodelink::keys::testing

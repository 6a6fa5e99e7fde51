// For nodelink's own tests: reach below the Node facade to send protocol messages its API never
// sends (a malformed party list, a share request with another digest...).
#pragma once

#include "nodelink/node.hpp"
#include "router/router.h"

namespace nodelink::node {

router::Router& RouterForTesting(Node& node);

}  // namespace nodelink::node

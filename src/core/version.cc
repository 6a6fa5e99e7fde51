#include "nodelink/version.hpp"

namespace nodelink {

const char* Version() { return NODELINK_VERSION; }
const char* ProtocolName() { return "nodelink/1"; }

}  // namespace nodelink

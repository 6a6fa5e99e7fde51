// nodelink version information.
#pragma once

namespace nodelink {

// The library version, "MAJOR.MINOR.PATCH".
const char* Version();
// The wire protocol this library speaks: "nodelink/1".
const char* ProtocolName();

}  // namespace nodelink

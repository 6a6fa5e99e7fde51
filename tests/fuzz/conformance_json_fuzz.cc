// Fuzzes the conformance vector reader (PROTOCOL.md section 10): any text is either refused with
// an error or checked vector by vector; nothing may crash, throw or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "messages/protobuf_log.h"
#include "overlay/conformance.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool silenced = [] {
    nodelink::messages::SilenceProtobufLogs();
    return true;
  }();
  (void)silenced;
  auto results = nodelink::overlay::VerifyConformanceVectors(
      std::string_view(reinterpret_cast<const char*>(data), size));
  (void)results;
  return 0;
}

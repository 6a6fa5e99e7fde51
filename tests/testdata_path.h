// Where tests find their data and the tools they start.
#pragma once

#include <string>

namespace nodelink::testing {

inline std::string TestdataPath(const std::string& relative) {
  return std::string(NODELINK_TESTDATA_DIR) + "/" + relative;
}
inline std::string BinPath(const std::string& tool) {
  return std::string(NODELINK_BIN_DIR) + "/" + tool;
}

}  // namespace nodelink::testing

#include "messages/protobuf_log.h"

#include <google/protobuf/stubs/logging.h>

#include <atomic>
#include <string>

namespace nodelink::messages {

namespace {
std::atomic<uint64_t> dropped{0};

void CountAndDrop(google::protobuf::LogLevel level, const char* /*file*/, int /*line*/,
                  const std::string& /*message*/) {
  if (level != google::protobuf::LOGLEVEL_FATAL) dropped.fetch_add(1);
}
}  // namespace

void SilenceProtobufLogs() { google::protobuf::SetLogHandler(&CountAndDrop); }

uint64_t DroppedProtobufLogLines() { return dropped.load(); }

}  // namespace nodelink::messages

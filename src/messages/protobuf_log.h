// protobuf writes an ERROR line to stderr for every string field with invalid UTF-8 it parses
// (IMPLEMENTATION-NOTES 4.5): a hostile peer could fill the log. Daemons and tools call this once.
#pragma once

#include <cstdint>

namespace nodelink::messages {

// Drops protobuf's INFO/WARNING/ERROR lines (FATAL still aborts as usual) and counts them.
// Thread-safe; idempotent.
void SilenceProtobufLogs();
// How many lines were dropped since the call.
uint64_t DroppedProtobufLogLines();

}  // namespace nodelink::messages

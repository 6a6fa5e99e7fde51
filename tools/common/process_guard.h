// Process-wide setup for daemons and tools that hold keys.
#pragma once

#include <functional>

namespace nodelink::tools {

// No core dumps and no ptrace by other users: the process holds keys (STYLE: secrets).
void DisableCoreDumps();

// Sends spdlog's default logger to stderr: stdout carries results (JSON, sums, stats lines).
void LogToStderr();

// Blocks SIGTERM, SIGINT and SIGHUP in every thread (call before starting threads) and returns
// once one arrives, from the calling thread. Signal handlers never run our code.
int WaitForTerminationSignal();

// Like WaitForTerminationSignal, but gives up after `timeout_ms`, returning 0.
int WaitForTerminationSignalFor(long timeout_ms);

// Blocks the termination signals in the calling thread (and the threads it starts later).
void BlockTerminationSignals();

}  // namespace nodelink::tools

// Sends what gRPC and protobuf log into spdlog, rate-limited (IMPLEMENTATION-NOTES 2 and 4.5): a
// hostile client can make protobuf log one ERROR line per invalid-UTF-8 frame, and gRPC logs every
// failed TLS handshake, so each library gets at most a few lines per second and a count of what
// was suppressed.
#pragma once

namespace nodelink::transport {

// Installs the handlers once per process (later calls do nothing). Thread-safe. For daemons and
// tests; never logs message contents beyond what the libraries put in their lines.
void RouteLibraryLogsToSpdlog();

}  // namespace nodelink::transport

// Reading a hub's Prometheus endpoint from tests: GET /metrics on 127.0.0.1:PORT, then one value.
#pragma once

#include <cstdint>
#include <string>

namespace nodelink::process {

// The whole HTTP response ("" if nothing answers).
std::string ScrapeMetrics(int port);
// The value of the sample named exactly `name` (with its labels, e.g.
// `nodelink_hub_faults_injected_total{kind="drop"}`); 0 if absent.
uint64_t MetricValue(const std::string& text, const std::string& name);

}  // namespace nodelink::process

#include "transport/fault_injection.h"

#include <charconv>
#include <cmath>
#include <vector>

#include "fmt/format.h"

namespace nodelink::transport {

const char* FaultName(Fault fault) {
  switch (fault) {
    case Fault::kNone: return "none";
    case Fault::kDrop: return "drop";
    case Fault::kDuplicate: return "duplicate";
    case Fault::kReorder: return "reorder";
    case Fault::kDelay: return "delay";
    case Fault::kCorrupt: return "corrupt";
  }
  return "none";
}

namespace {

absl::Status BadItem(std::string_view item, std::string_view why) {
  return absl::InvalidArgumentError(
      fmt::format("--inject-faults: '{}' {} (expected e.g. drop=0.01,duplicate=0.02,reorder=0.05,"
                  "delay=0.01,delay-ms=50,corrupt=0.01,seed=7)",
                  item, why));
}

}  // namespace

absl::StatusOr<FaultOptions> ParseFaultSpec(std::string_view spec) {
  FaultOptions o;
  while (!spec.empty()) {
    const size_t comma = spec.find(',');
    const std::string_view item = spec.substr(0, comma);
    spec = comma == std::string_view::npos ? std::string_view() : spec.substr(comma + 1);
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    if (eq == std::string_view::npos) return BadItem(item, "is not key=value");
    const std::string_view key = item.substr(0, eq);
    const std::string value(item.substr(eq + 1));
    if (key == "seed" || key == "delay-ms") {
      uint64_t n = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || end != value.data() + value.size()) {
        return BadItem(item, "needs a whole number");
      }
      (key == "seed" ? o.seed : o.delay_ms) = n;
      continue;
    }
    double* p = key == "drop"        ? &o.drop
                : key == "duplicate" ? &o.duplicate
                : key == "reorder"   ? &o.reorder
                : key == "delay"     ? &o.delay
                : key == "corrupt"   ? &o.corrupt
                                     : nullptr;
    if (p == nullptr) return BadItem(item, "names no fault");
    char* end = nullptr;
    *p = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !std::isfinite(*p) || *p < 0 ||
        *p > 1) {
      return BadItem(item, "needs a probability between 0 and 1");
    }
  }
  if (o.drop + o.duplicate + o.reorder + o.delay + o.corrupt > 1 + 1e-9) {
    return absl::InvalidArgumentError("--inject-faults: the probabilities add up to more than 1");
  }
  return o;
}

std::string DescribeFaults(const FaultOptions& o) {
  return fmt::format("drop {}, duplicate {}, reorder {}, delay {} ({} ms), corrupt {}, seed {}",
                     o.drop, o.duplicate, o.reorder, o.delay, o.delay_ms, o.corrupt, o.seed);
}

FaultInjector::FaultInjector(FaultOptions options) : options_(options), rng_(options.seed) {}

Fault FaultInjector::Choose(const v1::Envelope& envelope) {
  if (envelope.body_case() != v1::Envelope::kSealed) return Fault::kNone;
  const double u = std::uniform_real_distribution<double>(0, 1)(rng_);
  double edge = 0;
  for (auto [p, fault] : {std::pair{options_.drop, Fault::kDrop},
                          std::pair{options_.duplicate, Fault::kDuplicate},
                          std::pair{options_.reorder, Fault::kReorder},
                          std::pair{options_.delay, Fault::kDelay},
                          std::pair{options_.corrupt, Fault::kCorrupt}}) {
    edge += p;
    if (u < edge) return fault;
  }
  return Fault::kNone;
}

void FaultInjector::Corrupt(v1::Envelope& envelope) {
  std::string& c = *envelope.mutable_sealed()->mutable_ciphertext();
  if (c.empty()) return;
  const uint64_t bit = std::uniform_int_distribution<uint64_t>(0, c.size() * 8 - 1)(rng_);
  c[bit / 8] = static_cast<char>(c[bit / 8] ^ (1u << (bit % 8)));
}

}  // namespace nodelink::transport

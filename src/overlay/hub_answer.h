// Turns the hub's Rejected answer into a status for the caller that sent the envelope.
#pragma once

#include "absl/status/status.h"
#include "overlay/ports.h"

namespace nodelink::overlay {

// e.g. ResourceExhausted("hub rejected the message: QUEUE_FULL (queue of node-b is full)").
absl::Status HubRejectionStatus(const HubAnswer& answer);

}  // namespace nodelink::overlay

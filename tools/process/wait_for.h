// Waiting for another thread or process without fixed sleeps: poll a condition until it holds or
// a deadline passes.
#pragma once

#include <chrono>
#include <functional>

namespace nodelink::process {

// True as soon as `condition()` is true; false if it is still false after `timeout`. Polls every
// `interval`. The timeout is a bound for a broken run, not a guess of how long things take.
bool WaitFor(const std::function<bool()>& condition, std::chrono::milliseconds timeout,
             std::chrono::milliseconds interval = std::chrono::milliseconds(5));

}  // namespace nodelink::process

// Identifier rules of PROTOCOL.md sections 1 and 9.
#pragma once

#include <cstddef>
#include <string_view>

namespace nodelink::messages {

inline constexpr size_t kMaxNameBytes = 64;
inline constexpr size_t kIdBytes = 16;  // message id, setup id, channel id

// True for a federation name, node id or context id: ^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$. Checked by
// hand after a length check (std::regex is slow and recursive in libstdc++).
bool IsValidName(std::string_view name);

// The order of ids: bytewise over the common length, a proper prefix being smaller.
inline bool IdLess(std::string_view a, std::string_view b) { return a < b; }

}  // namespace nodelink::messages

// Names the calling thread for `top -H`, `ps -L`, perf and gdb. Linux keeps 15 bytes; longer
// names are cut. Best effort: a failure changes nothing else.
#pragma once

namespace nodelink::core {

void NameThisThread(const char* name);

}  // namespace nodelink::core

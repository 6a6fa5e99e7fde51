#include "core/ossl.h"

#include <openssl/err.h>

#include <string>

#include "core/status.h"

namespace nodelink::core {

absl::Status OpenSslError(std::string_view what, absl::StatusCode code) {
  std::string message(what);
  unsigned long err = 0;
  int shown = 0;
  while ((err = ERR_get_error()) != 0) {
    if (shown++ < 3) {  // the first few reasons are the useful ones
      char buf[256];
      ERR_error_string_n(err, buf, sizeof(buf));
      message += shown == 1 ? ": " : "; ";
      message += buf;
    }
  }
  return absl::Status(code, ToAbsl(message));
}

void ClearOpenSslErrors() { ERR_clear_error(); }

}  // namespace nodelink::core

// An exclusive flock(2) on a file, held for the life of the object: closing the descriptor
// releases it, so a process that dies lets go too. For what one process at a time may own: a CA
// directory's updates (keys/ca_directory.cc), a hub's data directory (transport's queue store).
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace nodelink::core {

class FileLock {
 public:
  enum class Mode {
    kWait,  // until the holder lets go
    kTry,   // FailedPrecondition at once if another holder has it
  };
  // Creates the file (0600) if it does not exist. Other errors: Unavailable, with errno's text.
  [[nodiscard]] static absl::StatusOr<FileLock> Take(const std::string& path, Mode mode);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&&) = delete;
  ~FileLock();

 private:
  explicit FileLock(int fd) : fd_(fd) {}
  int fd_;
};

}  // namespace nodelink::core

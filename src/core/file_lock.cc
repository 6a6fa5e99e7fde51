#include "core/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace nodelink::core {

absl::StatusOr<FileLock> FileLock::Take(const std::string& path, Mode mode) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return absl::UnavailableError("cannot open " + path + ": " + std::strerror(errno));
  const int op = mode == Mode::kTry ? LOCK_EX | LOCK_NB : LOCK_EX;
  int rc;
  do {
    rc = ::flock(fd, op);
  } while (rc != 0 && errno == EINTR);
  if (rc == 0) return FileLock(fd);
  const int err = errno;
  ::close(fd);
  if (err == EWOULDBLOCK)
    return absl::FailedPreconditionError(path + " is locked by another process");
  return absl::UnavailableError("cannot lock " + path + ": " + std::strerror(err));
}

FileLock::FileLock(FileLock&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

FileLock::~FileLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the lock
}

}  // namespace nodelink::core

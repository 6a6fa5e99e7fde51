#include "keys/files.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "core/encoding.h"
#include "core/random.h"
#include "core/status.h"

namespace nodelink::keys {

namespace {

absl::Status ErrnoStatus(std::string_view what, const std::string& path, int err) {
  std::string message = std::string(what) + " " + path + ": " + std::strerror(err);
  if (err == ENOENT) return absl::NotFoundError(message);
  if (err == EACCES || err == EPERM) return absl::PermissionDeniedError(message);
  if (err == EEXIST) return absl::AlreadyExistsError(message);
  return absl::InternalError(message);
}

// Reads at most max_bytes + 1 so an oversized file is detected without reading it all.
absl::Status ReadInto(const std::string& path, size_t max_bytes, std::string& out) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return absl::InvalidArgumentError(path + " is not a regular file");
  }
  out.clear();
  char buf[8192];
  while (true) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      ::close(fd);
      core::WipeMemory(buf, sizeof(buf));
      return ErrnoStatus("cannot read", path, err);
    }
    if (n == 0) break;
    if (out.size() + static_cast<size_t>(n) > max_bytes) {
      ::close(fd);
      core::WipeMemory(buf, sizeof(buf));
      return absl::InvalidArgumentError(path + " is larger than " + std::to_string(max_bytes) +
                                        " bytes; it is not a file this tool reads");
    }
    out.append(buf, static_cast<size_t>(n));
  }
  core::WipeMemory(buf, sizeof(buf));
  ::close(fd);
  return absl::OkStatus();
}

absl::Status WriteAll(int fd, ByteView data, const std::string& path) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path, errno);
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) return ErrnoStatus("cannot sync", path, errno);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> ReadSmallFile(const std::string& path, size_t max_bytes) {
  std::string out;
  NL_RETURN_IF_ERROR(ReadInto(path, max_bytes, out));
  return out;
}

absl::StatusOr<core::SecretBytes> ReadSecretFile(const std::string& path, size_t max_bytes) {
  std::string out;
  absl::Status status = ReadInto(path, max_bytes, out);
  if (!status.ok()) {
    core::WipeString(out);
    return status;
  }
  core::SecretBytes secret = core::SecretBytes::CopyOf(AsBytes(out));
  core::WipeString(out);
  return secret;
}

absl::Status WriteFileAtomically(const std::string& path, ByteView data, mode_t mode) {
  std::string tmp = path + ".tmp-" + core::ToHex(core::RandomBytes(6));
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
  if (fd < 0) return ErrnoStatus("cannot create", tmp, errno);
  absl::Status status = WriteAll(fd, data, tmp);
  // The umask may have narrowed the mode; the caller asked for exactly `mode`.
  if (status.ok() && ::fchmod(fd, mode) != 0) status = ErrnoStatus("cannot chmod", tmp, errno);
  ::close(fd);
  if (status.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) {
    status = ErrnoStatus("cannot rename into", path, errno);
  }
  if (!status.ok()) ::unlink(tmp.c_str());
  return status;
}

absl::Status WriteNewSecretFile(const std::string& path, ByteView secret) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError(path + " already exists; refusing to overwrite a key file");
    }
    return ErrnoStatus("cannot create", path, errno);
  }
  absl::Status status = WriteAll(fd, secret, path);
  if (status.ok() && ::fchmod(fd, 0600) != 0) status = ErrnoStatus("cannot chmod", path, errno);
  ::close(fd);
  if (!status.ok()) ::unlink(path.c_str());
  return status;
}

absl::Status CheckPrivateFileMode(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return absl::FailedPreconditionError(path + " has mode " + mode +
                                         ", readable by others; run: chmod 600 " + path);
  }
  return absl::OkStatus();
}

bool FileExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

}  // namespace nodelink::keys

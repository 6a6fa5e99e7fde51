#include "core/spool_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace nodelink::core {

namespace {

absl::Status ErrnoError(std::string_view what, const std::string& path, int err) {
  std::string message = std::string(what) + " " + path + ": " + std::strerror(err);
  if (err == ENOSPC || err == EDQUOT || err == EFBIG) {
    return absl::ResourceExhaustedError(message + "; free space on that file system");
  }
  if (err == ENOENT) return absl::NotFoundError(message);
  return absl::UnavailableError(message);
}

// Closes on every path out of a function.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

}  // namespace

absl::StatusOr<SpoolDir> SpoolDir::Open(std::string path) {
  if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError("cannot create the body directory " + path + ": " +
                                         std::strerror(errno));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(path +
                                         " must be a directory (it holds large message bodies)");
  }
  if (::access(path.c_str(), W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError("cannot write the body directory " + path + ": " +
                                         std::strerror(errno));
  }
  return SpoolDir(std::move(path));
}

std::string SpoolDir::FilePath(std::string_view name) const {
  return path_ + "/" + std::string(name);
}

absl::Status SpoolDir::Write(std::string_view name, ByteView data, bool sync) const {
  const std::string file = FilePath(name);
  Fd fd(::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (fd.get() < 0) return ErrnoError("cannot create", file, errno);
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      ::unlink(file.c_str());
      return ErrnoError("cannot write", file, err);
    }
    done += static_cast<size_t>(n);
  }
  if (sync && ::fdatasync(fd.get()) != 0) {
    const int err = errno;
    ::unlink(file.c_str());
    return ErrnoError("cannot sync", file, err);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> SpoolDir::Read(std::string_view name, size_t expected_bytes) const {
  const std::string file = FilePath(name);
  Fd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (fd.get() < 0) return ErrnoError("cannot open", file, errno);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) ||
      static_cast<uint64_t>(st.st_size) != expected_bytes) {
    return absl::DataLossError(file + " is not the " + std::to_string(expected_bytes) +
                               "-byte body its row records (cut short or replaced)");
  }
  std::string out(expected_bytes, '\0');
  size_t done = 0;
  while (done < expected_bytes) {
    const ssize_t n = ::pread(fd.get(), out.data() + done, expected_bytes - done,
                              static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return ErrnoError("cannot read", file, errno);
    if (n == 0) return absl::DataLossError(file + " ended early");
    done += static_cast<size_t>(n);
  }
  return out;
}

void SpoolDir::Remove(std::string_view name) const { ::unlink(FilePath(name).c_str()); }

absl::Status SpoolDir::SyncDirectory() const {
  Fd fd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.get() < 0 || ::fsync(fd.get()) != 0) return ErrnoError("cannot sync", path_, errno);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SpoolDir::List() const {
  DIR* dir = ::opendir(path_.c_str());
  if (dir == nullptr) return ErrnoError("cannot list", path_, errno);
  std::vector<std::string> names;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  ::closedir(dir);
  return names;
}

}  // namespace nodelink::core

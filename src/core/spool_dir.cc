#include "core/spool_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
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

// Writes all of `size` bytes: 0, or the errno of the failure.
int WriteAll(int fd, const uint8_t* data, size_t size) {
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::write(fd, data + done, size - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    done += static_cast<size_t>(n);
  }
  return 0;
}

// O_DIRECT needs the address, the length and the offset aligned to the device's logical block
// (512 B or 4 KiB). The buffer is kept: a new one would be fresh memory each time, which is the
// cost this mode avoids.
constexpr size_t kDirectAlign = 4096;

struct AlignedBuffer {
  uint8_t* data = nullptr;
  size_t size = 0;
  ~AlignedBuffer() { std::free(data); }
  bool Reserve(size_t n) {
    if (n <= size) return true;
    void* p = nullptr;
    if (::posix_memalign(&p, kDirectAlign, n) != 0) return false;
    std::free(data);
    data = static_cast<uint8_t*>(p);
    size = n;
    return true;
  }
};

}  // namespace

absl::Status SpoolDir::WriteDirect(int fd, const std::string& file, ByteView data) const {
  thread_local AlignedBuffer buffer;
  const size_t padded = (data.size() + kDirectAlign - 1) / kDirectAlign * kDirectAlign;
  if (padded == 0) return absl::OkStatus();  // an empty body: the created file is it
  if (!buffer.Reserve(padded)) return absl::ResourceExhaustedError("out of memory for " + file);
  std::memcpy(buffer.data, data.data(), data.size());
  std::memset(buffer.data + data.size(), 0, padded - data.size());
  int err = WriteAll(fd, buffer.data, padded);
  if (err == 0 && ::ftruncate(fd, static_cast<off_t>(data.size())) != 0) err = errno;
  if (err != 0) {
    ::unlink(file.c_str());
    return ErrnoError("cannot write", file, err);
  }
  return absl::OkStatus();
}

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

absl::Status SpoolDir::Write(std::string_view name, ByteView data, SpoolWrite how) const {
  const std::string file = FilePath(name);
  constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW;
  if (how == SpoolWrite::kUncached) {
    Fd fd(::open(file.c_str(), kFlags | O_DIRECT, 0600));
    if (fd.get() >= 0) return WriteDirect(fd.get(), file, data);
    if (errno != EINVAL) return ErrnoError("cannot create", file, errno);
    how = SpoolWrite::kCached;  // the file system has no O_DIRECT
  }
  Fd fd(::open(file.c_str(), kFlags, 0600));
  if (fd.get() < 0) return ErrnoError("cannot create", file, errno);
  if (const int err = WriteAll(fd.get(), data.data(), data.size()); err != 0) {
    ::unlink(file.c_str());
    return ErrnoError("cannot write", file, err);
  }
  if (how == SpoolWrite::kSynced && ::fdatasync(fd.get()) != 0) {
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
    const ssize_t n =
        ::pread(fd.get(), out.data() + done, expected_bytes - done, static_cast<off_t>(done));
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

absl::StatusOr<size_t> SpoolDir::RemoveAllBut(const std::unordered_set<std::string>& keep) const {
  absl::StatusOr<std::vector<std::string>> names = List();
  if (!names.ok()) return names.status();
  size_t removed = 0;
  for (const std::string& name : *names) {
    if (keep.contains(name)) continue;
    Remove(name);
    ++removed;
  }
  return removed;
}

SpoolBatch::~SpoolBatch() {
  if (committed_) return;
  for (const std::string& name : written_) dir_.Remove(name);
}

absl::Status SpoolBatch::Write(std::string name, ByteView data, SpoolWrite how) {
  absl::Status written = dir_.Write(name, data, how);
  if (written.ok()) written_.push_back(std::move(name));
  return written;
}

void SpoolBatch::Committed() {
  committed_ = true;
  for (const std::string& name : removed_) dir_.Remove(name);
}

}  // namespace nodelink::core

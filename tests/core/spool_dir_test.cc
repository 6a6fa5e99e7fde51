// core::SpoolDir on the file systems it meets: ext4 (/tmp here) and tmpfs (/dev/shm). kUncached
// writes with O_DIRECT where the file system takes it (ext4; tmpfs since Linux 6.6) and through
// the cache where it does not.
#include "core/spool_dir.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>

namespace nodelink::core {
namespace {

class ScratchDir {
 public:
  explicit ScratchDir(const std::string& parent) {
    std::string templ = parent + "/nodelink-spool-XXXXXX";
    REQUIRE(::mkdtemp(templ.data()) != nullptr);
    path_ = templ;
  }
  ~ScratchDir() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

Bytes Pattern(size_t n) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + 7);
  return b;
}

TEST_CASE("spool dir: every write mode round-trips every size, on ext4 and on tmpfs") {
  for (const char* parent : {"/tmp", "/dev/shm"}) {
    if (::access(parent, W_OK) != 0) continue;
    CAPTURE(std::string(parent));
    ScratchDir scratch(parent);
    auto dir = SpoolDir::Open(scratch.path() + "/bodies");
    REQUIRE(dir.ok());
    struct stat st {};
    REQUIRE(::stat(dir->path().c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    for (SpoolWrite how : {SpoolWrite::kCached, SpoolWrite::kSynced, SpoolWrite::kUncached}) {
      for (size_t size : {size_t{0}, size_t{1}, size_t{4095}, size_t{4096}, size_t{4097},
                          size_t{(1 << 20) + 3}}) {
        CAPTURE(static_cast<int>(how));
        CAPTURE(size);
        const Bytes data = Pattern(size);
        REQUIRE(dir->Write("f", data, how).ok());
        auto back = dir->Read("f", size);
        REQUIRE(back.ok());
        CHECK(Bytes(back->begin(), back->end()) == data);
      }
    }
    // Replacing a longer file leaves no tail of it.
    REQUIRE(dir->Write("f", Pattern(10), SpoolWrite::kUncached).ok());
    CHECK(dir->Read("f", 10).ok());
  }
}

TEST_CASE("spool dir: missing, resized and listed files; a path that is not a directory") {
  ScratchDir scratch("/tmp");
  auto dir = SpoolDir::Open(scratch.path() + "/bodies");
  REQUIRE(dir.ok());
  CHECK(dir->Read("absent", 3).status().code() == absl::StatusCode::kNotFound);
  REQUIRE(dir->Write("a", Pattern(100), SpoolWrite::kCached).ok());
  REQUIRE(dir->Write("b", Pattern(5), SpoolWrite::kCached).ok());
  CHECK(dir->Read("a", 99).status().code() == absl::StatusCode::kDataLoss);
  auto names = dir->List();
  REQUIRE(names.ok());
  std::sort(names->begin(), names->end());
  CHECK(*names == std::vector<std::string>{"a", "b"});
  dir->Remove("a");
  dir->Remove("a");  // already gone: not an error
  CHECK(dir->Read("a", 100).status().code() == absl::StatusCode::kNotFound);
  CHECK(dir->SyncDirectory().ok());
  // Reopening finds the files; a file where the directory should be is refused.
  auto again = SpoolDir::Open(dir->path());
  REQUIRE(again.ok());
  CHECK(again->Read("b", 5).ok());
  auto not_dir = SpoolDir::Open(dir->path() + "/b");
  CHECK(not_dir.status().code() == absl::StatusCode::kFailedPrecondition);
}

TEST_CASE("spool batch: written files go unless committed; deleted rows' files go once committed") {
  ScratchDir scratch("/tmp");
  auto dir = SpoolDir::Open(scratch.path() + "/bodies");
  REQUIRE(dir.ok());
  REQUIRE(dir->Write("old", Pattern(8), SpoolWrite::kCached).ok());
  {
    SpoolBatch failed(*dir);  // the transaction did not commit
    REQUIRE(failed.Write("new", Pattern(8), SpoolWrite::kCached).ok());
    CHECK(failed.wrote_any());
    failed.RemoveOnCommit("old");
  }
  CHECK(dir->Read("new", 8).status().code() == absl::StatusCode::kNotFound);
  CHECK(dir->Read("old", 8).ok());
  {
    SpoolBatch committed(*dir);
    REQUIRE(committed.Write("new", Pattern(8), SpoolWrite::kUncached).ok());
    committed.RemoveOnCommit("old");
    committed.Committed();
  }
  CHECK(dir->Read("new", 8).ok());
  CHECK(dir->Read("old", 8).status().code() == absl::StatusCode::kNotFound);
  // Opening: files no row names go.
  REQUIRE(dir->Write("stray", Pattern(1), SpoolWrite::kCached).ok());
  auto removed = dir->RemoveAllBut({"new"});
  REQUIRE(removed.ok());
  CHECK(*removed == 1);
  auto names = dir->List();
  REQUIRE(names.ok());
  CHECK(*names == std::vector<std::string>{"new"});
}

}  // namespace
}  // namespace nodelink::core

// The hub's data directory on a full or read-only filesystem (a small tmpfs mounted by the test:
// the tests run as root, so permissions would not stop the hub). Senders get a clear refusal,
// the hub keeps serving, nothing it accepted is lost, and its queue file stays intact.
#include <SQLiteCpp/SQLiteCpp.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "test_federation.h"

namespace nodelink::testing {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A tmpfs of `size` at `path` for the life of the object.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& path, const std::string& options) : path_(path) {
    ::mkdir(path.c_str(), 0700);
    if (::mount("tmpfs", path.c_str(), "tmpfs", 0, options.c_str()) != 0) {
      error_ = std::strerror(errno);
    }
  }
  ~TmpfsMount() {
    if (error_.empty()) ::umount2(path_.c_str(), MNT_DETACH);
  }
  // Why mounting failed ("" if it worked): these tests need root (CAP_SYS_ADMIN).
  const std::string& error() const { return error_; }

 private:
  std::string path_;
  std::string error_;
};

std::string Numbered(size_t i, size_t bytes) {
  std::string s = std::to_string(i) + ":";
  s.resize(bytes, 'x');
  return s;
}

size_t NumberOf(const Received& r) { return std::stoul(r.message.payload); }

TEST_CASE("hub storage: a full disk answers QUEUE_FULL, and every accepted message arrives") {
  // 1 MiB of headroom on an 8 MiB disk (the default is 64 MiB).
  TestFederation fed({"lab-a", "lab-b"}, std::nullopt, {"--min-free-bytes", "1048576"});
  TmpfsMount disk(fed.HubDataDir(), "size=8m,mode=0700");
  REQUIRE_MESSAGE(disk.error().empty(), "cannot mount a tmpfs (run as root): " << disk.error());
  fed.StartHub();
  Node& a = fed.StartNode("lab-a");
  {  // a channel first (a setup needs its peer online), then lab-b goes offline
    Node& b = fed.StartNode("lab-b");
    REQUIRE(a.Send("lab-b", {"hello", "hello", "", ""}).ok());
    REQUIRE(b.Receive("lab-a", "hello", seconds(30)).ok());
    fed.StopNode("lab-b");
  }

  // lab-b is offline: everything stays in the hub's queue until the disk is full.
  constexpr size_t kBytes = 64 * 1024;
  size_t accepted = 0;
  absl::Status refusal;
  for (; accepted < 1000; ++accepted) {
    refusal = a.Send("lab-b", {"fill", "fill", Numbered(accepted, kBytes), ""}, seconds(30));
    if (!refusal.ok()) break;
  }
  REQUIRE_FALSE(refusal.ok());
  CHECK(absl::IsResourceExhausted(refusal));
  CHECK_MESSAGE(refusal.message().find("disk is full or nearly full") != std::string::npos, refusal);
  CHECK(accepted > 10);
  REQUIRE(fed.hub().running());

  // The hub keeps serving: lab-b connects and gets every accepted message, once, in order.
  Node& b = fed.StartNode("lab-b");
  for (size_t i = 0; i < accepted; ++i) {
    auto got = b.Receive("lab-a", "fill", seconds(60));
    REQUIRE_MESSAGE(got.ok(), got.status());
    CHECK(NumberOf(*got) == i);
  }
  // Deliveries free the space: sending works again, and that message arrives too.
  REQUIRE(process::WaitFor(
      [&] { return a.Send("lab-b", {"fill", "fill", Numbered(accepted, kBytes), ""}).ok(); },
      seconds(60), milliseconds(100)));
  auto last = b.Receive("lab-a", "fill", seconds(60));
  REQUIRE(last.ok());
  CHECK(NumberOf(*last) == accepted);

  // The queue file is intact.
  fed.hub().Signal(SIGTERM);
  REQUIRE(fed.hub().Wait(seconds(30)) == 0);
  SQLite::Database db(fed.HubDataDir() + "/queue.db", SQLite::OPEN_READONLY);
  CHECK(db.execAndGet("PRAGMA integrity_check").getString() == "ok");
}

TEST_CASE("hub storage: a read-only data directory stops the hub at start with a clear error") {
  TestFederation fed({"lab-a"});
  TmpfsMount disk(fed.HubDataDir(), "size=1m,mode=0700");
  REQUIRE_MESSAGE(disk.error().empty(), "cannot mount a tmpfs (run as root): " << disk.error());
  REQUIRE(::mount(nullptr, fed.HubDataDir().c_str(), nullptr, MS_REMOUNT | MS_RDONLY, nullptr) ==
          0);
  auto hub = process::Subprocess::Start(fed.HubCommand(), {}, /*capture_stderr=*/true);
  REQUIRE(hub != nullptr);
  CHECK(hub->Wait(seconds(30)) == 1);
  auto why = hub->WaitForStderrLine("data directory", seconds(5));
  REQUIRE(why.has_value());
  CHECK_MESSAGE(why->find(fed.HubDataDir()) != std::string::npos, *why);
  CHECK_MESSAGE(why->find("Read-only file system") != std::string::npos, *why);
}

}  // namespace
}  // namespace nodelink::testing

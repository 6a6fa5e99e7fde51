// A fresh directory under $TMPDIR (or /tmp), removed with its contents when the object dies.
#pragma once

#include <string>

namespace nodelink::process {

class TempDir {
 public:
  // Aborts the process if the directory cannot be created (nothing useful can follow).
  explicit TempDir(const std::string& prefix = "nodelink-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name
  std::string File(const std::string& name) const { return path_ + "/" + name; }
  // Keeps the directory: the destructor will not remove it.
  void Release() { keep_ = true; }

 private:
  std::string path_;
  bool keep_ = false;
};

}  // namespace nodelink::process

#include "transport/library_logs.h"

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>

#include <chrono>
#include <mutex>
#include <string>

#include "spdlog/spdlog.h"

namespace nodelink::transport {

namespace {

constexpr int kLinesPerSecond = 5;

// A small per-library budget: kLinesPerSecond lines per wall-clock second, then a count.
class LogBudget {
 public:
  explicit LogBudget(const char* name) : name_(name) {}
  // True if the line may be written. Thread-safe.
  bool Take() {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    if (now - window_start_ >= std::chrono::seconds(1)) {
      if (suppressed_ > 0) {
        spdlog::warn("{}: {} log lines suppressed (rate limit)", name_, suppressed_);
      }
      window_start_ = now;
      used_ = 0;
      suppressed_ = 0;
    }
    if (used_ < kLinesPerSecond) {
      ++used_;
      return true;
    }
    ++suppressed_;
    return false;
  }

 private:
  const char* name_;
  std::mutex mu_;
  std::chrono::steady_clock::time_point window_start_{};
  int used_ = 0;
  long suppressed_ = 0;
};

LogBudget& ProtobufBudget() {
  static LogBudget budget("protobuf");
  return budget;
}
LogBudget& GrpcBudget() {
  static LogBudget budget("grpc");
  return budget;
}

void ProtobufLog(google::protobuf::LogLevel level, const char* filename, int line,
                 const std::string& message) {
  if (!ProtobufBudget().Take()) return;
  const auto lvl = level >= google::protobuf::LOGLEVEL_ERROR     ? spdlog::level::err
                   : level == google::protobuf::LOGLEVEL_WARNING ? spdlog::level::warn
                                                                 : spdlog::level::info;
  spdlog::log(lvl, "protobuf {}:{}: {}", filename, line, message);
}

void GrpcLog(gpr_log_func_args* args) {
  if (!GrpcBudget().Take()) return;
  const auto lvl = args->severity == GPR_LOG_SEVERITY_ERROR  ? spdlog::level::err
                   : args->severity == GPR_LOG_SEVERITY_INFO ? spdlog::level::info
                                                             : spdlog::level::debug;
  spdlog::log(lvl, "grpc {}:{}: {}", args->file, args->line, args->message);
}

}  // namespace

void RouteLibraryLogsToSpdlog() {
  static std::once_flag once;
  std::call_once(once, [] {
    google::protobuf::SetLogHandler(&ProtobufLog);
    gpr_set_log_function(&GrpcLog);
  });
}

}  // namespace nodelink::transport

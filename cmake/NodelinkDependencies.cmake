# Every dependency comes from Debian 12 packages (scripts/install-deps.sh installs them).
find_package(Protobuf REQUIRED)                # module mode: Debian ships no protobuf config
find_package(gRPC CONFIG REQUIRED)             # FATAL without protobuf-compiler-grpc
find_package(OpenSSL 3.0 REQUIRED)
find_package(SQLiteCpp CONFIG REQUIRED)        # target: SQLiteCpp (no namespace)
find_package(nlohmann_json CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(SODIUM REQUIRED IMPORTED_TARGET libsodium)   # no CMake config in Debian

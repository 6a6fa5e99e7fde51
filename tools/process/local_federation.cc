#include "process/local_federation.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "process/wait_for.h"

namespace nodelink::process {

std::string ExecutableDir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? "." : exe.parent_path().string();
}

LocalFederation::LocalFederation(std::string dir, std::string bin_dir, std::string federation)
    : dir_(std::move(dir)), bin_(std::move(bin_dir)), federation_(std::move(federation)) {}

bool LocalFederation::Run(const std::vector<std::string>& argv) {
  auto child = Subprocess::Start(argv);
  if (!child) return false;
  auto rc = child->Wait(std::chrono::seconds(60));
  std::string lines;
  for (const std::string& l : child->Lines()) lines += l + "\n";
  if (!rc || *rc != 0) {
    std::cerr << argv[0] << " " << (argv.size() > 1 ? argv[1] : "") << " failed (exit "
              << (rc ? std::to_string(*rc) : "timeout") << ")\n"
              << lines;
    return false;
  }
  return true;
}

bool LocalFederation::Create(const std::vector<std::string>& participants) {
  {
    // 0600 from the start: the passphrase is never readable by others, not even briefly.
    const int fd = ::open(PassphraseFile().c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::cerr << "cannot create " << PassphraseFile() << "\n";
      return false;
    }
    std::random_device rd;
    std::ostringstream passphrase;
    passphrase << federation_ << "-" << std::hex << rd() << rd() << rd() << "\n";
    const std::string text = passphrase.str();
    const bool written = ::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size());
    ::close(fd);
    if (!written) return false;
  }
  const std::string keys = Tool("nodelink-keys");
  if (!Run({keys, "ca", "init", "--dir", Path("ca"), "--federation", federation_}) ||
      !Run({keys, "hub-key", "--out-key", Path("hub.key"), "--out-csr", Path("hub.csr")}) ||
      !Run({keys, "ca", "sign", "--dir", Path("ca"), "--csr", Path("hub.csr"), "--out",
            Path("hub.pem"), "--hub", "--ip", "127.0.0.1"})) {
    return false;
  }
  for (const std::string& id : participants) {
    if (!Run({keys, "init", "--store", StorePath(id), "--passphrase-file", PassphraseFile(),
              "--federation", federation_, "--node-id", id, "--out-csr", Path(id + ".csr"),
              "--ca", Path("ca/ca.pem")}) ||
        !Run({keys, "ca", "sign", "--dir", Path("ca"), "--csr", Path(id + ".csr"), "--out",
              Path(id + ".pem")}) ||
        !Run({keys, "import-cert", "--store", StorePath(id), "--passphrase-file",
              PassphraseFile(), "--cert", Path(id + ".pem")})) {
      return false;
    }
  }
  return true;
}

bool LocalFederation::TrustResearcher(const std::string& store_owner,
                                      const std::string& researcher) {
  return Run({Tool("nodelink-keys"), "trust", "researcher", researcher, "--store",
              StorePath(store_owner), "--passphrase-file", PassphraseFile()});
}

bool LocalFederation::Approve(const std::string& store_owner, const std::string& co_party) {
  return Run({Tool("nodelink-keys"), "trust", "approve", co_party, "--store",
              StorePath(store_owner), "--passphrase-file", PassphraseFile()});
}

bool LocalFederation::StartHub(const std::string& data_dir,
                               const std::vector<std::string>& extra_args) {
  const std::string port_file = Path(data_dir + ".port");
  std::filesystem::remove(port_file);
  std::vector<std::string> argv = {Tool("nodelink-hub"), "--federation", federation_,
                                   "--listen", "127.0.0.1:0", "--tls-cert", Path("hub.pem"),
                                   "--tls-key", Path("hub.key"), "--tls-ca", Path("ca/ca.pem"),
                                   "--data-dir", Path(data_dir), "--port-file", port_file,
                                   "--metrics-listen", "off", "--log-level", "warn"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  hub_ = Subprocess::Start(argv);
  auto port = hub_ ? ReadPortFile(port_file, std::chrono::seconds(20)) : std::nullopt;
  if (!port) {
    std::cerr << "the hub did not start\n";
    return false;
  }
  hub_port_ = *port;
  return true;
}

void LocalFederation::StopHub() {
  if (!hub_) return;
  hub_->Signal(SIGTERM);
  hub_->Wait(std::chrono::seconds(10));
  hub_.reset();
}

std::vector<std::string> LocalFederation::ParticipantCommand(
    const std::string& program, const std::vector<std::string>& head, const std::string& id,
    const std::vector<std::string>& tail) const {
  std::vector<std::string> argv = {program};
  argv.insert(argv.end(), head.begin(), head.end());
  for (const std::string& a : {std::string("--store"), StorePath(id),
                               std::string("--passphrase-file"), PassphraseFile(),
                               std::string("--hub"), HubAddress()}) {
    argv.push_back(a);
  }
  argv.insert(argv.end(), tail.begin(), tail.end());
  return argv;
}

std::unique_ptr<Subprocess> LocalFederation::StartNode(
    const std::string& id, const std::vector<std::string>& extra_args) const {
  std::vector<std::string> tail = {"--input", InputFile(id), "--status-file", StatusFile(id),
                                   "--log-level", "warn"};
  tail.insert(tail.end(), extra_args.begin(), extra_args.end());
  return Subprocess::Start(ParticipantCommand(Tool("nodelink-node"), {}, id, tail));
}

bool LocalFederation::NodesConnected(const std::vector<std::string>& ids,
                                     std::chrono::milliseconds timeout) const {
  return WaitFor(
      [&] {
        for (const std::string& id : ids) {
          if (!std::filesystem::exists(StatusFile(id))) return false;
        }
        return true;
      },
      timeout);
}

}  // namespace nodelink::process

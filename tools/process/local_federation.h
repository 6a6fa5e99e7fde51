// A federation on this machine, made and run with the real tools as an operator would: a CA, a
// hub certificate and participant key stores from nodelink-keys, and nodelink-hub as a process
// over mutual TLS on 127.0.0.1:0. For the demo and the end-to-end benchmark; every process it
// starts dies with it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "process/subprocess.h"

namespace nodelink::process {

// The folder of the running executable (the tools are built beside each other).
std::string ExecutableDir();

class LocalFederation {
 public:
  // Files go to `dir` (which must exist); tools are taken from `bin_dir`.
  LocalFederation(std::string dir, std::string bin_dir, std::string federation);

  const std::string& dir() const { return dir_; }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }
  std::string Tool(const std::string& name) const { return bin_ + "/" + name; }
  std::string StorePath(const std::string& id) const { return Path(id + ".db"); }
  std::string PassphraseFile() const { return Path("passphrase"); }
  // A node's secret input (integers, one a line), which StartNode gives it.
  std::string InputFile(const std::string& id) const { return Path(id + ".input"); }

  // A CA, a hub certificate for 127.0.0.1, and a key store with a certificate for each of
  // `participants`, all with one fresh passphrase (a 0600 file).
  bool Create(const std::vector<std::string>& participants);
  // `nodelink-keys trust researcher|approve` in `store_owner`'s store.
  bool TrustResearcher(const std::string& store_owner, const std::string& researcher);
  bool Approve(const std::string& store_owner, const std::string& co_party);

  // Starts nodelink-hub with its durable queue in `data_dir` (under the federation's folder)
  // and `extra_args`, and waits for its port.
  bool StartHub(const std::string& data_dir = "hub-data",
                const std::vector<std::string>& extra_args = {});
  // SIGTERM, then waits for it to exit.
  void StopHub();
  std::string HubAddress() const { return "127.0.0.1:" + std::to_string(hub_port_); }
  Subprocess* hub() { return hub_.get(); }

  // `program head... <store, passphrase and hub flags of id> tail...`: a participant tool's
  // command line.
  std::vector<std::string> ParticipantCommand(const std::string& program,
                                              const std::vector<std::string>& head,
                                              const std::string& id,
                                              const std::vector<std::string>& tail = {}) const;
  // nodelink-node for `id`, reading InputFile(id), logging warnings only, with `extra_args`.
  std::unique_ptr<Subprocess> StartNode(const std::string& id,
                                        const std::vector<std::string>& extra_args = {}) const;
  // True once the hub has welcomed every node of `ids` started by StartNode, within `timeout`.
  bool NodesConnected(const std::vector<std::string>& ids,
                      std::chrono::milliseconds timeout) const;

 private:
  // Runs a tool to completion; false (printing its output to stderr) if it fails.
  bool Run(const std::vector<std::string>& argv);
  std::string StatusFile(const std::string& id) const { return Path(id + ".status"); }

  std::string dir_;
  std::string bin_;
  std::string federation_;
  int hub_port_ = 0;
  std::unique_ptr<Subprocess> hub_;
};

}  // namespace nodelink::process

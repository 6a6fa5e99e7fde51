// A minimal nodelink application: answers "echo" requests, or asks a peer for one.
//
//   nodelink-example-echo --store lab-1.db --passphrase-file pass --hub HOST:PORT serve
//   nodelink-example-echo --store lab-2.db --passphrase-file pass --hub HOST:PORT ask lab-1 hello
//
// Uses only the public API (include/nodelink/node.hpp).
#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>

#include "nodelink/errors.hpp"
#include "nodelink/node.hpp"

namespace {
volatile std::sig_atomic_t stop = 0;
void OnSignal(int) { stop = 1; }
}  // namespace

int main(int argc, char** argv) {
  if (argc < 8 || std::strcmp(argv[1], "--store") != 0 ||
      std::strcmp(argv[3], "--passphrase-file") != 0 || std::strcmp(argv[5], "--hub") != 0) {
    std::cerr << "usage: " << argv[0]
              << " --store S --passphrase-file F --hub HOST:PORT (serve | ask PEER TEXT)\n";
    return 2;
  }
  nodelink::NodeOptions options;
  options.store_path = argv[2];
  options.passphrase_file = argv[4];
  options.hub_address = argv[6];
  auto node = nodelink::Node::Start(options);
  if (!node.ok()) {
    std::cerr << node.status().message() << "\n";
    return 1;
  }
  std::string command = argv[7];
  if (command == "serve") {
    (*node)->Handle("echo", [](const nodelink::Received& r) -> nodelink::HandlerResult {
      return nodelink::Message{"echo", "", r.message.payload, r.message.content_type};
    });
    std::signal(SIGINT, OnSignal);
    std::signal(SIGTERM, OnSignal);
    std::cout << (*node)->id() << " answers echo requests; Ctrl-C stops\n";
    while (!stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
    return 0;
  }
  if (command == "ask" && argc == 10) {
    if (!(*node)->WaitConnected(std::chrono::seconds(10))) {
      std::cerr << "cannot reach the hub\n";
      return 1;
    }
    auto reply = (*node)->Request(argv[8], {"echo", "", argv[9], "text/plain"},
                                  std::chrono::seconds(10));
    if (!reply.ok()) {
      auto code = nodelink::PeerErrorCode(reply.status());
      std::cerr << (code ? "peer refused (" + *code + "): " : "failed: ")
                << reply.status().message() << "\n";
      return 1;
    }
    std::cout << reply->payload << "\n";
    return 0;
  }
  std::cerr << "unknown command\n";
  return 2;
}

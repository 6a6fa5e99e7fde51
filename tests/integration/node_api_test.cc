// The application API of nodelink::Node against a real hub: Send/Receive by tag, handlers and
// Request (with timeouts and typed errors), SendAll and Broadcast.
#include <doctest/doctest.h>
#include <pthread.h>

#include <atomic>
#include <string>
#include <thread>

#include "nodelink/errors.hpp"
#include "test_federation.h"

namespace nodelink::testing {
namespace {

TEST_CASE("Receive by tag: other tags stay queued for their own Receive, in order") {
  TestFederation fed({"a", "b"});
  fed.StartHub();
  Node& a = fed.StartNode("a");
  Node& b = fed.StartNode("b");
  REQUIRE(a.Send("b", {"data", "blue", "b1", "text/plain"}).ok());
  REQUIRE(a.Send("b", {"data", "red", "r1", ""}).ok());
  REQUIRE(a.Send("b", {"data", "blue", "b2", ""}).ok());
  auto r1 = b.Receive("a", "red", std::chrono::seconds(20));
  REQUIRE(r1.ok());
  CHECK(r1->message.payload == "r1");
  CHECK(r1->sender == "a");
  auto b1 = b.Receive("a", "blue", std::chrono::seconds(20));
  auto b2 = b.Receive("a", "blue", std::chrono::seconds(20));
  REQUIRE(b1.ok());
  REQUIRE(b2.ok());
  CHECK(b1->message.payload == "b1");
  CHECK(b1->message.content_type == "text/plain");
  CHECK(b2->message.payload == "b2");
  auto none = b.Receive("a", "blue", std::chrono::milliseconds(200));
  CHECK(none.status().code() == absl::StatusCode::kDeadlineExceeded);
  CHECK(b.Stats().receive_queue == 0);
}

TEST_CASE("a message waiting for Receive survives a restart of its receiver") {
  TestFederation fed({"a", "b"});
  fed.StartHub();
  Node& a = fed.StartNode("a");
  // b fsyncs every store commit (nodelink-node --store-synchronous full), as a node run to
  // survive power loss does; the message takes the same path.
  auto sync_full = [](NodeOptions& o) { o.store_sync_every_commit = true; };
  fed.StartNode("b", sync_full);
  REQUIRE(a.Send("b", {"data", "kept", "payload-1", ""}).ok());
  // Let it arrive and park, then stop b without receiving it.
  REQUIRE(process::WaitFor([&] { return fed.node("b").Stats().receive_queue == 1; },
                           std::chrono::seconds(20)));
  fed.StopNode("b");
  Node& b = fed.StartNode("b", sync_full);
  auto got = b.Receive("a", "kept", std::chrono::seconds(20));
  REQUIRE(got.ok());
  CHECK(got->message.payload == "payload-1");
}

TEST_CASE("handlers answer requests; errors and missing handlers come back typed") {
  TestFederation fed({"a", "b"});
  fed.StartHub();
  Node& a = fed.StartNode("a");
  Node& b = fed.StartNode("b");
  b.Handle("echo", [](const Received& r) -> HandlerResult {
    return Message{"echo", "", "echo:" + r.message.payload, ""};
  });
  b.Handle("fail", [](const Received&) -> HandlerResult {
    return absl::InternalError("the model file is missing");
  });
  std::atomic<bool> release{false};
  b.Handle("slow", [&](const Received&) -> HandlerResult {
    while (!release.load()) std::this_thread::yield();
    return Message{"slow", "", "late", ""};
  });

  auto reply = a.Request("b", {"echo", "", "hello", ""}, std::chrono::seconds(20));
  REQUIRE(reply.ok());
  CHECK(reply->payload == "echo:hello");

  auto failed = a.Request("b", {"fail", "", "", ""}, std::chrono::seconds(20));
  CHECK(failed.status().code() == absl::StatusCode::kFailedPrecondition);
  CHECK(PeerErrorCode(failed.status()) == std::optional<std::string>(kErrorHandlerFailed));

  auto unknown = a.Request("b", {"nobody-handles-this", "", "", ""}, std::chrono::seconds(20));
  CHECK(PeerErrorCode(unknown.status()) == std::optional<std::string>(kErrorUnknownType));

  auto slow = a.Request("b", {"slow", "", "", ""}, std::chrono::milliseconds(300));
  // Either clock may notice the deadline first: ours (no peer code) or b's (ErrorReply TIMEOUT).
  CHECK(slow.status().code() == absl::StatusCode::kDeadlineExceeded);
  auto slow_code = PeerErrorCode(slow.status());
  CHECK((!slow_code.has_value() || *slow_code == kErrorTimeout));
  release = true;
}

TEST_CASE("SendAll and Broadcast reach every peer; an unknown peer is reported alone") {
  TestFederation fed({"a", "b", "c", "d"}, std::nullopt,
                     {"--member", "a", "--member", "b", "--member", "c", "--member", "d",
                      "--member", "researcher"});
  fed.StartHub();
  Node& a = fed.StartNode("a");
  for (const char* id : {"b", "c", "d"}) {
    fed.StartNode(id).Handle("who", [id](const Received&) -> HandlerResult {
      return Message{"who", "", id, ""};
    });
  }
  auto replies = a.SendAll({{"b", {"who", "", "", ""}}, {"c", {"who", "", "", ""}},
                            {"d", {"who", "", "", ""}}},
                           std::chrono::seconds(20));
  REQUIRE(replies.size() == 3);
  for (const char* id : {"b", "c", "d"}) {
    REQUIRE(replies.at(id).ok());
    CHECK(replies.at(id)->payload == id);
  }
  auto sent = a.Broadcast({"b", "c", "d", "nobody"}, {"news", "t", "hello all", ""},
                          std::chrono::seconds(20));
  CHECK(sent.at("b").ok());
  CHECK(sent.at("c").ok());
  CHECK(sent.at("d").ok());
  CHECK(sent.at("nobody").code() == absl::StatusCode::kNotFound);  // hub: UNKNOWN_DESTINATION
  for (const char* id : {"b", "c", "d"}) {
    auto got = fed.node(id).Receive("a", "t", std::chrono::seconds(20));
    REQUIRE(got.ok());
    CHECK(got->message.payload == "hello all");
  }
}

// A message alone is handled on the thread that read it from the hub (no hand-off to a worker);
// a handler that runs long there must not hold up the node's other traffic: the hub client's
// second reading thread takes over (transport/completion_readers.h).
TEST_CASE("a long handler on the reading thread does not hold up other senders' requests") {
  TestFederation fed({"a", "b", "c"});
  fed.StartHub();
  Node& a = fed.StartNode("a");
  Node& b = fed.StartNode("b");
  Node& c = fed.StartNode("c");
  std::atomic<bool> release{false}, holding{false}, held_on_reader{false};
  b.Handle("hold", [&](const Received&) -> HandlerResult {
    char name[16] = {};
    pthread_getname_np(pthread_self(), name, sizeof name);
    held_on_reader = std::string(name) == "nl-hub-cq";
    holding = true;
    process::WaitFor([&] { return release.load(); }, std::chrono::seconds(20));
    holding = false;
    return std::nullopt;
  });
  b.Handle("ping", [](const Received&) -> HandlerResult { return Message{"pong", "", "", ""}; });
  // Channels first, so that the held message later arrives alone, with nothing else pending.
  REQUIRE(a.Request("b", {"ping", "", "", ""}, std::chrono::seconds(20)).ok());
  REQUIRE(c.Request("b", {"ping", "", "", ""}, std::chrono::seconds(20)).ok());
  // Usually the first held message runs on the reading thread; a few tries make that certain.
  for (int attempt = 0; attempt < 10 && !held_on_reader.load(); ++attempt) {
    release = false;
    REQUIRE(a.Send("b", {"hold", "", "", ""}).ok());
    REQUIRE(process::WaitFor([&] { return holding.load(); }, std::chrono::seconds(20)));
    if (held_on_reader.load()) break;
    release = true;
    REQUIRE(process::WaitFor([&] { return !holding.load(); }, std::chrono::seconds(20)));
  }
  REQUIRE(held_on_reader.load());
  auto pong = c.Request("b", {"ping", "", "", ""}, std::chrono::seconds(20));
  CHECK(pong.ok());
  CHECK(holding.load());  // answered while the handler still held the reading thread
  CHECK(b.Stats().reader_takeovers >= 1);
  release = true;
}

}  // namespace
}  // namespace nodelink::testing

#include "transport/hub_stream.h"

#include <utility>

#include "messages/envelope_check.h"
#include "messages/names.h"
#include "spdlog/spdlog.h"
#include "transport/identity.h"

namespace nodelink::transport {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

void HubStream::Listen(StreamEnvironment& env) {
  if (!env.calls->Add()) return;
  auto* stream = new HubStream(env);
  // Comes back once the call is over (finished or cancelled), but only if the call started.
  stream->context_.AsyncNotifyWhenDone(&stream->call_done_);
  env.service->RequestConnect(&stream->context_, &stream->call_, env.cq, env.cq,
                              &stream->accepted_);
}

// On the queue's one thread, which is what makes RetireIfDone's `delete this` safe: no other
// completion of the stream can be running (completion_target.h).
void HubStream::Complete(CompletionTag* tag, bool ok) {
  if (tag == &accepted_) {
    if (!ok) {  // the server is shutting down; the call never started, so no other tag comes
      Delete();
      return;
    }
    Listen(env_);
    OnAccepted();
  } else if (tag == &read_) {
    OnReadDone(ok);
  } else if (tag == &write_) {
    OnWriteDone(ok);
  } else if (tag == &finish_) {
    std::lock_guard lock(mu_);
    finish_done_ = true;
  } else if (tag == &call_done_) {
    OnCallDone();
  }
  RetireIfDone();
}

void HubStream::OnAccepted() {
  {
    std::lock_guard lock(env_.live_mu);
    env_.live.insert(this);
    if (env_.shutting_down) {
      std::lock_guard self(mu_);
      FinishLocked(grpc::Status(grpc::StatusCode::UNAVAILABLE, "the hub is shutting down"));
      return;
    }
  }
  if (!env_.insecure) {
    // PROTOCOL 3/4: the identity is the one nodelink:// URI SAN (gRPC's peer_uri property). The
    // hub requests but does not require a client certificate, so that health checks and
    // reflection work without one; Connect refuses here instead (IMPLEMENTATION-NOTES 2, (b)).
    std::shared_ptr<const grpc::AuthContext> auth = context_.auth_context();
    std::vector<std::string> uris;
    if (auth != nullptr && auth->IsPeerAuthenticated()) {
      for (const grpc::string_ref& v : auth->FindPropertyValues(GRPC_PEER_URI_PROPERTY_NAME)) {
        uris.emplace_back(v.data(), v.size());
      }
    }
    absl::StatusOr<std::string> node = NodeIdFromPeerUris(uris, env_.federation);
    if (!node.ok()) {
      env_.counters->streams_unauthenticated.fetch_add(1, std::memory_order_relaxed);
      spdlog::warn("hub: refused a stream from {}: {}", context_.peer(), node.status().ToString());
      std::lock_guard self(mu_);
      FinishLocked(ToGrpcStatus(node.status()));
      return;
    }
    cert_node_id_ = *std::move(node);
  }
  std::lock_guard self(mu_);
  MaybeStartReadLocked();  // none if the hub's shutdown ended the stream meanwhile
}

void HubStream::Send(v1::HubFrame frame, FrameKind kind, uint64_t queue_id) {
  std::lock_guard lock(mu_);
  if (kind == FrameKind::kAnswer && unanswered_ > 0) {
    --unanswered_;
    if (!unanswered_sizes_.empty()) {
      unanswered_bytes_ -= unanswered_sizes_.front();
      unanswered_sizes_.pop_front();
    }
  }
  if (finish_requested_) return;
  const size_t bytes = frame.ByteSizeLong();
  queue_.push_back(Outgoing{std::move(frame), kind, queue_id, bytes});
  queued_bytes_ += bytes;
  if (!writing_) {
    writing_ = true;
    WriteFrontLocked();
  }
  if (read_side_closed_ && unanswered_ == 0) {
    FinishLocked(grpc::Status::OK);  // after the frame just queued
    return;
  }
  MaybeStartReadLocked();
}

void HubStream::WriteFrontLocked() {
  // More frames queued behind this one: let gRPC buffer it and send them together (the last one
  // of a burst goes without the hint, which flushes).
  grpc::WriteOptions options;
  if (queue_.size() > 1) options.set_buffer_hint();
  call_.Write(queue_.front().frame, options, &write_);
}

void HubStream::End(absl::Status status) {
  std::lock_guard lock(mu_);
  FinishLocked(ToGrpcStatus(status));
}

void HubStream::FinishOnce(grpc::Status status) {
  std::lock_guard lock(mu_);
  FinishLocked(std::move(status));
}

void HubStream::FinishLocked(grpc::Status status) {
  if (finish_requested_) return;
  finish_requested_ = true;
  final_status_ = std::move(status);
  if (!writing_) {
    finished_ = true;
    call_.Finish(final_status_, &finish_);
  }
}

void HubStream::Refuse(grpc::StatusCode code, const std::string& message) {
  if (code == grpc::StatusCode::PERMISSION_DENIED) {
    env_.counters->streams_permission_denied.fetch_add(1, std::memory_order_relaxed);
  } else if (code == grpc::StatusCode::FAILED_PRECONDITION) {
    env_.counters->streams_failed_precondition.fetch_add(1, std::memory_order_relaxed);
  }
  spdlog::warn("hub: ending stream of {}: {}",
               attached_ ? node_id_ : (cert_node_id_.empty() ? "<before Hello>" : cert_node_id_),
               message);
  FinishOnce(grpc::Status(code, message));
}

void HubStream::MaybeStartReadLocked() {
  if (reading_ || finish_requested_) return;
  const StreamLimits& l = env_.limits;
  if (queue_.size() >= l.max_outbound_frames || queued_bytes_ >= l.max_outbound_bytes ||
      unanswered_ >= l.max_unanswered || unanswered_bytes_ >= l.max_unanswered_bytes) {
    if (!read_paused_) {
      read_paused_ = true;
      env_.counters->reads_paused.fetch_add(1, std::memory_order_relaxed);
    }
    return;
  }
  read_paused_ = false;
  reading_ = true;
  call_.Read(&in_, &read_);
}

void HubStream::HandleHello(const v1::Hello& hello) {
  if (hello.protocol_version() != messages::kProtocolVersion) {
    return Refuse(grpc::StatusCode::FAILED_PRECONDITION,
                  "Hello.protocol_version " + std::to_string(hello.protocol_version()) +
                      " is not supported; this hub speaks version 1");
  }
  if (hello.federation() != env_.federation) {
    return Refuse(grpc::StatusCode::PERMISSION_DENIED,
                  "Hello.federation differs from this hub's federation " + env_.federation);
  }
  if (env_.insecure) {
    if (!messages::IsValidName(hello.node_id())) {
      return Refuse(grpc::StatusCode::PERMISSION_DENIED, "Hello.node_id is not a valid node id");
    }
  } else if (hello.node_id() != cert_node_id_) {
    return Refuse(grpc::StatusCode::PERMISSION_DENIED,
                  "Hello.node_id differs from the certificate's node id " + cert_node_id_);
  }
  node_id_ = hello.node_id();
  absl::Status attached = env_.relay->Attach(this, node_id_, hello.max_in_flight());
  if (!attached.ok()) {
    return Refuse(static_cast<grpc::StatusCode>(attached.code()), std::string(attached.message()));
  }
  attached_ = true;
}

void HubStream::OnReadDone(bool ok) {
  // reading_ stays true while this frame is handled, so that Send() (called from the relay during
  // Attach/OnEnvelope) cannot start the next read while in_ is still in use.
  if (!ok) {
    // A half-close, a broken stream, or a frame that did not parse: gRPC cannot tell which
    // (IMPLEMENTATION-NOTES 4.5). The stream ends once every envelope read has been answered (a
    // broken stream is cancelled anyway); the hub serves the others.
    std::lock_guard lock(mu_);
    reading_ = false;
    read_side_closed_ = true;
    if (unanswered_ == 0) FinishLocked(grpc::Status::OK);
    return;
  }
  switch (in_.frame_case()) {
    case v1::ClientFrame::kHello:
      if (attached_) {
        Refuse(grpc::StatusCode::FAILED_PRECONDITION, "second Hello");
        break;
      }
      HandleHello(in_.hello());
      break;
    case v1::ClientFrame::kEnvelope: {
      if (!attached_) {
        Refuse(grpc::StatusCode::FAILED_PRECONDITION, "frame before Hello");
        break;
      }
      {
        std::lock_guard lock(mu_);
        const size_t size = in_.envelope().ByteSizeLong();
        ++unanswered_;
        unanswered_sizes_.push_back(size);
        unanswered_bytes_ += size;
      }
      env_.relay->OnEnvelope(this, node_id_, in_.envelope());
      break;
    }
    case v1::ClientFrame::kDelivered:
      if (!attached_) {
        Refuse(grpc::StatusCode::FAILED_PRECONDITION, "frame before Hello");
        break;
      }
      env_.relay->OnDelivered(this, node_id_, in_.delivered().message_id());
      break;
    case v1::ClientFrame::FRAME_NOT_SET:
      if (!attached_) {
        Refuse(grpc::StatusCode::FAILED_PRECONDITION, "frame before Hello");
        break;
      }
      Refuse(grpc::StatusCode::INVALID_ARGUMENT, "empty ClientFrame");
      break;
  }
  in_.Clear();
  std::lock_guard lock(mu_);
  reading_ = false;  // the stream may have been refused above: then no read starts
  MaybeStartReadLocked();
}

void HubStream::OnWriteDone(bool ok) {
  uint64_t written_notice = 0;
  {
    std::lock_guard lock(mu_);
    Outgoing& done = queue_.front();
    if (ok && done.kind == FrameKind::kNotice) written_notice = done.queue_id;
    queued_bytes_ -= done.bytes;
    queue_.pop_front();
    writing_ = false;
    // Frames queued before Finish was asked for are still written (answers to a half-closed
    // client, the last pushes); Send() queues nothing after it.
    if (ok && !queue_.empty()) {
      writing_ = true;
      WriteFrontLocked();
    } else if (finish_requested_ && !finished_) {
      finished_ = true;
      call_.Finish(final_status_, &finish_);
    }
    MaybeStartReadLocked();
  }
  if (written_notice != 0) env_.relay->OnNoticeWritten(written_notice);
}

void HubStream::OnCallDone() {
  std::lock_guard lock(mu_);
  call_done_seen_ = true;
  // Cancelled (by the client, a broken connection or the server's shutdown): the outstanding
  // operations fail, and the stream still finishes once its write is back.
  if (context_.IsCancelled()) {
    FinishLocked(grpc::Status(grpc::StatusCode::CANCELLED, "stream cancelled"));
  }
}

void HubStream::RetireIfDone() {
  {
    std::lock_guard lock(mu_);
    if (!call_done_seen_ || !finish_done_ || writing_ || reading_) return;
  }
  // The call is over and nothing is outstanding, so no completion of this stream comes again
  // (and only this thread would run one); Send() and End() start nothing once Finish was asked
  // for. Detach takes the relay's lock: no Send() is running or can start once it returns.
  if (attached_) env_.relay->Detach(this, node_id_);
  {
    std::lock_guard lock(env_.live_mu);
    env_.live.erase(this);
  }
  Delete();
}

void HubStream::Delete() {
  CallCount* calls = env_.calls;
  delete this;
  calls->Remove();
}

}  // namespace nodelink::transport

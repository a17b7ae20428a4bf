#pragma once
// MessagesSink: a stand-in MessageService that accepts every CreateMessage, for benchmarks.
//
// qai-projects hands each new project's first message to MessageService through its outbox.
// Without a receiver every row fails and is retried with backoff, and the retries grow into a
// load of their own that a real deployment does not have. The sink answers at once, so the
// relay does what it does in production: one delivery and one UPDATE per created project.
//
//   absl::StatusOr<std::unique_ptr<MessagesSink>> sink = MessagesSink::Start("127.0.0.1:0");
//   int port = (*sink)->port();

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace qai::loadgen {

class MessagesSink {
 public:
  // Start: listens on `listen_addr` (port 0 picks a free one) until the sink is destroyed.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<MessagesSink>> Start(
      const std::string& listen_addr);
  ~MessagesSink();

  int port() const { return port_; }

 private:
  MessagesSink() = default;

  std::unique_ptr<grpc::Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace qai::loadgen

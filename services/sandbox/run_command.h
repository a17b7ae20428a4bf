#pragma once
// StartRunCommand: the RunCommand stream. The command runs on an executor of its own (a
// command may run for minutes, and must not hold a thread that unary calls need); its output
// is written to the stream as it comes, one write at a time, then its end. The whole output
// sent is at most the request's max_output_bytes, so what waits to be written is bounded.
// Cancelling the call (or the client going away) kills the command.

#include "common/executor.h"
#include "common/rpc.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"
#include "services/sandbox/handlers.h"

namespace qai::sandbox {

struct RunCommandEnv {
  const common::RpcEnv* rpc = nullptr;
  SandboxHandlers* handlers = nullptr;
  common::Executor* executor = nullptr;  // where commands run
};

grpc::ServerWriteReactor<v1::RunCommandResponse>* StartRunCommand(grpc::CallbackServerContext* ctx,
                                                                  const v1::RunCommandRequest* req,
                                                                  const RunCommandEnv& env);

}  // namespace qai::sandbox

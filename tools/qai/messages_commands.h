#pragma once
// `qai messages send|list`: a project's conversation from the command line, and the wait for a
// new project's first message that `qai projects create` shows.
//
//   qai messages send --project 3f0c... --content "Add a dark mode"
//   qai messages list --project 3f0c... --all

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/support/status.h"
#include "qai/messages/v1/messages.pb.h"
#include "tools/qai/args.h"
#include "tools/qai/global_options.h"

namespace qai::cli {

// MessageCommands: the declarations and handlers of every `messages` command.
std::vector<CommandSpec> MessageCommands();

// FormatMessage: one "key: value" line per field: id, role, type, author and run_id (when
// known), created, content (its later lines indented by two spaces), and for a fragment its
// title, then indented its sandbox_url and one "file: PATH" line per file, sorted. File
// contents are left to --json: a fragment may hold megabytes of them.
std::string FormatMessage(const qai::messages::v1::Message& message);

// kFirstMessagePoll: how often WaitForFirstMessage asks.
inline constexpr absl::Duration kFirstMessagePoll = absl::Milliseconds(100);

// FirstMessage: what WaitForFirstMessage found.
struct FirstMessage {
  // Set when the message appeared in time.
  std::optional<qai::messages::v1::Message> message;
  // Not OK when a failed call ended the wait.
  grpc::Status status;
};

// WaitForFirstMessage: asks MessageService at options.messages_addr for the oldest message of
// `project_id` (ListMessages, page size 1) at once and then every kFirstMessagePoll, until there
// is one or `wait` has passed. A new project's prompt reaches MessageService through
// ProjectService's outbox, a moment after CreateProject returned; only that lag is waited
// out: a failed call ends the wait. `log` receives the --verbose trace.
[[nodiscard]] FirstMessage WaitForFirstMessage(const GlobalOptions& options, std::ostream& log,
                                               const std::string& project_id, absl::Duration wait);

}  // namespace qai::cli

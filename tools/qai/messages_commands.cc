#include "tools/qai/messages_commands.h"

#include <algorithm>
#include <cstdint>
#include <memory>
#include <ostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/config.h"
#include "common/proto_time.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "tools/qai/channel.h"
#include "tools/qai/output.h"
#include "tools/qai/printable.h"
#include "tools/qai/run_follow.h"
#include "tools/qai/service_client.h"

namespace qai::cli {
namespace {

using qai::messages::v1::CreateMessageRequest;
using qai::messages::v1::Fragment;
using qai::messages::v1::ListMessagesRequest;
using qai::messages::v1::ListMessagesResponse;
using qai::messages::v1::Message;
using qai::messages::v1::MessageService;

// MessagesClient: the state one `messages` command needs to make its calls.
class MessagesClient : public ServiceClient<MessageService> {
 public:
  explicit MessagesClient(const Invocation& inv)
      : ServiceClient(inv, &GlobalOptions::messages_addr, "MessageService") {}
};

int RunSend(const Invocation& inv) {
  MessagesClient client(inv);
  CreateMessageRequest request;
  request.set_project_id(inv.args.Get("project"));
  request.set_content(inv.args.Get("content"));
  request.set_request_id(client.options().request_id);
  // The run's settings; the server checks them against its bounds and names a bad one.
  request.set_max_iterations(static_cast<int32_t>(inv.args.GetInt("max-iterations")));
  request.set_model(inv.args.Get("model"));
  if (!inv.args.Get("run-timeout").empty()) {
    common::SetDuration(inv.args.GetDuration("run-timeout"), request.mutable_run_timeout());
  }
  Message message;
  auto context = client.NewContext("CreateMessage");
  if (grpc::Status status = client.stub().CreateMessage(context.get(), request, &message);
      !status.ok()) {
    inv.err << FormatMutationError(status, request.request_id());
    return kExitRpcError;
  }
  inv.out << (client.options().json ? ToJsonLine(message)
                                    : absl::StrCat(FormatMessage(message),
                                                   "request_id: ", request.request_id(), "\n"));
  if (!inv.args.Switch("watch")) return kExitOk;
  if (!client.options().json) inv.out << "\n";
  return ShowPromptRun(inv, client.options(), request.project_id(), message.id());
}

int RunList(const Invocation& inv) {
  MessagesClient client(inv);
  const bool all = inv.args.Switch("all");
  ListMessagesRequest request;
  request.set_project_id(inv.args.Get("project"));
  request.set_page_size(static_cast<int32_t>(inv.args.GetInt("page-size")));
  request.set_page_token(inv.args.Get("page-token"));
  bool printed = false;  // messages are blocks of lines, kept apart by an empty line
  while (true) {
    ListMessagesResponse response;
    auto context = client.NewContext("ListMessages");
    if (grpc::Status status = client.stub().ListMessages(context.get(), request, &response);
        !status.ok()) {
      return client.Fail(status);
    }
    if (client.options().json) {
      inv.out << ToJsonLine(response);
    } else {
      for (const Message& message : response.messages()) {
        inv.out << (printed ? "\n" : "") << FormatMessage(message);
        printed = true;
      }
      if (!all && !response.next_page_token().empty()) {
        inv.out << (printed ? "\n" : "") << "next page: " << response.next_page_token() << "\n";
      }
    }
    if (!all || response.next_page_token().empty()) return kExitOk;
    // A server that hands back the token it was given would keep --all looping forever.
    if (response.next_page_token() == request.page_token()) {
      inv.err << "error: the server repeated page token " << request.page_token() << "\n";
      return kExitRpcError;
    }
    request.set_page_token(response.next_page_token());
  }
}

// Label: an enum value's name without its prefix ("ROLE_USER" -> "USER"), or its number when
// this build does not know it (a newer server may send values added since).
std::string Label(const std::string& name, std::string_view prefix, int value) {
  if (name.empty()) return absl::StrCat(value);
  return name.starts_with(prefix) ? name.substr(prefix.size()) : name;
}

// Continued: text whose later lines are indented, so that they cannot pass for fields.
// Printable first: the text is a user's or a model's.
std::string Continued(const std::string& text) {
  return absl::StrReplaceAll(Printable(text, /*keep_newlines=*/true), {{"\n", "\n  "}});
}

}  // namespace

std::vector<CommandSpec> MessageCommands() {
  const FlagSpec project{
      .name = "project", .value_name = "ID", .help = "the project's id", .required = true};
  return {
      {.path = {"messages", "send"},
       .flags = {project,
                 {.name = "content", .value_name = "TEXT", .help = "the prompt", .required = true},
                 {.name = "max-iterations",
                  .value_name = "N",
                  .help = "the run's iteration limit (default: the server's, 15)",
                  .validate = IsInt32},
                 {.name = "model",
                  .value_name = "NAME",
                  .help = "the run's model: the server's default or one it allows"},
                 {.name = "run-timeout",
                  .value_name = "DURATION",
                  .help = "the longest the run may take, e.g. 10m (default: the server's, 30m)",
                  .validate = common::IsDuration},
                 {.name = "watch",
                  .help = "then follow the run the prompt starts until it ends (exit 0 if it "
                          "succeeded, 1 if not)"}},
       .summary = "add a prompt to a project's conversation; it starts an agent run (a repeat\n    "
                  "  with the same --request-id returns the first message)",
       .run = RunSend},
      {.path = {"messages", "list"},
       .flags = {project,
                 {.name = "page-size",
                  .value_name = "N",
                  .help = "messages per page",
                  .validate = IsInt32},
                 {.name = "page-token",
                  .value_name = "TOKEN",
                  .help = "continue from a previous `next page`"},
                 {.name = "all", .help = "follow the pages to the end"}},
       .summary = "show a project's conversation, oldest first",
       .run = RunList},
  };
}

std::string FormatMessage(const Message& message) {
  std::string out = absl::StrCat(
      "id: ", message.id(), "\n",
      "role: ", Label(Message::Role_Name(message.role()), "ROLE_", message.role()), "\n",
      "type: ", Label(Message::Type_Name(message.type()), "TYPE_", message.type()), "\n");
  if (!message.author().empty())
    absl::StrAppend(&out, "author: ", Printable(message.author(), false), "\n");
  absl::StrAppend(&out, "created: ", FormatTimestamp(message.create_time()), "\n");
  if (!message.run_id().empty()) absl::StrAppend(&out, "run_id: ", message.run_id(), "\n");
  absl::StrAppend(&out, "content: ", Continued(message.content()), "\n");
  if (message.has_fragment()) {
    const Fragment& fragment = message.fragment();
    absl::StrAppend(&out, "fragment: ", Continued(fragment.title()), "\n",
                    "  sandbox_url: ", Printable(fragment.sandbox_url(), false), "\n");
    std::vector<std::string> paths;
    for (const auto& [path, content] : fragment.files()) paths.push_back(path);
    std::sort(paths.begin(), paths.end());
    for (const std::string& path : paths)
      absl::StrAppend(&out, "  file: ", Printable(path, false), "\n");
  }
  return out;
}

FirstMessage WaitForFirstMessage(const GlobalOptions& options, std::ostream& log,
                                 const std::string& project_id, absl::Duration wait) {
  Connection connection(options, options.messages_addr, log);
  std::unique_ptr<MessageService::Stub> stub = MessageService::NewStub(connection.channel());
  ListMessagesRequest request;
  request.set_project_id(project_id);
  request.set_page_size(1);
  const absl::Time until = absl::Now() + wait;
  while (true) {
    ListMessagesResponse response;
    auto context = connection.NewContext("MessageService.ListMessages");
    // No call outlives the wait.
    context->set_deadline(absl::ToChronoTime(std::min(until, absl::Now() + options.timeout)));
    const grpc::Status status = stub->ListMessages(context.get(), request, &response);
    if (status.ok() && response.messages_size() > 0) return {.message = response.messages(0)};
    const bool out_of_time = absl::Now() >= until;
    if (!status.ok() &&
        !(status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED && out_of_time)) {
      return {.status = status};
    }
    if (out_of_time) return {};
    absl::SleepFor(std::min(kFirstMessagePoll, until - absl::Now()));
    if (absl::Now() >= until) return {};
  }
}

}  // namespace qai::cli

// Whole `qai` command lines against in-process fakes of ProjectService and MessageService.

#include "tools/qai/cli.h"

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/jwt.h"
#include "common/jwt_verifier.h"
#include "common/status_macros.h"
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "tools/qai/messages_commands.h"
#include "tools/qai/output.h"
#include "tools/qai/projects_commands.h"

namespace qai::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;
namespace pb = qai::projects::v1;
namespace pm = qai::messages::v1;

constexpr char kUuidV4[] = "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}";

pb::Project MakeProject(int i) {
  pb::Project p;
  p.set_id(absl::StrCat("id-", i));
  p.set_name(absl::StrCat("slug-", i));
  p.set_owner("user-42");
  p.mutable_update_time()->set_seconds(1769850900 + i);
  p.set_etag("e1");
  return p;
}

// CallRecorder: remembers the last call a fake service saw, and counts them.
class CallRecorder {
 public:
  // Last: the metadata and request of the most recent call.
  std::map<std::string, std::string> last_metadata() {
    std::lock_guard lock(mu_);
    return metadata_;
  }
  template <typename Request>
  Request last_request() {
    std::lock_guard lock(mu_);
    Request request;
    request.ParseFromString(request_);
    return request;
  }
  int calls() {
    std::lock_guard lock(mu_);
    return calls_;
  }

 protected:
  void Record(grpc::ServerContext* context, const google::protobuf::Message& request) {
    std::lock_guard lock(mu_);
    metadata_.clear();
    for (const auto& [key, value] : context->client_metadata()) {
      metadata_[std::string(key.data(), key.size())] = std::string(value.data(), value.size());
    }
    request_ = request.SerializeAsString();
    ++calls_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, std::string> metadata_;
  std::string request_;
  int calls_ = 0;
};

// FakeProjects: answers from fixed data and remembers the last call it saw.
class FakeProjects final : public pb::ProjectService::Service, public CallRecorder {
 public:
  static constexpr int kProjects = 5;

  grpc::Status CreateProject(grpc::ServerContext* context, const pb::CreateProjectRequest* request,
                             pb::Project* response) override {
    Record(context, *request);
    if (absl::StripAsciiWhitespace(request->initial_prompt()).empty()) {
      google::rpc::BadRequest bad_request;
      auto* violation = bad_request.add_field_violations();
      violation->set_field("initial_prompt");
      violation->set_description("must not be blank");
      google::rpc::Status rich;
      rich.set_code(grpc::StatusCode::INVALID_ARGUMENT);
      rich.set_message("initial_prompt must not be blank");
      rich.add_details()->PackFrom(bad_request);
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, rich.message(),
                          rich.SerializeAsString());
    }
    *response = MakeProject(0);
    response->set_display_name(request->display_name());
    return grpc::Status::OK;
  }

  grpc::Status GetProject(grpc::ServerContext* context, const pb::GetProjectRequest* request,
                          pb::Project* response) override {
    Record(context, *request);
    if (request->id() != "id-1") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "project not found");
    }
    *response = MakeProject(1);
    return grpc::Status::OK;
  }

  // Pages are the project indexes from the token on; the token is the next index.
  grpc::Status ListProjects(grpc::ServerContext* context, const pb::ListProjectsRequest* request,
                            pb::ListProjectsResponse* response) override {
    Record(context, *request);
    int start = request->page_token().empty() ? 0 : std::stoi(request->page_token());
    int size = request->page_size() == 0 ? 2 : request->page_size();
    int end = std::min(kProjects, start + size);
    for (int i = start; i < end; ++i) *response->add_projects() = MakeProject(i);
    if (end < kProjects) response->set_next_page_token(std::to_string(end));
    return grpc::Status::OK;
  }

  grpc::Status UpdateProject(grpc::ServerContext* context, const pb::UpdateProjectRequest* request,
                             pb::Project* response) override {
    Record(context, *request);
    *response = MakeProject(1);
    response->set_display_name(request->project().display_name());
    return grpc::Status::OK;
  }

  grpc::Status DeleteProject(grpc::ServerContext* context, const pb::DeleteProjectRequest* request,
                             google::protobuf::Empty* response) override {
    Record(context, *request);
    if (request->id() == "id-down") {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "database unavailable; retry");
    }
    return grpc::Status::OK;
  }
};

pm::Message MakeMessage(int i) {
  pm::Message m;
  m.set_id(absl::StrCat("m-", i));
  m.set_project_id("p-1");
  m.set_content(absl::StrCat("content ", i));
  m.set_type(pm::Message::TYPE_RESULT);
  m.mutable_create_time()->set_seconds(1769850900 + i);
  if (i % 2 == 0) {
    m.set_role(pm::Message::ROLE_USER);
    m.set_author("user-42");
  } else {  // the agent's answer to the prompt before it
    m.set_role(pm::Message::ROLE_ASSISTANT);
    m.set_run_id(absl::StrCat("run-", i - 1));
    pm::Fragment* f = m.mutable_fragment();
    f->set_title(absl::StrCat("Result ", i));
    f->set_sandbox_url(absl::StrCat("http://localhost:8080/p/", i, "/"));
    (*f->mutable_files())["app/page.tsx"] = "FILE CONTENT page";
    (*f->mutable_files())["app/layout.tsx"] = "FILE CONTENT layout";
  }
  return m;
}

// FakeMessages: a conversation of kMessages messages in project p-1, and the first message of
// the project FakeProjects creates (id-0), which appears after a few empty polls.
class FakeMessages final : public pm::MessageService::Service, public CallRecorder {
 public:
  static constexpr int kMessages = 5;
  // The MakeMessage index of what CreateMessage answers: a USER message after the conversation.
  static constexpr int kSent = 2 * kMessages;

  grpc::Status CreateMessage(grpc::ServerContext* context, const pm::CreateMessageRequest* request,
                             pm::Message* response) override {
    Record(context, *request);
    if (request->project_id() == "p-down") {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "projects service unavailable; retry");
    }
    *response = MakeMessage(kSent);
    response->set_project_id(request->project_id());
    response->set_content(request->content());
    return grpc::Status::OK;
  }

  grpc::Status ListMessages(grpc::ServerContext* context, const pm::ListMessagesRequest* request,
                            pm::ListMessagesResponse* response) override {
    Record(context, *request);
    std::lock_guard lock(mu_);
    if (request->project_id() == "id-0") {
      if (!new_project_status_.ok()) return new_project_status_;
      if (first_message_after_ >= 0 && polls_++ >= first_message_after_) {
        pm::Message* m = response->add_messages();
        *m = MakeMessage(0);
        m->set_project_id("id-0");
        m->set_content("a todo app");
      }
      return grpc::Status::OK;
    }
    int start = request->page_token().empty() ? 0 : std::stoi(request->page_token());
    int size = request->page_size() == 0 ? 2 : request->page_size();
    int end = std::min(kMessages, start + size);
    for (int i = start; i < end; ++i) *response->add_messages() = MakeMessage(i);
    if (end < kMessages) response->set_next_page_token(std::to_string(end));
    return grpc::Status::OK;
  }

  // The new project's first message is listed from the (polls + 1)th call on; -1: never.
  void set_first_message_after(int polls) {
    std::lock_guard lock(mu_);
    first_message_after_ = polls;
  }
  // What ListMessages of the new project answers instead, when not OK.
  void set_new_project_status(grpc::Status status) {
    std::lock_guard lock(mu_);
    new_project_status_ = std::move(status);
  }

 private:
  std::mutex mu_;
  int first_message_after_ = 0;
  int polls_ = 0;
  grpc::Status new_project_status_;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    builder.RegisterService(&messages_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    env_["QAI_PROJECTS_ADDR"] = absl::StrCat("127.0.0.1:", port);
    env_["QAI_MESSAGES_ADDR"] = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override { server_->Shutdown(); }

  // Run: runs `qai args...`, capturing stdout and stderr.
  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    auto env = [this](const std::string& name) -> std::optional<std::string> {
      auto it = env_.find(name);
      if (it == env_.end()) return std::nullopt;
      return it->second;
    };
    return RunCli(args, env, out_, err_);
  }

  FakeProjects fake_;
  FakeMessages messages_;
  std::unique_ptr<grpc::Server> server_;
  std::map<std::string, std::string> env_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(CliTest, HelpGoesToStdoutAndSucceeds) {
  EXPECT_EQ(Run({"--help"}), kExitOk);
  EXPECT_THAT(out_.str(), StartsWith("usage: qai COMMAND"));
  EXPECT_EQ(Run({"projects", "--help"}), kExitOk);
  EXPECT_THAT(out_.str(), StartsWith("usage: qai projects COMMAND"));
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(fake_.calls(), 0);
}

TEST_F(CliTest, BadUsageExitsTwoWithUsage) {
  EXPECT_EQ(Run({"projects", "get"}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: missing ID\n\nusage: qai projects get ID"));
  EXPECT_EQ(out_.str(), "");
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: missing command\n\nusage: qai COMMAND"));
  EXPECT_EQ(fake_.calls(), 0);
}

// Verify: the claims of `token` (a line of `qai token`'s output) as a service keyed by `secret`
// reads them.
absl::StatusOr<common::JwtClaims> Verify(std::string token, const std::string& secret,
                                         common::JwtPolicy policy = {}) {
  if (token.ends_with("\n")) token.pop_back();
  QAI_ASSIGN_OR_RETURN(std::vector<common::HmacKey> keys, common::ParseHmacKeys(secret));
  QAI_ASSIGN_OR_RETURN(std::shared_ptr<const common::JwtVerifier> verifier,
                       common::JwtVerifier::Create(keys, std::move(policy)));
  return verifier->Verify(token, absl::Now());
}

constexpr char kDevSecret[] = "dev-secret-of-at-least-32-bytes-0123456789";

TEST_F(CliTest, TokenVerifiesWithTheSameSecret) {
  env_["QAI_JWT_SECRET"] = kDevSecret;
  ASSERT_EQ(Run({"token", "--sub", "user-42", "--admin", "--ttl", "1h"}), kExitOk) << err_.str();
  std::string token = out_.str();
  ASSERT_TRUE(token.ends_with("\n"));
  absl::StatusOr<common::JwtClaims> claims = Verify(token, kDevSecret);
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "user-42");
  EXPECT_THAT(claims->roles, ElementsAre("admin"));
  EXPECT_LE(claims->expires, absl::Now() + absl::Hours(1));
  EXPECT_GT(claims->expires, absl::Now() + absl::Minutes(59));

  ASSERT_EQ(Run({"token", "--sub", "u", "--jwt-secret", std::string(32, 'f'), "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), MatchesRegex("\\{\"token\":\"[^\"]+\"\\}\n"));
}

// While one key replaces another, the services hold both by name; --kid picks the signer.
TEST_F(CliTest, TokenSignsWithTheNamedKey) {
  const std::string old_key(32, 'o'), new_key(32, 'n');
  const std::string both = "2024=" + old_key + ",2025=" + new_key;
  env_["QAI_JWT_SECRET"] = both;
  ASSERT_EQ(Run({"token", "--sub", "u", "--kid", "2025"}), kExitOk) << err_.str();
  EXPECT_TRUE(Verify(out_.str(), both).ok());
  EXPECT_TRUE(Verify(out_.str(), "2025=" + new_key).ok());
  EXPECT_FALSE(Verify(out_.str(), "2024=" + old_key).ok());

  EXPECT_EQ(Run({"token", "--sub", "u"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("QAI_JWT_SECRET holds several keys: name one (kid)"));
  EXPECT_EQ(Run({"token", "--sub", "u", "--kid", "2026"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("QAI_JWT_SECRET has no key of that name (kid)"));
  EXPECT_EQ(Run({"token", "--sub", "u", "--kid", "k", "--jwt-secret", old_key}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("QAI_JWT_SECRET names no key: give it as kid=secret"));
}

TEST_F(CliTest, TokenCarriesIssuerAndAudience) {
  env_["QAI_JWT_SECRET"] = kDevSecret;
  env_["QAI_JWT_ISSUER"] = "https://dev.example";
  ASSERT_EQ(Run({"token", "--sub", "u", "--audience", "qai"}), kExitOk) << err_.str();
  absl::StatusOr<common::JwtClaims> claims =
      Verify(out_.str(), kDevSecret, {.issuer = "https://dev.example", .audiences = {"qai"}});
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->issuer, "https://dev.example");
  EXPECT_THAT(claims->audience, ElementsAre("qai"));
}

TEST_F(CliTest, GetSendsCredentialsAndRequestId) {
  env_["QAI_TOKEN"] = "tok";
  ASSERT_EQ(Run({"projects", "get", "id-1", "--api-key", "key"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), FormatProject(MakeProject(1)));
  EXPECT_EQ(err_.str(), "");
  std::map<std::string, std::string> metadata = fake_.last_metadata();
  EXPECT_EQ(metadata["authorization"], "Bearer tok");
  EXPECT_EQ(metadata["x-api-key"], "key");
  EXPECT_THAT(metadata["x-request-id"], MatchesRegex(kUuidV4));
  EXPECT_EQ(fake_.last_request<pb::GetProjectRequest>().id(), "id-1");
}

TEST_F(CliTest, VerboseReportsTheRequestId) {
  ASSERT_EQ(Run({"--verbose", "--request-id", "rid-1", "projects", "get", "id-1"}), kExitOk);
  EXPECT_THAT(err_.str(), HasSubstr("ProjectService.GetProject"));
  EXPECT_THAT(err_.str(), HasSubstr("x-request-id=rid-1"));
  EXPECT_EQ(fake_.last_metadata()["x-request-id"], "rid-1");
}

TEST_F(CliTest, RpcErrorExitsOne) {
  EXPECT_EQ(Run({"projects", "get", "id-9"}), kExitRpcError);
  EXPECT_EQ(err_.str(), "error: NOT_FOUND: project not found\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTest, CreateShowsFieldViolations) {
  // Only the server knows a blank prompt is invalid; the CLI just requires the flag.
  EXPECT_EQ(Run({"projects", "create", "--prompt", "   "}), kExitRpcError);
  EXPECT_EQ(err_.str(),
            "error: INVALID_ARGUMENT: initial_prompt must not be blank\n"
            "  initial_prompt: must not be blank\n");
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTest, MutationsSendAFreshRequestIdAndShowIt) {
  ASSERT_EQ(Run({"projects", "create", "--prompt", "a todo app", "--display-name", "Todos"}),
            kExitOk)
      << err_.str();
  auto request = fake_.last_request<pb::CreateProjectRequest>();
  EXPECT_EQ(request.initial_prompt(), "a todo app");
  EXPECT_EQ(request.display_name(), "Todos");
  const std::string first = request.request_id();
  EXPECT_THAT(first, MatchesRegex(kUuidV4));
  EXPECT_EQ(fake_.last_metadata()["x-request-id"], first) << "one id traces and deduplicates";
  pb::Project created = MakeProject(0);
  created.set_display_name("Todos");
  EXPECT_THAT(out_.str(),
              StartsWith(absl::StrCat(FormatProject(created), "request_id: ", first, "\n")));

  ASSERT_EQ(Run({"projects", "create", "--prompt", "a todo app"}), kExitOk);
  EXPECT_NE(fake_.last_request<pb::CreateProjectRequest>().request_id(), first)
      << "each invocation is a new mutation";

  ASSERT_EQ(Run({"projects", "rename", "id-1", "New name"}), kExitOk);
  const std::string rename = fake_.last_request<pb::UpdateProjectRequest>().request_id();
  EXPECT_THAT(rename, MatchesRegex(kUuidV4));
  EXPECT_THAT(out_.str(), HasSubstr(absl::StrCat("\nrequest_id: ", rename, "\n")));

  ASSERT_EQ(Run({"projects", "delete", "id-1"}), kExitOk);
  EXPECT_THAT(fake_.last_request<pb::DeleteProjectRequest>().request_id(), MatchesRegex(kUuidV4));
  EXPECT_EQ(out_.str(), "deleted id-1\n");

  ASSERT_EQ(Run({"--json", "projects", "rename", "id-1", "x"}), kExitOk);
  EXPECT_THAT(out_.str(), Not(HasSubstr("request_id"))) << "JSON is the resource alone";
}

TEST_F(CliTest, MutationsPassTheGivenRequestId) {
  const std::string id = "0b5a2c1e-7d7e-4a59-9a7e-3b1f2d3c4e5f";
  ASSERT_EQ(Run({"projects", "create", "--prompt", "p", "--request-id", id}), kExitOk);
  EXPECT_EQ(fake_.last_request<pb::CreateProjectRequest>().request_id(), id);
  EXPECT_EQ(fake_.last_metadata()["x-request-id"], id);
  ASSERT_EQ(Run({"--request-id", id, "projects", "delete", "id-1"}), kExitOk);
  EXPECT_EQ(fake_.last_request<pb::DeleteProjectRequest>().request_id(), id);
  ASSERT_EQ(Run({"messages", "send", "--project", "p-1", "--content", "hi", "--request-id", id}),
            kExitOk);
  EXPECT_EQ(messages_.last_request<pm::CreateMessageRequest>().request_id(), id);
}

TEST_F(CliTest, AMutationThatMayBeRepeatedNamesItsRequestId) {
  EXPECT_EQ(Run({"projects", "delete", "id-down"}), kExitRpcError);
  const std::string id = fake_.last_request<pb::DeleteProjectRequest>().request_id();
  EXPECT_EQ(err_.str(),
            absl::StrCat("error: UNAVAILABLE: database unavailable; retry\n", "request_id: ", id,
                         " (repeat with --request-id ", id, ": it takes effect at most once)\n"));
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTest, ListOnePageShowsTheNextToken) {
  ASSERT_EQ(Run({"projects", "list", "--page-size", "2"}), kExitOk);
  EXPECT_EQ(out_.str(), absl::StrCat(FormatProjectRow(MakeProject(0)),
                                     FormatProjectRow(MakeProject(1)), "next page: 2\n"));
  ASSERT_EQ(Run({"projects", "list", "--page-token", "4"}), kExitOk);
  EXPECT_EQ(out_.str(), FormatProjectRow(MakeProject(4)));
}

TEST_F(CliTest, ListAllFollowsTokens) {
  ASSERT_EQ(Run({"projects", "list", "--all", "--page-size", "2"}), kExitOk);
  std::string expected;
  for (int i = 0; i < FakeProjects::kProjects; ++i) expected += FormatProjectRow(MakeProject(i));
  EXPECT_EQ(out_.str(), expected);
  EXPECT_EQ(fake_.calls(), 3);

  ASSERT_EQ(Run({"projects", "list", "--all", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), MatchesRegex("(\\{\"projects\":[^\n]*\\}\n){3}"));
}

TEST_F(CliTest, RenameSendsMaskAndEtag) {
  ASSERT_EQ(Run({"projects", "rename", "id-1", "New name", "--etag", "e1"}), kExitOk);
  auto request = fake_.last_request<pb::UpdateProjectRequest>();
  EXPECT_EQ(request.project().id(), "id-1");
  EXPECT_EQ(request.project().display_name(), "New name");
  EXPECT_EQ(request.project().etag(), "e1");
  EXPECT_THAT(request.update_mask().paths(), ElementsAre("display_name"));
  EXPECT_THAT(out_.str(), HasSubstr("display_name: New name\n"));
}

TEST_F(CliTest, Delete) {
  ASSERT_EQ(Run({"projects", "delete", "id-1", "--etag", "e1"}), kExitOk);
  EXPECT_EQ(out_.str(), "deleted id-1\n");
  auto request = fake_.last_request<pb::DeleteProjectRequest>();
  EXPECT_EQ(request.id(), "id-1");
  EXPECT_EQ(request.etag(), "e1");
  ASSERT_EQ(Run({"--json", "projects", "delete", "id-1"}), kExitOk);
  EXPECT_EQ(out_.str(), "{}\n");
}

TEST_F(CliTest, UnreachableServerIsUnavailable) {
  EXPECT_EQ(Run({"projects", "get", "id-1", "--projects-addr", "127.0.0.1:1", "--timeout", "5s"}),
            kExitRpcError);
  EXPECT_THAT(err_.str(), StartsWith("error: UNAVAILABLE"));
}

// --- projects create shows the first message ------------------------------------------------

// FirstMessageOfNewProject: what FakeMessages lists for the project FakeProjects creates.
pm::Message FirstMessageOfNewProject() {
  pm::Message m = MakeMessage(0);
  m.set_project_id("id-0");
  m.set_content("a todo app");
  return m;
}

TEST_F(CliTest, CreateShowsTheFirstMessageOnceItAppears) {
  messages_.set_first_message_after(2);
  ASSERT_EQ(Run({"projects", "create", "--prompt", "a todo app"}), kExitOk) << err_.str();
  const std::string id = fake_.last_request<pb::CreateProjectRequest>().request_id();
  EXPECT_EQ(out_.str(), absl::StrCat(FormatProject(MakeProject(0)), "request_id: ", id, "\n",
                                     "\nfirst message:\n"
                                     "  id: m-0\n"
                                     "  role: USER\n"
                                     "  type: RESULT\n"
                                     "  author: user-42\n"
                                     "  created: 2026-01-31T09:15:00Z\n"
                                     "  content: a todo app\n"));
  EXPECT_EQ(err_.str(), "");
  EXPECT_EQ(messages_.calls(), 3) << "two empty answers, then the message";
  auto list = messages_.last_request<pm::ListMessagesRequest>();
  EXPECT_EQ(list.project_id(), "id-0");
  EXPECT_EQ(list.page_size(), 1);
  EXPECT_EQ(messages_.last_metadata()["x-request-id"], id);
}

TEST_F(CliTest, CreateJsonIsTheProjectThenTheMessage) {
  ASSERT_EQ(Run({"--json", "projects", "create", "--prompt", "a todo app"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            absl::StrCat(ToJsonLine(MakeProject(0)), ToJsonLine(FirstMessageOfNewProject())));
}

TEST_F(CliTest, CreateWithWaitZeroDoesNotAsk) {
  ASSERT_EQ(Run({"projects", "create", "--prompt", "p", "--wait", "0"}), kExitOk);
  EXPECT_EQ(messages_.calls(), 0);
  EXPECT_THAT(out_.str(), Not(HasSubstr("first message")));
  EXPECT_EQ(err_.str(), "");
}

TEST_F(CliTest, CreateSaysWhenTheFirstMessageIsLate) {
  messages_.set_first_message_after(-1);
  const absl::Time start = absl::Now();
  ASSERT_EQ(Run({"projects", "create", "--prompt", "p", "--wait", "350ms"}), kExitOk)
      << "the project was created";
  const absl::Duration took = absl::Now() - start;
  EXPECT_EQ(err_.str(),
            "warning: the project's first message has not appeared within 350ms; "
            "see `qai messages list --project id-0`\n");
  EXPECT_THAT(out_.str(), StartsWith(FormatProject(MakeProject(0))));
  EXPECT_THAT(out_.str(), Not(HasSubstr("first message")));
  // Asked at once and every 100 ms after: 4 calls in 350 ms, fewer when calls are slow.
  EXPECT_GE(messages_.calls(), 2);
  EXPECT_LE(messages_.calls(), 4);
  EXPECT_GE(took, absl::Milliseconds(350));
  EXPECT_LT(took, absl::Seconds(3));
}

TEST_F(CliTest, CreateWarnsWhenTheFirstMessageCannotBeRead) {
  messages_.set_new_project_status(grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "not yours"));
  ASSERT_EQ(Run({"projects", "create", "--prompt", "p"}), kExitOk);
  EXPECT_EQ(err_.str(),
            "warning: cannot show the project's first message: PERMISSION_DENIED: not yours\n");
  EXPECT_EQ(messages_.calls(), 1) << "only an empty list is waited out";
}

TEST_F(CliTest, MessagesAddrFlagBeatsTheEnvironment) {
  const std::string good = env_["QAI_MESSAGES_ADDR"];
  env_["QAI_MESSAGES_ADDR"] = "127.0.0.1:1";
  ASSERT_EQ(Run({"messages", "list", "--project", "p-1", "--messages-addr", good}), kExitOk)
      << err_.str();
  EXPECT_EQ(messages_.calls(), 1);
  EXPECT_EQ(Run({"messages", "list", "--project", "p-1", "--timeout", "5s"}), kExitRpcError);
  EXPECT_THAT(err_.str(), StartsWith("error: UNAVAILABLE"));
}

// --- messages send / list ----------------------------------------------------------------------

TEST_F(CliTest, MessagesSendPrintsTheMessageAndItsRequestId) {
  env_["QAI_TOKEN"] = "tok";
  ASSERT_EQ(Run({"messages", "send", "--project", "p-1", "--content", "Add a dark mode"}), kExitOk)
      << err_.str();
  auto request = messages_.last_request<pm::CreateMessageRequest>();
  EXPECT_EQ(request.project_id(), "p-1");
  EXPECT_EQ(request.content(), "Add a dark mode");
  EXPECT_THAT(request.request_id(), MatchesRegex(kUuidV4));
  std::map<std::string, std::string> metadata = messages_.last_metadata();
  EXPECT_EQ(metadata["x-request-id"], request.request_id());
  EXPECT_EQ(metadata["authorization"], "Bearer tok");
  EXPECT_EQ(fake_.calls(), 0);

  pm::Message sent = MakeMessage(FakeMessages::kSent);
  sent.set_content("Add a dark mode");
  EXPECT_EQ(out_.str(),
            absl::StrCat(FormatMessage(sent), "request_id: ", request.request_id(), "\n"));
  EXPECT_EQ(err_.str(), "");

  ASSERT_EQ(Run({"messages", "send", "--project", "p-1", "--content", "Add a dark mode", "--json"}),
            kExitOk);
  EXPECT_EQ(out_.str(), ToJsonLine(sent));
}

TEST_F(CliTest, MessagesSendPassesTheRunSettings) {
  ASSERT_EQ(Run({"messages", "send", "--project", "p-1", "--content", "hi", "--max-iterations", "7",
                 "--model", "gpt-4o", "--run-timeout", "90s"}),
            kExitOk)
      << err_.str();
  auto request = messages_.last_request<pm::CreateMessageRequest>();
  EXPECT_EQ(request.max_iterations(), 7);
  EXPECT_EQ(request.model(), "gpt-4o");
  EXPECT_EQ(request.run_timeout().seconds(), 90);
  // Without them the server's defaults apply: nothing is sent.
  ASSERT_EQ(Run({"messages", "send", "--project", "p-1", "--content", "hi"}), kExitOk);
  request = messages_.last_request<pm::CreateMessageRequest>();
  EXPECT_EQ(request.max_iterations(), 0);
  EXPECT_EQ(request.model(), "");
  EXPECT_FALSE(request.has_run_timeout());
  EXPECT_EQ(
      Run({"messages", "send", "--project", "p-1", "--content", "hi", "--run-timeout", "soon"}),
      kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: --run-timeout: "));
}

TEST_F(CliTest, MessagesSendArgumentErrors) {
  EXPECT_EQ(Run({"messages", "send", "--content", "hi"}), kExitUsage);
  EXPECT_THAT(
      err_.str(),
      StartsWith(
          "error: missing --project\n\nusage: qai messages send --project ID --content TEXT"));
  EXPECT_EQ(Run({"messages", "send", "--project", "p-1"}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: missing --content\n"));
  EXPECT_EQ(Run({"messages", "send", "p-1", "hi"}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: unexpected argument \"p-1\"\n"));
  EXPECT_EQ(Run({"messages"}), kExitUsage);
  EXPECT_THAT(
      err_.str(),
      StartsWith("error: \"qai messages\" needs a subcommand\n\nusage: qai messages COMMAND"));
  EXPECT_EQ(messages_.calls(), 0);
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTest, MessagesSendFailureThatMayBeRepeated) {
  EXPECT_EQ(Run({"messages", "send", "--project", "p-down", "--content", "hi"}), kExitRpcError);
  const std::string id = messages_.last_request<pm::CreateMessageRequest>().request_id();
  EXPECT_EQ(err_.str(), absl::StrCat("error: UNAVAILABLE: projects service unavailable; retry\n",
                                     "request_id: ", id, " (repeat with --request-id ", id,
                                     ": it takes effect at most once)\n"));
  EXPECT_EQ(out_.str(), "");
}

TEST_F(CliTest, MessagesListOnePageShowsTheNextToken) {
  ASSERT_EQ(Run({"messages", "list", "--project", "p-1", "--page-size", "2"}), kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(), absl::StrCat(FormatMessage(MakeMessage(0)), "\n",
                                     FormatMessage(MakeMessage(1)), "\nnext page: 2\n"));
  auto request = messages_.last_request<pm::ListMessagesRequest>();
  EXPECT_EQ(request.project_id(), "p-1");
  EXPECT_EQ(request.page_size(), 2);
  EXPECT_THAT(out_.str(), HasSubstr("  file: app/layout.tsx\n  file: app/page.tsx\n"));
  EXPECT_THAT(out_.str(), Not(HasSubstr("FILE CONTENT"))) << "file contents only with --json";

  ASSERT_EQ(Run({"messages", "list", "--project", "p-1", "--page-token", "4"}), kExitOk);
  EXPECT_EQ(out_.str(), FormatMessage(MakeMessage(4)));
  EXPECT_EQ(messages_.last_request<pm::ListMessagesRequest>().page_token(), "4");
}

TEST_F(CliTest, MessagesListAllFollowsTokens) {
  ASSERT_EQ(Run({"messages", "list", "--project", "p-1", "--all", "--page-size", "2"}), kExitOk);
  std::string expected;
  for (int i = 0; i < FakeMessages::kMessages; ++i) {
    absl::StrAppend(&expected, i == 0 ? "" : "\n", FormatMessage(MakeMessage(i)));
  }
  EXPECT_EQ(out_.str(), expected);
  EXPECT_EQ(messages_.calls(), 3);

  ASSERT_EQ(Run({"messages", "list", "--project", "p-1", "--all", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), MatchesRegex("(\\{\"messages\":[^\n]*\\}\n){3}"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("files":{)"));
  EXPECT_THAT(out_.str(), HasSubstr(R"("app/page.tsx":"FILE CONTENT page")"));
}

TEST_F(CliTest, MessagesListArgumentErrors) {
  EXPECT_EQ(Run({"messages", "list"}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: missing --project\n"));
  EXPECT_EQ(Run({"messages", "list", "--project", "p-1", "--page-size", "many"}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: --page-size: must be an integer\n"));
  EXPECT_EQ(Run({"messages", "list", "--project", "p-1", "--all=yes"}), kExitUsage);
  EXPECT_THAT(err_.str(), StartsWith("error: --all takes no value\n"));
  EXPECT_EQ(messages_.calls(), 0);
}

}  // namespace
}  // namespace qai::cli

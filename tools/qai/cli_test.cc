// Whole `qai` command lines against an in-process fake ProjectService.

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
#include "gmock/gmock.h"
#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "tools/qai/projects_commands.h"

namespace qai::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::Not;
using ::testing::StartsWith;
namespace pb = qai::projects::v1;

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

// FakeProjects: answers from fixed data and remembers the last call it saw.
class FakeProjects final : public pb::ProjectService::Service {
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

 private:
  void Record(grpc::ServerContext* context, const google::protobuf::Message& request) {
    std::lock_guard lock(mu_);
    metadata_.clear();
    for (const auto& [key, value] : context->client_metadata()) {
      metadata_[std::string(key.data(), key.size())] = std::string(value.data(), value.size());
    }
    request_ = request.SerializeAsString();
    ++calls_;
  }

  std::mutex mu_;
  std::map<std::string, std::string> metadata_;
  std::string request_;
  int calls_ = 0;
};

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    env_["QAI_PROJECTS_ADDR"] = absl::StrCat("127.0.0.1:", port);
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

TEST_F(CliTest, TokenVerifiesWithTheSameSecret) {
  env_["QAI_JWT_SECRET"] = "dev-secret";
  ASSERT_EQ(Run({"token", "--sub", "user-42", "--admin", "--ttl", "1h"}), kExitOk) << err_.str();
  std::string token = out_.str();
  ASSERT_TRUE(token.ends_with("\n"));
  token.pop_back();
  absl::StatusOr<common::JwtClaims> claims =
      common::VerifyJwt(token, "dev-secret", absl::Now());
  ASSERT_TRUE(claims.ok()) << claims.status();
  EXPECT_EQ(claims->subject, "user-42");
  EXPECT_THAT(claims->roles, ElementsAre("admin"));
  EXPECT_LE(claims->expires, absl::Now() + absl::Hours(1));
  EXPECT_GT(claims->expires, absl::Now() + absl::Minutes(59));

  ASSERT_EQ(Run({"token", "--sub", "u", "--jwt-secret", "flag-secret", "--json"}), kExitOk);
  EXPECT_THAT(out_.str(), MatchesRegex("\\{\"token\":\"[^\"]+\"\\}\n"));
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
            kExitOk) << err_.str();
  auto request = fake_.last_request<pb::CreateProjectRequest>();
  EXPECT_EQ(request.initial_prompt(), "a todo app");
  EXPECT_EQ(request.display_name(), "Todos");
  const std::string first = request.request_id();
  EXPECT_THAT(first, MatchesRegex(kUuidV4));
  EXPECT_EQ(fake_.last_metadata()["x-request-id"], first) << "one id traces and deduplicates";
  pb::Project created = MakeProject(0);
  created.set_display_name("Todos");
  EXPECT_THAT(out_.str(), StartsWith(absl::StrCat(FormatProject(created), "request_id: ", first, "\n")));

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
}

TEST_F(CliTest, AMutationThatMayBeRepeatedNamesItsRequestId) {
  EXPECT_EQ(Run({"projects", "delete", "id-down"}), kExitRpcError);
  const std::string id = fake_.last_request<pb::DeleteProjectRequest>().request_id();
  EXPECT_EQ(err_.str(), absl::StrCat("error: UNAVAILABLE: database unavailable; retry\n", "request_id: ", id,
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

}  // namespace
}  // namespace qai::cli

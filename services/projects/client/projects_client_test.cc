#include "services/projects/client/projects_client.h"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>

#include "absl/strings/str_cat.h"

namespace qai::projects {
namespace {

namespace ppb = qai::projects::v1;

constexpr char kAlices[] = "6f1c1c3e-8a52-4d8e-9a36-2b1b2c0e7d11";
constexpr char kUnknown[] = "0b7e1d2c-3f4a-4b5c-8d6e-7f8091a2b3c4";

// FakeProjects: GetProject as ProjectService answers it, counted: alice owns kAlices; a bearer
// token "Bearer <sub>" is that user, "Bearer admin" sees every project.
class FakeProjects final : public ppb::ProjectService::Service {
 public:
  grpc::Status GetProject(grpc::ServerContext* ctx, const ppb::GetProjectRequest* request,
                          ppb::Project* response) override {
    calls.fetch_add(1);
    auto auth = ctx->client_metadata().find("authorization");
    const std::string bearer = auth == ctx->client_metadata().end()
                                   ? ""
                                   : std::string(auth->second.data(), auth->second.size());
    auto it = owners.find(request->id());
    if (it == owners.end() || (bearer != "Bearer " + it->second && bearer != "Bearer admin"))
      return {grpc::StatusCode::NOT_FOUND, "project not found"};
    response->set_id(it->first);
    response->set_owner(it->second);
    return grpc::Status::OK;
  }
  std::map<std::string, std::string> owners = {{kAlices, "alice"}};
  std::atomic<int> calls{0};
};

class ProjectsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ =
        grpc::CreateChannel(absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials());
  }
  void TearDown() override { server_->Shutdown(); }

  static common::CallContext As(const std::string& sub, common::Role role = common::Role::kUser) {
    return {.principal = {.id = sub, .role = role},
            .request_id = "r-1",
            .authorization = absl::StrCat("Bearer ", sub)};
  }

  FakeProjects fake_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_F(ProjectsClientTest, AnOwnersSecondQuestionIsAnsweredWithoutACall) {
  ProjectsClient projects(channel_, "key", {.ttl = absl::Seconds(60)});
  EXPECT_EQ(projects.ProjectOwner(As("alice"), kAlices).value(), "alice");
  EXPECT_EQ(projects.ProjectOwner(As("alice"), kAlices).value(), "alice");
  EXPECT_EQ(fake_.calls.load(), 1);
}

// Another user's question is ProjectService's to answer, every time, even while the cache knows
// the owner; and so is an admin's.
TEST_F(ProjectsClientTest, OnlyTheOwnersQuestionIsAnsweredFromTheCache) {
  ProjectsClient projects(channel_, "key", {.ttl = absl::Seconds(60)});
  ASSERT_TRUE(projects.ProjectOwner(As("alice"), kAlices).ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(projects.ProjectOwner(As("mallory"), kAlices).status().code(),
              absl::StatusCode::kNotFound);
  }
  EXPECT_EQ(fake_.calls.load(), 3);
  for (int i = 0; i < 2; ++i)
    EXPECT_EQ(projects.ProjectOwner(As("admin", common::Role::kAdmin), kAlices).value(), "alice");
  EXPECT_EQ(fake_.calls.load(), 5);
}

// A NOT_FOUND is never kept: the project may be created a moment later.
TEST_F(ProjectsClientTest, NotFoundIsAskedAgainEveryTime) {
  ProjectsClient projects(channel_, "key", {.ttl = absl::Seconds(60)});
  EXPECT_EQ(projects.ProjectOwner(As("alice"), kUnknown).status().code(),
            absl::StatusCode::kNotFound);
  fake_.owners[kUnknown] = "alice";  // created now
  EXPECT_EQ(projects.ProjectOwner(As("alice"), kUnknown).value(), "alice");
  EXPECT_EQ(fake_.calls.load(), 2);
}

TEST_F(ProjectsClientTest, AForgottenProjectIsAskedAgain) {
  ProjectsClient projects(channel_, "key", {.ttl = absl::Seconds(60)});
  ASSERT_TRUE(projects.ProjectOwner(As("alice"), kAlices).ok());
  fake_.owners.erase(kAlices);  // deleted
  projects.ForgetProject(kAlices);
  EXPECT_EQ(projects.ProjectOwner(As("alice"), kAlices).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(fake_.calls.load(), 2);
}

TEST_F(ProjectsClientTest, AZeroTtlAsksEveryTime) {
  ProjectsClient projects(channel_, "key", {.ttl = absl::ZeroDuration()});
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(projects.ProjectOwner(As("alice"), kAlices).ok());
  EXPECT_EQ(fake_.calls.load(), 3);
}

}  // namespace
}  // namespace qai::projects

// Whole `qai versions ...` command lines against an in-process fake AgentOrchestrator.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "tools/qai/args.h"
#include "tools/qai/cli.h"

namespace qai::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;
namespace opb = qai::orchestrator::v1;
namespace ppb = qai::projects::v1;

constexpr int64_t kT0 = 1769850900;  // 2026-01-31T09:15:00Z

opb::Version MakeVersion(int number, int restored_from) {
  opb::Version v;
  v.set_project_id("p-1");
  v.set_number(number);
  v.set_run_id(absl::StrCat("run-", number));
  v.set_message_id(absl::StrCat("m-", number));
  v.set_sandbox_url(absl::StrCat("http://localhost:8080/snap-", number, "/"));
  v.set_title(number == 1 ? "Bakery" : "Bakery\x1b[2J with a counter");
  v.set_author("alice");
  v.mutable_create_time()->set_seconds(kT0 + number);
  v.set_restored_from(restored_from);
  return v;
}

// FakeVersions: project p-1 has versions 1, 2 and 3 (3 restores 1).
class FakeVersions final : public opb::AgentOrchestrator::Service {
 public:
  grpc::Status ListVersions(grpc::ServerContext*, const opb::ListVersionsRequest* request,
                            opb::ListVersionsResponse* response) override {
    if (request->project_id() != "p-1") return grpc::Status(grpc::StatusCode::NOT_FOUND, "no");
    for (int n = 3; n >= 1; --n) *response->add_versions() = MakeVersion(n, n == 3 ? 1 : 0);
    return grpc::Status::OK;
  }
  grpc::Status GetVersion(grpc::ServerContext*, const opb::GetVersionRequest* request,
                          opb::Version* response) override {
    std::lock_guard lock(mu_);
    last_view_ = request->view();
    if (request->number() < 1 || request->number() > 3)
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "project p-1 has no version");
    *response = MakeVersion(request->number(), 0);
    opb::VersionFile* f = response->add_files();
    f->set_path("index.html");
    f->set_size(11);
    f->set_sha256("ab12");
    if (request->view() == opb::GetVersionRequest::VIEW_FULL) f->set_content("<h1>Hi</h1>");
    return grpc::Status::OK;
  }
  grpc::Status RestoreVersion(grpc::ServerContext*, const opb::RestoreVersionRequest* request,
                              opb::Run* response) override {
    std::lock_guard lock(mu_);
    last_restore_ = *request;
    response->set_id("run-restore");
    response->set_project_id(request->project_id());
    response->set_state(opb::Run::STATE_QUEUED);
    response->set_restore_version(request->number());
    response->mutable_create_time()->set_seconds(kT0);
    return grpc::Status::OK;
  }

  grpc::Status DiffVersions(grpc::ServerContext*, const opb::DiffVersionsRequest* request,
                            opb::DiffVersionsResponse* response) override {
    std::lock_guard lock(mu_);
    last_diff_ = *request;
    opb::FileDiff* page = response->add_files();
    page->set_path("index.html");
    page->set_change(opb::FileDiff::CHANGE_MODIFIED);
    page->set_old_size(10);
    page->set_new_size(12);
    page->set_unified_diff("@@ -1,1 +1,1 @@\n-<h1>A</h1>\n+<h1>AB</h1>\n");
    opb::FileDiff* logo = response->add_files();
    logo->set_path("logo.png");
    logo->set_change(opb::FileDiff::CHANGE_ADDED);
    logo->set_new_size(300);
    logo->set_binary(true);
    response->set_workspace_not_open(stood_in_);
    return grpc::Status::OK;
  }

  // DownloadVersion: version 2's archive in two pieces; 3 names a file outside the directory;
  // 4 breaks off after its first piece.
  grpc::Status DownloadVersion(grpc::ServerContext*, const opb::DownloadVersionRequest* request,
                               grpc::ServerWriter<opb::DownloadVersionResponse>* writer) override {
    {
      std::lock_guard lock(mu_);
      last_download_ = *request;
    }
    if (request->number() < 2 || request->number() > 4)
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "project p-1 has no version");
    opb::DownloadVersionResponse first;
    first.set_file_name(request->number() == 3 ? "../evil.zip" : "bakery-v2.zip");
    first.set_content_type("application/zip");
    first.set_data("PK-one-");
    writer->Write(first);
    if (request->number() == 4) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone");
    opb::DownloadVersionResponse second;
    second.set_data("two");
    writer->Write(second);
    return grpc::Status::OK;
  }

  std::mutex mu_;
  opb::DownloadVersionRequest last_download_;
  opb::DiffVersionsRequest last_diff_;
  bool stood_in_ = false;
  opb::GetVersionRequest::View last_view_ = opb::GetVersionRequest::VIEW_UNSPECIFIED;
  opb::RestoreVersionRequest last_restore_;
};

// FakeForks: ForkProject makes project p-fork.
class FakeForks final : public ppb::ProjectService::Service {
 public:
  grpc::Status ForkProject(grpc::ServerContext*, const ppb::ForkProjectRequest* request,
                           ppb::Project* response) override {
    std::lock_guard lock(mu_);
    last_ = *request;
    response->set_id("p-fork");
    response->set_display_name("Bakery (fork)");
    response->set_owner("alice");
    response->mutable_create_time()->set_seconds(kT0);
    response->mutable_update_time()->set_seconds(kT0);
    return grpc::Status::OK;
  }
  std::mutex mu_;
  ppb::ForkProjectRequest last_;
};

class VersionsCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&fake_);
    builder.RegisterService(&forks_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = absl::StrCat("127.0.0.1:", port);
  }
  void TearDown() override { server_->Shutdown(); }

  int Run(std::vector<std::string> args) {
    out_.str("");
    err_.str("");
    auto env = [this](const std::string& name) -> std::optional<std::string> {
      if (name == "QAI_ORCHESTRATOR_ADDR" || name == "QAI_PROJECTS_ADDR") return address_;
      return std::nullopt;
    };
    return RunCli(args, env, out_, err_);
  }

  FakeVersions fake_;
  FakeForks forks_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  std::ostringstream out_, err_;
};

TEST_F(VersionsCliTest, ListShowsNewestFirstAndWhatARestoreBroughtBack) {
  ASSERT_EQ(Run({"versions", "list", "--project", "p-1"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "3  2026-01-31T09:15:03Z  alice  Bakery?[2J with a counter (restored from 1)  "
            "http://localhost:8080/snap-3/\n"
            "2  2026-01-31T09:15:02Z  alice  Bakery?[2J with a counter  "
            "http://localhost:8080/snap-2/\n"
            "1  2026-01-31T09:15:01Z  alice  Bakery  http://localhost:8080/snap-1/\n");
  EXPECT_EQ(Run({"versions", "list", "--project", "p-2"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("NOT_FOUND"));
}

TEST_F(VersionsCliTest, GetShowsTheVersionItsFilesOrOneFilesContent) {
  ASSERT_EQ(Run({"versions", "get", "--project", "p-1", "1", "--files"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(),
            "number: 1\nproject_id: p-1\ntitle: Bakery\nauthor: alice\n"
            "created: 2026-01-31T09:15:01Z\nrun_id: run-1\nmessage_id: m-1\n"
            "sandbox_url: http://localhost:8080/snap-1/\nfiles: 1\n  11  ab12  index.html\n");
  EXPECT_EQ(fake_.last_view_, opb::GetVersionRequest::VIEW_BASIC);
  ASSERT_EQ(Run({"versions", "get", "--project", "p-1", "1", "--cat", "index.html"}), kExitOk);
  EXPECT_EQ(out_.str(), "<h1>Hi</h1>");
  EXPECT_EQ(fake_.last_view_, opb::GetVersionRequest::VIEW_FULL);
  EXPECT_EQ(Run({"versions", "get", "--project", "p-1", "1", "--cat", "nope.js"}), kExitRpcError);
  EXPECT_EQ(Run({"versions", "get", "--project", "p-1", "0"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("NUMBER must be a version number"));
  EXPECT_EQ(Run({"versions", "get", "--project", "p-1", "7"}), kExitRpcError);
}

TEST_F(VersionsCliTest, DiffShowsEachChangedFileAndItsUnifiedDiff) {
  ASSERT_EQ(Run({"versions", "diff", "--project", "p-1", "--from", "1", "--to", "2"}), kExitOk)
      << err_.str();
  EXPECT_EQ(out_.str(),
            "MODIFIED index.html (10 -> 12 bytes)\n--- a/index.html\n+++ b/index.html\n"
            "@@ -1,1 +1,1 @@\n-<h1>A</h1>\n+<h1>AB</h1>\n"
            "ADDED logo.png (0 -> 300 bytes), binary\n");
  EXPECT_EQ(fake_.last_diff_.to().number(), 2);
  ASSERT_EQ(Run({"versions", "diff", "--project", "p-1", "--from", "1", "--to-draft", "run-9"}),
            kExitOk);
  EXPECT_EQ(fake_.last_diff_.to().draft_of_run(), "run-9");
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

TEST_F(VersionsCliTest, DownloadSavesTheArchiveUnderItsNameOnlyWhenItArrivedWhole) {
  const std::filesystem::path dir =
      std::filesystem::path(::testing::TempDir()) / absl::StrCat("qai-download-", getpid());
  std::filesystem::create_directories(dir);
  const std::filesystem::path here = std::filesystem::current_path();
  std::filesystem::current_path(dir);
  EXPECT_EQ(Run({"versions", "download", "--project", "p-1", "2"}), kExitOk) << err_.str();
  EXPECT_EQ(out_.str(), "saved bakery-v2.zip (10 bytes)\n");
  EXPECT_EQ(ReadFile(dir / "bakery-v2.zip"), "PK-one-two");
  EXPECT_EQ(fake_.last_download_.format(), opb::DownloadVersionRequest::FORMAT_ZIP);

  const std::string out = (dir / "v2.tgz").string();
  ASSERT_EQ(
      Run({"versions", "download", "--project", "p-1", "2", "--format", "tar.gz", "--output", out}),
      kExitOk);
  EXPECT_EQ(fake_.last_download_.format(), opb::DownloadVersionRequest::FORMAT_TAR_GZ);
  EXPECT_EQ(ReadFile(out), "PK-one-two");

  EXPECT_EQ(Run({"versions", "download", "--project", "p-1", "3"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("give --output"));
  EXPECT_FALSE(std::filesystem::exists(dir.parent_path() / "evil.zip"));
  EXPECT_EQ(Run({"versions", "download", "--project", "p-1", "4", "--output", "cut.zip"}),
            kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("UNAVAILABLE"));
  EXPECT_FALSE(std::filesystem::exists(dir / "cut.zip")) << "a cut download leaves no file";
  EXPECT_FALSE(std::filesystem::exists(dir / "cut.zip.part"));
  EXPECT_EQ(Run({"versions", "download", "--project", "p-1", "2", "--format", "rar"}), kExitUsage);
  EXPECT_EQ(Run({"versions", "download", "--project", "p-1", "9"}), kExitRpcError);
  EXPECT_THAT(err_.str(), HasSubstr("NOT_FOUND"));
  std::filesystem::current_path(here);
  std::filesystem::remove_all(dir);
}

// --from and --to take `workspace` for the project's workspace now; the answer says when the
// latest version stood for it.
TEST_F(VersionsCliTest, DiffTakesTheWorkspaceOnEitherSide) {
  ASSERT_EQ(Run({"versions", "diff", "--project", "p-1", "--from", "3", "--to", "workspace"}),
            kExitOk)
      << err_.str();
  EXPECT_EQ(fake_.last_diff_.from().number(), 3);
  EXPECT_TRUE(fake_.last_diff_.to().workspace());
  ASSERT_EQ(Run({"versions", "diff", "--project", "p-1", "--from", "workspace", "--to", "3"}),
            kExitOk);
  EXPECT_TRUE(fake_.last_diff_.from().workspace());
  EXPECT_EQ(fake_.last_diff_.to().number(), 3);
  fake_.stood_in_ = true;
  ASSERT_EQ(Run({"versions", "diff", "--project", "p-1", "--from", "workspace", "--to", "3"}),
            kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("the latest version stood for it"));
  EXPECT_EQ(Run({"versions", "diff", "--project", "p-1", "--from", "works", "--to", "3"}),
            kExitUsage);
}

TEST_F(VersionsCliTest, ForkSendsTheVersionAndShowsTheNewProject) {
  ASSERT_EQ(Run({"projects", "fork", "p-1", "--version", "2"}), kExitOk) << err_.str();
  EXPECT_EQ(forks_.last_.project_id(), "p-1");
  EXPECT_EQ(forks_.last_.version(), 2);
  EXPECT_FALSE(forks_.last_.request_id().empty());
  EXPECT_THAT(out_.str(), HasSubstr("p-fork"));
  EXPECT_THAT(out_.str(), HasSubstr("request_id: " + forks_.last_.request_id() + "\n"));
  EXPECT_EQ(Run({"projects", "fork", "p-1"}), kExitUsage) << "--version is required";
}

TEST_F(VersionsCliTest, RestoreSendsTheNumberAndARequestIdAndShowsTheRun) {
  ASSERT_EQ(Run({"versions", "restore", "--project", "p-1", "2"}), kExitOk) << err_.str();
  EXPECT_EQ(fake_.last_restore_.number(), 2);
  EXPECT_THAT(fake_.last_restore_.request_id(),
              MatchesRegex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"));
  EXPECT_THAT(out_.str(), HasSubstr("id: run-restore\n"));
  EXPECT_THAT(out_.str(), HasSubstr("restores_version: 2\n"));
  EXPECT_THAT(out_.str(), HasSubstr("request_id: " + fake_.last_restore_.request_id() + "\n"));
  EXPECT_EQ(Run({"versions", "restore", "--project", "p-1", "x"}), kExitUsage);
}

}  // namespace
}  // namespace qai::cli

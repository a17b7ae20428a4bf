#pragma once
// TestSandbox: for the orchestrator's tests, a project's workspace in a real qai-sandbox
// service running in the test's process (tests/support/local_sandbox.h), held under fence 1,
// with shortcuts to put files in and read them back.
//
//   TestSandbox sandbox;                 // ASSERTs inside: check HasFatalFailure() after
//   sandbox.Write("index.html", "<h1>Hi</h1>");
//   EXPECT_EQ(sandbox.Read("index.html"), "<h1>Hi</h1>");
//   RunAgent(..., *sandbox.workspace, ...);

#include <gtest/gtest.h>

#include <memory>
#include <optional>
#include <string>

#include "common/ids.h"
#include "services/orchestrator/runs/sandbox_workspace.h"
#include "tests/support/local_sandbox.h"
#include "tests/support/pg_server.h"

namespace qai::orchestrator {

struct TestSandbox {
  explicit TestSandbox(testing::LocalSandboxOptions options = {},
                       absl::Duration command_timeout = absl::Seconds(20)) {
    auto started = testing::LocalSandbox::Start(testing::PgServer::Shared().CreateDatabase(),
                                                std::move(options));
    if (!started.ok()) {
      ADD_FAILURE() << started.status();
      return;
    }
    service = *std::move(started);
    client =
        std::make_unique<SandboxClient>(service->channel(), service->api_key(), command_timeout);
    workspace = std::make_unique<SandboxWorkspace>(client.get(), project_id, 1);
    absl::StatusOr<HeldWorkspace> opened = workspace->Open();
    if (!opened.ok()) ADD_FAILURE() << opened.status();
  }

  void Write(const std::string& path, const std::string& content) {
    absl::StatusOr<std::vector<FileResult>> r = workspace->WriteFiles({{path, content}});
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->at(0).error, "");
  }
  // Read: the file's content, or nullopt when it cannot be read (missing, ...).
  std::optional<std::string> Read(const std::string& path) {
    absl::StatusOr<std::vector<FileResult>> r = workspace->ReadFiles({path}, 1 << 20);
    if (!r.ok() || !r->at(0).error.empty()) return std::nullopt;
    return r->at(0).content;
  }
  // Reset: the workspace holds exactly `files`.
  void Reset(const std::map<std::string, std::string>& files) {
    FileChanges changes(files.begin(), files.end());
    ASSERT_TRUE(workspace->Restore("", changes).ok());
  }

  std::string project_id = common::NewUuid();
  std::unique_ptr<testing::LocalSandbox> service;
  std::unique_ptr<SandboxClient> client;
  std::unique_ptr<SandboxWorkspace> workspace;
};

}  // namespace qai::orchestrator

// SandboxWorkspace against a real qai-sandbox: the changes its writes and commands report are
// handed out without another call, and what a call did not report is asked for.

#include "services/orchestrator/runs/sandbox_workspace.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "services/orchestrator/runs/test_sandbox.h"

namespace qai::orchestrator {
namespace {

using Changed = std::optional<FileChanges>;

TEST(SandboxWorkspaceTest, ChangesComeWithWritesAndCommandsAndWhatACancelLeftIsAskedFor) {
  TestSandbox sandbox;
  ASSERT_FALSE(::testing::Test::HasFatalFailure());
  SandboxWorkspace& ws = *sandbox.workspace;
  sandbox.Write("a.txt", "a");
  absl::StatusOr<CommandOutcome> ran = ws.Run("echo b > b.txt", [] { return false; });
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_EQ(ws.Changes().value(), Changed(FileChanges{{"a.txt", "a"}, {"b.txt", "b\n"}}))
      << "both reports together, the later one over the earlier";
  EXPECT_EQ(ws.Changes().value(), Changed(FileChanges{})) << "nothing since";

  // A cancelled command reports nothing: what it did is asked for, after what was heard.
  sandbox.Write("c.txt", "c");
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    cancel = true;
  });
  ran = ws.Run("rm c.txt; echo d > d.txt; sleep 30", [&] { return cancel.load(); });
  canceller.join();
  ASSERT_TRUE(ran.ok()) << ran.status();
  EXPECT_TRUE(ran->cancelled);
  EXPECT_EQ(ws.Changes().value(), Changed(FileChanges{{"c.txt", std::nullopt}, {"d.txt", "d\n"}}));
}

}  // namespace
}  // namespace qai::orchestrator

#include "services/orchestrator/agent/tool_args.h"

#include <gtest/gtest.h>

#include "services/orchestrator/model/prompts.h"

namespace qai::orchestrator {
namespace {

ToolArgs Parse(std::string name, std::string arguments, size_t max_command_bytes = 64) {
  return ParseToolArgs(
      {.id = "call_1", .name = std::move(name), .arguments_json = std::move(arguments)},
      max_command_bytes);
}

// The error message the arguments get, or "" when they are accepted.
std::string ErrorOf(const ToolArgs& args) {
  const auto* error = std::get_if<ToolArgsError>(&args);
  return error == nullptr ? "" : error->message;
}

TEST(ParseToolArgsTest, ReadsEachToolsArguments) {
  ToolArgs terminal = Parse(kToolTerminal, R"({"command":"ls -la"})");
  ASSERT_TRUE(std::holds_alternative<TerminalArgs>(terminal)) << ErrorOf(terminal);
  EXPECT_EQ(std::get<TerminalArgs>(terminal).command, "ls -la");

  ToolArgs write = Parse(kToolWriteFiles, R"({"files":[{"path":"a.html","content":"<p>"},{"path":1},
                                                       {"path":"b.css","content":""}]})");
  ASSERT_TRUE(std::holds_alternative<WriteFilesArgs>(write)) << ErrorOf(write);
  const auto& files = std::get<WriteFilesArgs>(write);
  ASSERT_EQ(files.files.size(), 2u);
  EXPECT_EQ(files.files[0], std::make_pair(std::string("a.html"), std::string("<p>")));
  EXPECT_EQ(files.files[1].first, "b.css");
  EXPECT_EQ(files.malformed, 1u);

  ToolArgs read = Parse(kToolReadFiles, R"({"files":["a.html",7,"b.css"]})");
  ASSERT_TRUE(std::holds_alternative<ReadFilesArgs>(read)) << ErrorOf(read);
  EXPECT_EQ(std::get<ReadFilesArgs>(read).paths, (std::vector<std::string>{"a.html", "b.css"}));
}

TEST(ParseToolArgsTest, RefusesWhatIsNotAnObject) {
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, "ls")), "error: the arguments are not a JSON object");
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, R"(["ls"])")),
            "error: the arguments are not a JSON object");
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, "")), "error: the arguments are not a JSON object");
  const std::string deep = R"({"command":)" + std::string(101, '[') + std::string(101, ']') + "}";
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, deep)),
            "error: the arguments nest deeper than 100 levels");
}

TEST(ParseToolArgsTest, RefusesBadCommands) {
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, R"({"cmd":"ls"})")), "error: missing \"command\"");
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, R"({"command":["ls"]})")), "error: missing \"command\"");
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, R"({"command":""})")), "error: \"command\" is empty");
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, R"({"command":"ls\u0000rm"})")),
            "error: \"command\" contains NUL");
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, R"({"command":"12345"})", 4)),
            "error: \"command\" is longer than 4 bytes");
  EXPECT_EQ(ErrorOf(Parse(kToolTerminal, R"({"command":"1234"})", 4)), "");
}

TEST(ParseToolArgsTest, RefusesMissingFilesAndUnknownTools) {
  EXPECT_EQ(ErrorOf(Parse(kToolWriteFiles, R"({"files":{"path":"a"}})")),
            "error: missing \"files\"");
  EXPECT_EQ(ErrorOf(Parse(kToolReadFiles, "{}")), "error: missing \"files\"");
  EXPECT_EQ(ErrorOf(Parse("rm", R"({"files":[]})")), "error: unknown tool rm");
}

}  // namespace
}  // namespace qai::orchestrator

#include "tools/qai/args.h"

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/qai/cli.h"

namespace qai::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

common::EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

CommandLine Parse(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  static const CliSpec cli = QaiCli();
  return ParseCommandLine(cli, args, FakeEnv(std::move(env)));
}

TEST(ParseCommandLineTest, PicksCommandAndPositionals) {
  CommandLine line = Parse({"projects", "rename", "id-1", "New name"});
  ASSERT_EQ(line.error, "");
  ASSERT_NE(line.command, nullptr);
  EXPECT_THAT(line.command->path, ElementsAre("projects", "rename"));
  EXPECT_THAT(line.args.positionals(), ElementsAre("id-1", "New name"));
  EXPECT_EQ(line.args.Get("etag"), "");
}

TEST(ParseCommandLineTest, GlobalFlagsAnywhereAndBothValueForms) {
  CommandLine line = Parse({"--json", "projects", "--timeout=3s", "list", "--all", "--page-size",
                            "7", "--projects-addr", "h:1"});
  ASSERT_EQ(line.error, "");
  EXPECT_TRUE(line.args.Switch("json"));
  EXPECT_TRUE(line.args.Switch("all"));
  EXPECT_FALSE(line.args.Switch("verbose"));
  EXPECT_EQ(line.args.GetDuration("timeout"), absl::Seconds(3));
  EXPECT_EQ(line.args.GetInt("page-size"), 7);
  EXPECT_EQ(line.args.Get("projects-addr"), "h:1");
}

TEST(ParseCommandLineTest, FlagBeatsEnvironmentBeatsDefault) {
  EXPECT_EQ(Parse({"projects", "get", "x"}).args.Get("projects-addr"), "localhost:50051");
  EXPECT_EQ(Parse({"projects", "get", "x"}).args.Get("messages-addr"), "localhost:50052");
  EXPECT_EQ(
      Parse({"projects", "get", "x"}, {{"QAI_MESSAGES_ADDR", "env:4"}}).args.Get("messages-addr"),
      "env:4");
  EXPECT_EQ(Parse({"projects", "get", "x"}).args.GetDuration("timeout"), absl::Seconds(10));
  const std::map<std::string, std::string> env = {
      {"QAI_PROJECTS_ADDR", "env:2"}, {"QAI_TOKEN", "tok"}, {"QAI_API_KEY", "key"}};
  CommandLine from_env = Parse({"projects", "get", "x"}, env);
  EXPECT_EQ(from_env.args.Get("projects-addr"), "env:2");
  EXPECT_EQ(from_env.args.Get("token"), "tok");
  EXPECT_EQ(from_env.args.Get("api-key"), "key");
  EXPECT_EQ(
      Parse({"projects", "get", "x", "--projects-addr", "flag:3"}, env).args.Get("projects-addr"),
      "flag:3");
}

TEST(ParseCommandLineTest, RunsAndWatch) {
  CommandLine watch = Parse({"watch", "run-1"});
  ASSERT_EQ(watch.error, "");
  ASSERT_NE(watch.command, nullptr);
  EXPECT_THAT(watch.command->path, ElementsAre("watch"));
  EXPECT_THAT(watch.args.positionals(), ElementsAre("run-1"));
  EXPECT_EQ(watch.args.GetInt("after"), 0);
  EXPECT_EQ(watch.args.Get("orchestrator-addr"), "localhost:50053");

  CommandLine resumed =
      Parse({"runs", "watch", "run-1", "--after", "12"}, {{"QAI_ORCHESTRATOR_ADDR", "env:5"}});
  ASSERT_EQ(resumed.error, "");
  EXPECT_THAT(resumed.command->path, ElementsAre("runs", "watch"));
  EXPECT_EQ(resumed.args.GetInt("after"), 12);
  EXPECT_EQ(resumed.args.Get("orchestrator-addr"), "env:5");
  EXPECT_EQ(Parse({"runs", "get", "r", "--orchestrator-addr", "flag:6"},
                  {{"QAI_ORCHESTRATOR_ADDR", "env:5"}})
                .args.Get("orchestrator-addr"),
            "flag:6");

  CommandLine list = Parse({"runs", "list", "--project", "p-1", "--all", "--page-size", "3"});
  ASSERT_EQ(list.error, "");
  EXPECT_EQ(list.args.Get("project"), "p-1");
  EXPECT_TRUE(list.args.Switch("all"));
  EXPECT_EQ(list.args.GetInt("page-size"), 3);

  EXPECT_TRUE(Parse({"projects", "create", "--prompt", "p", "--watch"}).args.Switch("watch"));
  EXPECT_FALSE(Parse({"projects", "create", "--prompt", "p"}).args.Switch("watch"));
  EXPECT_TRUE(Parse({"messages", "send", "--project", "p", "--content", "c", "--watch"})
                  .args.Switch("watch"));
}

TEST(ParseCommandLineTest, DoubleDashEndsFlags) {
  CommandLine line = Parse({"projects", "rename", "--", "id-1", "--json"});
  ASSERT_EQ(line.error, "");
  EXPECT_THAT(line.args.positionals(), ElementsAre("id-1", "--json"));
  EXPECT_FALSE(line.args.Switch("json"));
}

TEST(ParseCommandLineTest, FlagValueMayLookLikeAFlag) {
  CommandLine line = Parse({"projects", "create", "--prompt", "--json"});
  ASSERT_EQ(line.error, "");
  EXPECT_EQ(line.args.Get("prompt"), "--json");
  EXPECT_FALSE(line.args.Switch("json"));
}

TEST(ParseCommandLineTest, Help) {
  CommandLine top = Parse({"--help"});
  EXPECT_TRUE(top.help);
  EXPECT_THAT(top.words, IsEmpty());
  CommandLine group = Parse({"projects", "-h"});
  EXPECT_TRUE(group.help);
  EXPECT_THAT(group.words, ElementsAre("projects"));
  EXPECT_EQ(group.command, nullptr);
  // Help wins over what is still missing.
  CommandLine leaf = Parse({"projects", "create", "--help"});
  EXPECT_TRUE(leaf.help);
  EXPECT_EQ(leaf.error, "");
}

TEST(ParseCommandLineTest, UsageErrors) {
  struct Case {
    std::vector<std::string> args;
    std::string error;
  };
  const std::vector<Case> cases = {
      {{}, "missing command"},
      {{"projects"}, "\"qai projects\" needs a subcommand"},
      {{"projects", "frobnicate"}, "unknown command \"qai projects frobnicate\""},
      {{"nope"}, "unknown command \"qai nope\""},
      {{"projects", "get"}, "missing ID"},
      {{"projects", "rename", "id-1"}, "missing NAME"},
      {{"projects", "get", "a", "b"}, "unexpected argument \"b\""},
      {{"projects", "get", "a", "--bogus"}, "unknown flag --bogus"},
      {{"projects", "get", "a", "--bogus=1"}, "unknown flag --bogus"},
      {{"projects", "--all", "list"}, "unknown flag --all (command flags go after the command)"},
      {{"projects", "list", "--all=yes"}, "--all takes no value"},
      {{"projects", "list", "--page-size"}, "--page-size needs a value (N)"},
      {{"projects", "list", "--page-size", "ten"}, "--page-size: must be an integer"},
      {{"projects", "list", "--page-size", "3000000000"}, "--page-size: is out of range"},
      {{"projects", "get", "a", "--timeout", "soon"},
       "--timeout (QAI_TIMEOUT): must be a duration such as 500ms, 5s or 1m"},
      {{"projects", "create"}, "missing --prompt"},
      {{"projects", "create", "--prompt", "p", "--wait", "-1s"}, "--wait: must not be negative"},
      {{"projects", "create", "--prompt", "p", "--wait", "soon"},
       "--wait: must be a duration such as 500ms, 5s or 1m"},
      {{"messages", "send", "--content", "c"}, "missing --project"},
      {{"messages", "send", "--project", "p"}, "missing --content"},
      {{"messages", "list", "--project", "p", "--page-size", "3000000000"},
       "--page-size: is out of range"},
      {{"messages", "list", "--project", "p", "--messages-addr="},
       "missing --messages-addr (QAI_MESSAGES_ADDR)"},
      {{"projects", "get", "a", "--projects-addr="}, "missing --projects-addr (QAI_PROJECTS_ADDR)"},
      {{"runs"}, "\"qai runs\" needs a subcommand"},
      {{"runs", "list"}, "missing --project"},
      {{"runs", "list", "--project", "p", "--page-size", "x"}, "--page-size: must be an integer"},
      {{"runs", "get"}, "missing RUN_ID"},
      {{"runs", "cancel"}, "missing RUN_ID"},
      {{"runs", "watch"}, "missing RUN_ID"},
      {{"watch"}, "missing RUN_ID"},
      {{"watch", "r", "s"}, "unexpected argument \"s\""},
      {{"watch", "r", "--after", "-1"}, "--after: must not be negative"},
      {{"watch", "r", "--after", "ten"}, "--after: must be an integer"},
      {{"runs", "get", "r", "--orchestrator-addr="},
       "missing --orchestrator-addr (QAI_ORCHESTRATOR_ADDR)"},
      {{"messages", "send", "--project", "p", "--content", "c", "--watch=1"},
       "--watch takes no value"},
      {{"token", "--sub", "u1"}, "missing --jwt-secret (QAI_JWT_SECRET)"},
      {{"token", "--sub", "u1", "--jwt-secret", std::string(32, 's'), "--ttl", "0s"},
       "--ttl: must be longer than zero"},
      {{"token", "--sub", "u1", "--jwt-secret", "short"},
       "--jwt-secret (QAI_JWT_SECRET): QAI_JWT_SECRET is shorter than 32 bytes (make one with: "
       "openssl rand -hex 32)"},
      {{"token", "--sub", "u1", "--jwt-secret", "a=" + std::string(32, 's') + ",b=short"},
       "--jwt-secret (QAI_JWT_SECRET): QAI_JWT_SECRET entry 2 is shorter than 32 bytes (make one "
       "with: openssl rand -hex 32)"},
  };
  for (const Case& c : cases) {
    CommandLine line = Parse(c.args);
    EXPECT_EQ(line.error, c.error) << testing::PrintToString(c.args);
  }
}

TEST(ParseCommandLineTest, EmptyEnvironmentSecretIsMissing) {
  EXPECT_EQ(Parse({"token", "--sub", "u1"}, {{"QAI_JWT_SECRET", ""}}).error,
            "missing --jwt-secret (QAI_JWT_SECRET)");
  EXPECT_EQ(Parse({"token", "--sub", "u1"}, {{"QAI_JWT_SECRET", std::string(32, 's')}}).error, "");
}

TEST(UsageTest, ScopedToTheWordsGiven) {
  const CliSpec cli = QaiCli();
  std::string all = Usage(cli, {});
  EXPECT_THAT(all, HasSubstr("usage: qai COMMAND"));
  EXPECT_THAT(all, HasSubstr("token --sub ID [--admin] [--ttl DURATION] [--jwt-secret SECRET]"));
  EXPECT_THAT(
      all,
      HasSubstr("projects create --prompt TEXT [--display-name NAME] [--wait DURATION] [--watch]"));
  EXPECT_THAT(all,
              HasSubstr("runs list --project ID [--page-size N] [--page-token TOKEN] [--all]"));
  EXPECT_THAT(all, HasSubstr("runs watch RUN_ID [--after N]"));
  EXPECT_THAT(all, HasSubstr("\n  watch RUN_ID [--after N]\n"));
  EXPECT_THAT(all, HasSubstr("[QAI_ORCHESTRATOR_ADDR] (default localhost:50053)"));
  EXPECT_THAT(all, HasSubstr("messages send --project ID --content TEXT"));
  EXPECT_THAT(all,
              HasSubstr("messages list --project ID [--page-size N] [--page-token TOKEN] [--all]"));
  EXPECT_THAT(all, HasSubstr("[QAI_MESSAGES_ADDR] (default localhost:50052)"));
  EXPECT_THAT(all, HasSubstr("--projects-addr ADDR"));
  EXPECT_THAT(all, HasSubstr("[QAI_PROJECTS_ADDR] (default localhost:50051)"));

  const std::vector<std::string> projects = {"projects"};
  std::string group = Usage(cli, projects);
  EXPECT_THAT(group, HasSubstr("usage: qai projects COMMAND"));
  EXPECT_THAT(group, HasSubstr("projects rename ID NAME [--etag ETAG]"));
  EXPECT_THAT(group, Not(HasSubstr("token --sub")));

  const std::vector<std::string> list = {"projects", "list"};
  std::string leaf = Usage(cli, list);
  EXPECT_THAT(leaf, HasSubstr("usage: qai projects list [--page-size N] [--page-token TOKEN] "
                              "[--all] [global options]"));
  EXPECT_THAT(leaf, HasSubstr("--all"));
  EXPECT_THAT(leaf, HasSubstr("global options (anywhere on the line):"));
}

}  // namespace
}  // namespace qai::cli

#include "common/config.h"

#include <gtest/gtest.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace qai::common {
namespace {

using Env = std::map<std::string, std::string>;

EnvLookup FromMap(Env env) {
  return [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
}

absl::StatusOr<Config> ParseArgs(std::vector<Option> options, std::vector<std::string> args,
                                 Env env = {}) {
  std::vector<const char*> argv = {"program"};
  for (const std::string& a : args) argv.push_back(a.c_str());
  return Config::Parse(std::move(options), static_cast<int>(argv.size()), argv.data(),
                       FromMap(std::move(env)));
}

std::vector<Option> Options() {
  return {{.name = "database-url", .help = "libpq URL", .secret = true, .required = true},
          {.name = "listen-addr",
           .default_value = "0.0.0.0:50051",
           .help = "gRPC address",
           .validate = IsHostPort},
          {.name = "pool-size", .default_value = "16", .help = "connections", .validate = IsInt},
          {.name = "timeout", .default_value = "5s", .help = "timeout", .validate = IsDuration},
          {.name = "verbose", .default_value = "false", .help = "more logs", .validate = IsBool},
          {.name = "peers", .help = "comma-separated list"}};
}

void ExpectInvalidNaming(const absl::StatusOr<Config>& config, std::string_view flag,
                         std::string_view env_var) {
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << config.status();
  const std::string message(config.status().message());
  EXPECT_NE(message.find(flag), std::string::npos) << config.status();
  if (!env_var.empty()) {
    EXPECT_NE(message.find(env_var), std::string::npos) << config.status();
  }
}

TEST(ConfigTest, EnvNameUppercasesAndReplacesDashes) {
  EXPECT_EQ(EnvName("database-url"), "QAI_DATABASE_URL");
  EXPECT_EQ(EnvName("port"), "QAI_PORT");
  EXPECT_EQ(EnvName("a-b-c2"), "QAI_A_B_C2");
}

TEST(ConfigTest, FlagWithEqualsSign) {
  auto config = ParseArgs(Options(), {"--database-url=host=x dbname=y", "--pool-size=4"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Get("database-url"), "host=x dbname=y");
  EXPECT_EQ(config->GetInt("pool-size"), 4);
}

TEST(ConfigTest, FlagWithSeparateValue) {
  auto config =
      ParseArgs(Options(), {"--database-url", "postgres://a", "--listen-addr", "127.0.0.1:9"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Get("database-url"), "postgres://a");
  EXPECT_EQ(config->Get("listen-addr"), "127.0.0.1:9");
}

TEST(ConfigTest, ValueMayContainEqualsSign) {
  auto config = ParseArgs(Options(), {"--database-url=a=b=c"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Get("database-url"), "a=b=c");
}

TEST(ConfigTest, EnvironmentFallback) {
  auto config =
      ParseArgs(Options(), {}, {{"QAI_DATABASE_URL", "from-env"}, {"QAI_POOL_SIZE", "7"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Get("database-url"), "from-env");
  EXPECT_EQ(config->GetInt("pool-size"), 7);
}

TEST(ConfigTest, FlagBeatsEnvBeatsDefault) {
  auto config =
      ParseArgs(Options(), {"--database-url=flag", "--pool-size=3"},
                {{"QAI_DATABASE_URL", "env"}, {"QAI_POOL_SIZE", "8"}, {"QAI_TIMEOUT", "2s"}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Get("database-url"), "flag");               // flag over env
  EXPECT_EQ(config->GetInt("pool-size"), 3);                    // flag over env and default
  EXPECT_EQ(config->GetDuration("timeout"), absl::Seconds(2));  // env over default
  EXPECT_EQ(config->Get("listen-addr"), "0.0.0.0:50051");       // default
  EXPECT_FALSE(config->GetBool("verbose"));
}

TEST(ConfigTest, EnvSetToEmptyOverridesDefault) {
  // An explicitly empty variable is a value, not an absence.
  auto config = ParseArgs(Options(), {"--database-url=x"}, {{"QAI_LISTEN_ADDR", ""}});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Get("listen-addr"), "");
}

TEST(ConfigTest, UnknownFlagIsInvalidArgument) {
  ExpectInvalidNaming(ParseArgs(Options(), {"--database-url=x", "--no-such-flag=1"}),
                      "no-such-flag", "");
  ExpectInvalidNaming(ParseArgs(Options(), {"--database-url=x", "--no-such-flag"}), "no-such-flag",
                      "");
}

TEST(ConfigTest, PositionalArgumentIsInvalidArgument) {
  auto config = ParseArgs(Options(), {"--database-url=x", "stray"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(config.status().message().find("stray"), absl::string_view::npos) << config.status();
}

TEST(ConfigTest, MissingValueIsInvalidArgumentNamingTheFlag) {
  ExpectInvalidNaming(ParseArgs(Options(), {"--database-url=x", "--pool-size"}), "--pool-size",
                      "QAI_POOL_SIZE");
}

TEST(ConfigTest, MissingValueAlsoNamesEnvVar) {
  ExpectInvalidNaming(ParseArgs(Options(), {"--database-url=x", "--pool-size"}), "--pool-size",
                      "QAI_POOL_SIZE");
}

TEST(ConfigTest, RequiredButMissingOrBlank) {
  ExpectInvalidNaming(ParseArgs(Options(), {}), "database-url", "QAI_DATABASE_URL");
  ExpectInvalidNaming(ParseArgs(Options(), {"--database-url="}), "database-url",
                      "QAI_DATABASE_URL");
  ExpectInvalidNaming(ParseArgs(Options(), {}, {{"QAI_DATABASE_URL", "   "}}), "database-url",
                      "QAI_DATABASE_URL");
}

TEST(ConfigTest, FailedValidatorNamesOptionEnvVarAndReason) {
  auto config = ParseArgs(Options(), {"--database-url=x", "--pool-size=many"});
  ExpectInvalidNaming(config, "pool-size", "QAI_POOL_SIZE");
  EXPECT_NE(config.status().message().find("integer"), absl::string_view::npos) << config.status();

  ExpectInvalidNaming(ParseArgs(Options(), {"--database-url=x"}, {{"QAI_TIMEOUT", "soon"}}),
                      "timeout", "QAI_TIMEOUT");
  ExpectInvalidNaming(ParseArgs(Options(), {"--database-url=x", "--verbose", "maybe"}), "verbose",
                      "QAI_VERBOSE");
  ExpectInvalidNaming(ParseArgs(Options(), {"--database-url=x", "--listen-addr=nohost"}),
                      "listen-addr", "QAI_LISTEN_ADDR");
}

TEST(ConfigTest, ValidatorAlsoChecksDefaults) {
  std::vector<Option> options = {{.name = "n", .default_value = "x", .validate = IsInt}};
  ExpectInvalidNaming(ParseArgs(options, {}), "--n", "QAI_N");
}

TEST(ConfigTest, HelpIsNotFoundWithUsage) {
  auto config = ParseArgs(Options(), {"--help"});
  ASSERT_FALSE(config.ok());
  EXPECT_EQ(config.status().code(), absl::StatusCode::kNotFound);
  const std::string usage(config.status().message());
  for (const char* expected : {"--database-url", "QAI_DATABASE_URL", "libpq URL", "(required)",
                               "--listen-addr", "0.0.0.0:50051", "--peers", "QAI_PEERS"}) {
    EXPECT_NE(usage.find(expected), std::string::npos) << expected << " missing from:\n" << usage;
  }
  // --help wins even when required options are missing.
  EXPECT_EQ(ParseArgs(Options(), {"-h"}).status().code(), absl::StatusCode::kNotFound);
}

TEST(ConfigTest, DescribeMasksSecretsOnly) {
  auto config = ParseArgs(Options(), {"--database-url=host=db password=hunter2", "--peers=a,b"});
  ASSERT_TRUE(config.ok()) << config.status();
  nlohmann::json described = config->Describe();
  EXPECT_EQ(described["database-url"], "***");
  EXPECT_EQ(described["listen-addr"], "0.0.0.0:50051");
  EXPECT_EQ(described["pool-size"], "16");
  EXPECT_EQ(described["peers"], "a,b");
  EXPECT_EQ(described.dump().find("hunter2"), std::string::npos) << described.dump();
}

TEST(ConfigTest, DescribeShowsEmptySecretAsEmpty) {
  std::vector<Option> options = {{.name = "token", .secret = true}};
  auto config = ParseArgs(options, {});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->Describe()["token"], "");
}

TEST(ConfigTest, GetListTrimsAndDropsEmpties) {
  auto config = ParseArgs(Options(), {"--database-url=x", "--peers= a:1 , ,b:2,, c:3 ,"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetList("peers"), (std::vector<std::string>{"a:1", "b:2", "c:3"}));

  auto empty = ParseArgs(Options(), {"--database-url=x"});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->GetList("peers").empty());
}

TEST(ConfigTest, TypedGetters) {
  auto config = ParseArgs(
      Options(), {"--database-url=x", "--pool-size=-12", "--timeout=250ms", "--verbose=YES"});
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetInt("pool-size"), -12);
  EXPECT_EQ(config->GetDuration("timeout"), absl::Milliseconds(250));
  EXPECT_TRUE(config->GetBool("verbose"));
}

TEST(ConfigValidatorsTest, IsInt) {
  EXPECT_EQ(IsInt("0"), "");
  EXPECT_EQ(IsInt("42"), "");
  EXPECT_EQ(IsInt("-7"), "");
  EXPECT_NE(IsInt(""), "");
  EXPECT_NE(IsInt("1.5"), "");
  EXPECT_NE(IsInt("12abc"), "");
  EXPECT_NE(IsInt("ten"), "");
  EXPECT_NE(IsInt("99999999999999999999999"), "");
}

TEST(ConfigValidatorsTest, IsDuration) {
  EXPECT_EQ(IsDuration("250ms"), "");
  EXPECT_EQ(IsDuration("5s"), "");
  EXPECT_EQ(IsDuration("1m"), "");
  EXPECT_EQ(IsDuration("1h30m"), "");
  EXPECT_EQ(IsDuration("0"), "");
  EXPECT_NE(IsDuration("5"), "");
  EXPECT_NE(IsDuration("five seconds"), "");
  EXPECT_NE(IsDuration(""), "");
  EXPECT_NE(IsDuration("-1s"), "");
}

TEST(ConfigValidatorsTest, IsBool) {
  for (const char* ok : {"true", "false", "1", "0", "yes", "no", "TRUE", "False"}) {
    EXPECT_EQ(IsBool(ok), "") << ok;
  }
  for (const char* bad : {"", "2", "maybe", "truee", "y"}) EXPECT_NE(IsBool(bad), "") << bad;
}

TEST(ConfigValidatorsTest, IsHostPort) {
  for (const char* ok :
       {"localhost:50051", "0.0.0.0:0", "127.0.0.1:65535", "[::1]:8080", "db.internal:5432"}) {
    EXPECT_EQ(IsHostPort(ok), "") << ok;
  }
  for (const char* bad :
       {"", "localhost", ":80", "host:", "host:65536", "host:-1", "host:http", "host:80x"}) {
    EXPECT_NE(IsHostPort(bad), "") << bad;
  }
}

}  // namespace
}  // namespace qai::common

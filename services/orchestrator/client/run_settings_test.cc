#include "services/orchestrator/client/run_settings.h"

#include <map>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qai::orchestrator {
namespace {

using common::Config;
using common::FieldViolation;
using common::FieldViolations;
using common::GetFieldViolations;
using common::GetQuotaViolations;
using common::Option;
using common::QuotaViolation;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

absl::StatusOr<Config> Parse(std::map<std::string, std::string> env) {
  std::vector<Option> options = RunSettingsOptions();
  for (Option& o : DefaultModelOptions()) options.push_back(std::move(o));
  return Config::Parse(std::move(options), 0, nullptr,
                       [env](const std::string& name) -> std::optional<std::string> {
                         auto it = env.find(name);
                         if (it == env.end()) return std::nullopt;
                         return it->second;
                       });
}

google::protobuf::Duration Proto(int64_t seconds, int32_t nanos = 0) {
  google::protobuf::Duration d;
  d.set_seconds(seconds);
  d.set_nanos(nanos);
  return d;
}

// Check: CheckRunSettings with the default field names; the fields it refused, with why.
struct Checked {
  RunSettings settings;
  std::map<std::string, std::string> bad;
};
Checked Check(const RunBounds& bounds, const RequestedRunSettings& requested,
              const RunSettingFields& fields = {}) {
  FieldViolations violations;
  Checked out{.settings = CheckRunSettings(bounds, requested, fields, violations)};
  for (const FieldViolation& v : GetFieldViolations(violations.ToStatus()))
    out.bad[v.field] = v.description;
  return out;
}

TEST(RunBoundsTest, DefaultsAreFiftyIterationsThirtyMinutesUpToTwoHoursAndTheBuiltinModel) {
  absl::StatusOr<Config> config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<RunBounds> bounds = RunBoundsFrom(*config);
  ASSERT_TRUE(bounds.ok()) << bounds.status();
  EXPECT_EQ(bounds->max_iterations, 50);
  EXPECT_EQ(bounds->DefaultIterations(), 15);
  EXPECT_EQ(bounds->default_timeout, absl::Minutes(30));
  EXPECT_EQ(bounds->max_timeout, absl::Hours(2));
  EXPECT_EQ(bounds->default_model, "builtin");
  EXPECT_TRUE(bounds->allowed_models.empty());
  EXPECT_EQ(bounds->caps.per_project, 5);
  EXPECT_EQ(bounds->caps.per_principal, 20);
}

TEST(RunBoundsTest, ReadsTheCapsZeroIsNoCapAndBadOnesStopTheStart) {
  absl::StatusOr<Config> config =
      Parse({{"QAI_RUN_MAX_ACTIVE_PER_PROJECT", "2"}, {"QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL", "0"}});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<RunBounds> bounds = RunBoundsFrom(*config);
  ASSERT_TRUE(bounds.ok()) << bounds.status();
  EXPECT_EQ(bounds->caps.per_project, 2);
  EXPECT_EQ(bounds->caps.per_principal, 0);
  for (const char* name : {"QAI_RUN_MAX_ACTIVE_PER_PROJECT", "QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL"}) {
    for (const char* value : {"-1", "lots", "100001"}) {
      absl::StatusOr<Config> bad = Parse({{name, value}});
      EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument) << name << "=" << value;
      EXPECT_THAT(bad.status().message(), HasSubstr(name));
    }
  }
}

TEST(RunBoundsTest, ReadsTheVariablesAndTheOpenAiDefaultModel) {
  absl::StatusOr<Config> config = Parse({{"QAI_RUN_MAX_ITERATIONS", "10"},
                                         {"QAI_RUN_TIMEOUT", "5m"},
                                         {"QAI_RUN_MAX_TIMEOUT", "1h"},
                                         {"QAI_MODEL_ALLOWED", " gpt-4o , gpt-4o-mini,,"},
                                         {"QAI_MODEL_PROVIDER", "openai"},
                                         {"QAI_OPENAI_MODEL", "gpt-4o-mini"}});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<RunBounds> bounds = RunBoundsFrom(*config);
  ASSERT_TRUE(bounds.ok()) << bounds.status();
  EXPECT_EQ(bounds->max_iterations, 10);
  EXPECT_EQ(bounds->DefaultIterations(), 10) << "the default is lowered to the bound";
  EXPECT_EQ(bounds->default_timeout, absl::Minutes(5));
  EXPECT_EQ(bounds->max_timeout, absl::Hours(1));
  EXPECT_EQ(bounds->default_model, "gpt-4o-mini");
  EXPECT_THAT(bounds->allowed_models, ElementsAre("gpt-4o", "gpt-4o-mini"));
}

TEST(RunBoundsTest, BadBoundsStopTheStartNamingTheOption) {
  const std::vector<std::pair<std::string, std::string>> bad = {{"QAI_RUN_MAX_ITERATIONS", "51"},
                                                                {"QAI_RUN_MAX_ITERATIONS", "0"},
                                                                {"QAI_RUN_TIMEOUT", "500ms"},
                                                                {"QAI_RUN_MAX_TIMEOUT", "forever"}};
  for (const auto& [name, value] : bad) {
    absl::StatusOr<Config> config = Parse({{name, value}});
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument) << name << "=" << value;
    EXPECT_THAT(config.status().message(), HasSubstr(name));
  }
  absl::StatusOr<Config> config = Parse({{"QAI_RUN_TIMEOUT", "3h"}});
  ASSERT_TRUE(config.ok()) << config.status();
  absl::StatusOr<RunBounds> bounds = RunBoundsFrom(*config);
  EXPECT_EQ(bounds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bounds.status().message(), HasSubstr("QAI_RUN_TIMEOUT"));
  EXPECT_THAT(bounds.status().message(), HasSubstr("QAI_RUN_MAX_TIMEOUT"));
}

TEST(CheckActiveRunsTest, OneMoreRunFitsBelowEachCap) {
  const RunCaps caps{.per_project = 5, .per_principal = 20};
  EXPECT_TRUE(CheckActiveRuns(caps, "p1", "alice", {.project = 4, .principal = 19}).ok());
  EXPECT_TRUE(CheckActiveRuns(caps, "p1", "alice", {}).ok());
  // No author: only the project's cap applies.
  EXPECT_TRUE(CheckActiveRuns(caps, "p1", "", {.project = 4, .principal = 1000}).ok());
  // 0 is no cap.
  EXPECT_TRUE(CheckActiveRuns({.per_project = 0, .per_principal = 0}, "p1", "alice",
                              {.project = 1000, .principal = 1000})
                  .ok());
}

TEST(CheckActiveRunsTest, EachCapReachedIsNamedInTheMessageAndAQuotaFailure) {
  const RunCaps caps{.per_project = 5, .per_principal = 20};
  absl::Status project = CheckActiveRuns(caps, "p1", "alice", {.project = 5, .principal = 3});
  EXPECT_EQ(project.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(project.message(), HasSubstr("project p1 has 5 runs queued or running"));
  EXPECT_THAT(project.message(), HasSubstr("QAI_RUN_MAX_ACTIVE_PER_PROJECT allows (5)"));
  std::vector<QuotaViolation> v = GetQuotaViolations(project);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].subject, "project:p1");
  EXPECT_EQ(v[0].description,
            "at most 5 runs queued or running at once per project "
            "(QAI_RUN_MAX_ACTIVE_PER_PROJECT); it has 5");

  absl::Status principal = CheckActiveRuns(caps, "p1", "alice", {.project = 0, .principal = 25});
  EXPECT_EQ(principal.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(principal.message(), HasSubstr("principal alice has 25 runs queued or running"));
  EXPECT_THAT(principal.message(), HasSubstr("QAI_RUN_MAX_ACTIVE_PER_PRINCIPAL allows (20)"));
  v = GetQuotaViolations(principal);
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].subject, "principal:alice");

  v = GetQuotaViolations(CheckActiveRuns(caps, "p1", "alice", {.project = 6, .principal = 20}));
  ASSERT_EQ(v.size(), 2u);
  EXPECT_EQ(v[0].subject, "project:p1");
  EXPECT_EQ(v[1].subject, "principal:alice");
}

TEST(CheckRunSettingsTest, NothingAskedMeansTheDefaults) {
  const RunBounds bounds{.default_model = "gpt-4o-mini"};
  Checked c = Check(bounds, {});
  EXPECT_TRUE(c.bad.empty());
  EXPECT_EQ(c.settings.max_iterations, 15);
  EXPECT_EQ(c.settings.model, "gpt-4o-mini");
  EXPECT_EQ(c.settings.timeout, absl::Minutes(30));
  const google::protobuf::Duration zero = Proto(0);
  c = Check(bounds, {.timeout = &zero});
  EXPECT_TRUE(c.bad.empty());
  EXPECT_EQ(c.settings.timeout, absl::Minutes(30)) << "a zero timeout is the default too";
}

TEST(CheckRunSettingsTest, SettingsWithinTheBoundsAreKept) {
  const RunBounds bounds{
      .max_iterations = 20, .default_model = "gpt-4o-mini", .allowed_models = {"gpt-4o"}};
  for (const std::string model : {"gpt-4o", "gpt-4o-mini"}) {
    const google::protobuf::Duration timeout = Proto(7200);
    Checked c = Check(bounds, {.max_iterations = 20, .model = model, .timeout = &timeout});
    EXPECT_TRUE(c.bad.empty()) << model;
    EXPECT_EQ(c.settings.max_iterations, 20);
    EXPECT_EQ(c.settings.model, model);
    EXPECT_EQ(c.settings.timeout, absl::Hours(2));
  }
  const google::protobuf::Duration second = Proto(1);
  Checked c = Check(bounds, {.max_iterations = 1, .timeout = &second});
  EXPECT_TRUE(c.bad.empty());
  EXPECT_EQ(c.settings.max_iterations, 1);
  EXPECT_EQ(c.settings.timeout, absl::Seconds(1));
}

TEST(CheckRunSettingsTest, EachSettingOutOfBoundsIsNamedWithTheBounds) {
  const RunBounds bounds{
      .max_iterations = 20, .default_model = "builtin", .allowed_models = {"fast", "slow"}};
  const google::protobuf::Duration too_long = Proto(7201);
  Checked c = Check(bounds, {.max_iterations = 21, .model = "huge", .timeout = &too_long});
  EXPECT_EQ(c.bad["max_iterations"], "must be between 1 and 20 (0 means 15)");
  EXPECT_EQ(c.bad["model"],
            "must be one of: builtin, fast, slow (empty means the default, builtin)");
  EXPECT_EQ(c.bad["timeout"], "must be between 1s and 2h (unset means 30m)");
  EXPECT_EQ(c.bad.size(), 3u);

  const google::protobuf::Duration negative = Proto(-5), short_one = Proto(0, 999999999);
  EXPECT_EQ(Check(bounds, {.max_iterations = -1}).bad.count("max_iterations"), 1u);
  EXPECT_EQ(Check(bounds, {.timeout = &negative}).bad.count("timeout"), 1u);
  EXPECT_EQ(Check(bounds, {.timeout = &short_one}).bad.count("timeout"), 1u);
}

TEST(CheckRunSettingsTest, AMalformedDurationIsRefused) {
  const RunBounds bounds;
  for (const google::protobuf::Duration& d : {Proto(5, -1), Proto(-5, 1), Proto(0, 1000000000)}) {
    Checked c = Check(bounds, {.timeout = &d});
    EXPECT_EQ(c.bad["timeout"], "is not a valid duration") << d.DebugString();
  }
}

TEST(CheckRunSettingsTest, ViolationsUseTheRequestsFieldNames) {
  const google::protobuf::Duration too_long = Proto(86400);
  Checked c = Check(RunBounds{}, {.max_iterations = 99, .model = "x", .timeout = &too_long},
                    {.timeout = "run_timeout"});
  EXPECT_EQ(c.bad.count("max_iterations"), 1u);
  EXPECT_EQ(c.bad.count("model"), 1u);
  EXPECT_EQ(c.bad.count("run_timeout"), 1u);
  EXPECT_EQ(c.bad.count("timeout"), 0u);
}

}  // namespace
}  // namespace qai::orchestrator

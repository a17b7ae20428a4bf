#include "services/orchestrator/model/model_config.h"

#include <gtest/gtest.h>

#include <map>

namespace qai::orchestrator {
namespace {

absl::StatusOr<common::Config> Parse(std::map<std::string, std::string> env) {
  return common::Config::Parse(ModelOptions(), 0, nullptr,
                               [env](const std::string& name) -> std::optional<std::string> {
                                 auto it = env.find(name);
                                 if (it == env.end()) return std::nullopt;
                                 return it->second;
                               });
}

TEST(ModelConfigTest, BuiltinByDefault) {
  auto config = Parse({});
  ASSERT_TRUE(config.ok()) << config.status();
  auto model = MakeModel(*config);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ((*model)->name(), "builtin");
}

TEST(ModelConfigTest, OpenAiNeedsABaseUrlAndAModel) {
  auto config = Parse({{"QAI_MODEL_PROVIDER", "openai"}, {"QAI_OPENAI_MODEL", "m"}});
  ASSERT_TRUE(config.ok()) << config.status();
  auto model = MakeModel(*config);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(model.status().message().find("QAI_OPENAI_BASE_URL"), absl::string_view::npos)
      << model.status();

  config = Parse(
      {{"QAI_MODEL_PROVIDER", "openai"}, {"QAI_OPENAI_BASE_URL", "http://localhost:11434/v1"}});
  ASSERT_TRUE(config.ok());
  EXPECT_NE(MakeModel(*config).status().message().find("QAI_OPENAI_MODEL"),
            absl::string_view::npos);

  config = Parse({{"QAI_MODEL_PROVIDER", "openai"},
                  {"QAI_OPENAI_BASE_URL", "http://localhost:11434/v1"},
                  {"QAI_OPENAI_MODEL", "qwen2.5-coder:7b"}});
  ASSERT_TRUE(config.ok());
  model = MakeModel(*config);
  ASSERT_TRUE(model.ok()) << model.status();  // no key: fine for a local server
  EXPECT_EQ((*model)->name(), "openai");
}

TEST(ModelConfigTest, BadValuesFailAtStartUpAndTheKeyIsNeverPrinted) {
  EXPECT_FALSE(Parse({{"QAI_MODEL_PROVIDER", "anthropic"}}).ok());
  EXPECT_FALSE(Parse({{"QAI_OPENAI_BASE_URL", "localhost:8000/v1"}}).ok());
  EXPECT_FALSE(Parse({{"QAI_OPENAI_STREAM", "maybe"}}).ok());
  EXPECT_FALSE(Parse({{"QAI_OPENAI_TIMEOUT", "0s"}}).ok());
  EXPECT_FALSE(Parse({{"QAI_MODEL_MAX_RETRIES", "-1"}}).ok());

  auto config = Parse({{"QAI_OPENAI_API_KEY", "sk-secret-value"}});
  ASSERT_TRUE(config.ok());
  EXPECT_EQ(config->Describe().dump().find("sk-secret-value"), std::string::npos);
}

}  // namespace
}  // namespace qai::orchestrator

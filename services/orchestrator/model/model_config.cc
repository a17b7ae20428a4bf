#include "services/orchestrator/model/model_config.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/strings.h"
#include "services/orchestrator/client/run_settings.h"
#include "services/orchestrator/model/builtin_model.h"
#include "services/orchestrator/model/openai_model.h"

namespace qai::orchestrator {

std::vector<common::Option> ModelOptions() {
  std::vector<common::Option> options = orchestrator::DefaultModelOptions();
  std::vector<common::Option> openai = {
      {.name = "openai-base-url",
       .help = "openai: the API's base URL, up to its version (https://api.openai.com/v1, "
               "http://localhost:11434/v1)",
       .validate = [](std::string_view v) -> std::string {
         const absl::string_view url = common::ToAbsl(v);
         return url.empty() || absl::StartsWith(url, "http://") || absl::StartsWith(url, "https://")
                    ? ""
                    : "must start with http:// or https://";
       }},
      {.name = "openai-api-key",
       .help = "openai: the API key (empty for servers that want none)",
       .secret = true},
      {.name = "openai-stream",
       .default_value = "true",
       .help = "openai: stream answers (text shows as it comes)",
       .validate = common::IsBool},
      {.name = "openai-timeout",
       .default_value = "10m",
       .help = "openai: longest one request may take, answer included",
       .validate = [](std::string_view v) -> std::string {
         absl::Duration d;
         return absl::ParseDuration(common::ToAbsl(v), &d) && d > absl::ZeroDuration()
                    ? ""
                    : "must be a positive duration";
       }},
      {.name = "model-max-retries",
       .default_value = "4",
       .help = "retries of a model call after a transient fault (429, 5xx, timeout), each a "
               "`retrying` event",
       .validate = common::IsIntIn(0, 20)},
  };
  for (common::Option& o : openai) options.push_back(std::move(o));
  return options;
}

absl::StatusOr<std::unique_ptr<Model>> MakeModel(const common::Config& config) {
  if (config.Get("model-provider") == "builtin") return std::make_unique<BuiltinModel>();
  for (const char* required : {"openai-base-url", "openai-model"}) {
    if (config.Get(required).empty()) {
      return absl::InvalidArgumentError(absl::StrCat("--", required, " (",
                                                     common::EnvName(required),
                                                     ") is required with --model-provider=openai"));
    }
  }
  return std::make_unique<OpenAiModel>(
      OpenAiOptions{.base_url = config.Get("openai-base-url"),
                    .api_key = config.Get("openai-api-key"),
                    .model = config.Get("openai-model"),
                    .stream = config.GetBool("openai-stream"),
                    .timeout = config.GetDuration("openai-timeout"),
                    .max_retries = static_cast<int>(config.GetInt("model-max-retries"))});
}

}  // namespace qai::orchestrator

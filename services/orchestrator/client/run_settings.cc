#include "services/orchestrator/client/run_settings.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/strings.h"

namespace qai::orchestrator {

using common::Config;
using common::EnvName;
using common::FieldViolations;
using common::IsIntIn;
using common::Option;
using common::QuotaExceeded;
using common::QuotaViolation;
using common::ToAbsl;
namespace {

// DurationAtLeast: a validator for durations of at least `min`.
std::function<std::string(std::string_view)> DurationAtLeast(absl::Duration min) {
  return [min](std::string_view v) -> std::string {
    absl::Duration d;
    if (!absl::ParseDuration(ToAbsl(v), &d)) return "must be a duration such as 90s, 30m or 2h";
    return d >= min ? "" : absl::StrCat("must be at least ", absl::FormatDuration(min));
  };
}

// ProtoDuration: a google.protobuf.Duration as an absl::Duration; false when it is not a valid
// one (nanos out of range, or seconds and nanos of different signs).
bool ProtoDuration(const google::protobuf::Duration& d, absl::Duration* out) {
  constexpr int32_t kMaxNanos = 999999999;
  if (d.nanos() < -kMaxNanos || d.nanos() > kMaxNanos) return false;
  if ((d.seconds() < 0 && d.nanos() > 0) || (d.seconds() > 0 && d.nanos() < 0)) return false;
  *out = absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
  return true;
}

}  // namespace

int RunBounds::DefaultIterations() const { return std::min(kRunDefaultIterations, max_iterations); }

std::vector<Option> DefaultModelOptions() {
  return {
      {.name = "model-provider",
       .default_value = "builtin",
       .help =
           "builtin (a deterministic offline stand-in) or openai (an OpenAI-compatible endpoint)",
       .validate = [](std::string_view v) -> std::string {
         return v == "builtin" || v == "openai" ? "" : "must be builtin or openai";
       }},
      {.name = "openai-model",
       .help = "openai: the model runs use unless they ask for another (gpt-4o-mini, "
               "qwen2.5-coder:7b, ...)"},
  };
}

std::vector<Option> RunSettingsOptions() {
  return {
      {.name = "run-max-iterations",
       .default_value = absl::StrCat(kRunIterationsLimit),
       .help = absl::StrCat("the most iterations a run may ask for (at most ", kRunIterationsLimit,
                            ")"),
       .validate = IsIntIn(1, kRunIterationsLimit)},
      {.name = "run-timeout",
       .default_value = "30m",
       .help = "a run's timeout when it asks for none (wall-clock from its first start)",
       .validate = DurationAtLeast(kRunMinTimeout)},
      {.name = "run-max-timeout",
       .default_value = "2h",
       .help = "the longest timeout a run may ask for",
       .validate = DurationAtLeast(kRunMinTimeout)},
      {.name = "model-allowed",
       .help = "comma-separated models a run may ask for besides the default (the provider's "
               "configured one)"},
      {.name = "run-max-active-per-project",
       .default_value = "5",
       .help = "the most runs queued or running at once for one project (0 = no cap)",
       .validate = IsIntIn(0, kRunCapLimit)},
      {.name = "run-max-active-per-principal",
       .default_value = "20",
       .help = "the most runs queued or running at once for one principal, the prompts' author, "
               "over all their "
               "projects (0 = no cap)",
       .validate = IsIntIn(0, kRunCapLimit)},
  };
}

absl::StatusOr<RunBounds> RunBoundsFrom(const Config& config) {
  RunBounds bounds{.max_iterations = static_cast<int>(config.GetInt("run-max-iterations")),
                   .default_timeout = config.GetDuration("run-timeout"),
                   .max_timeout = config.GetDuration("run-max-timeout"),
                   .default_model = config.Get("model-provider") == "openai"
                                        ? config.Get("openai-model")
                                        : std::string(kBuiltinModel),
                   .caps = {.per_project = config.GetInt("run-max-active-per-project"),
                            .per_principal = config.GetInt("run-max-active-per-principal")}};
  for (std::string& model : config.GetList("model-allowed"))
    bounds.allowed_models.insert(std::move(model));
  if (bounds.default_timeout > bounds.max_timeout) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--run-timeout (", EnvName("run-timeout"), ") ",
        absl::FormatDuration(bounds.default_timeout), " is longer than --run-max-timeout (",
        EnvName("run-max-timeout"), ") ", absl::FormatDuration(bounds.max_timeout)));
  }
  return bounds;
}

RunSettings CheckRunSettings(const RunBounds& bounds, const RequestedRunSettings& requested,
                             const RunSettingFields& fields, FieldViolations& bad) {
  RunSettings out{.max_iterations = requested.max_iterations,
                  .model = std::string(requested.model),
                  .timeout = bounds.default_timeout};
  if (requested.max_iterations == 0) {
    out.max_iterations = bounds.DefaultIterations();
  } else if (requested.max_iterations < 0 || requested.max_iterations > bounds.max_iterations) {
    bad.Add(std::string(fields.max_iterations),
            absl::StrCat("must be between 1 and ", bounds.max_iterations, " (0 means ",
                         bounds.DefaultIterations(), ")"));
  }

  if (out.model.empty()) {
    out.model = bounds.default_model;
  } else if (out.model != bounds.default_model && !bounds.allowed_models.contains(out.model)) {
    std::set<std::string> allowed = bounds.allowed_models;
    allowed.insert(bounds.default_model);
    bad.Add(std::string(fields.model),
            absl::StrCat("must be one of: ", absl::StrJoin(allowed, ", "),
                         " (empty means the default, ", bounds.default_model, ")"));
  }

  if (requested.timeout != nullptr) {
    absl::Duration timeout;
    if (!ProtoDuration(*requested.timeout, &timeout)) {
      bad.Add(std::string(fields.timeout), "is not a valid duration");
    } else if (timeout != absl::ZeroDuration()) {
      if (timeout < kRunMinTimeout || timeout > bounds.max_timeout) {
        bad.Add(std::string(fields.timeout),
                absl::StrCat("must be between ", absl::FormatDuration(kRunMinTimeout), " and ",
                             absl::FormatDuration(bounds.max_timeout), " (unset means ",
                             absl::FormatDuration(bounds.default_timeout), ")"));
      }
      out.timeout = timeout;
    }
  }
  return out;
}

absl::Status CheckActiveRuns(const RunCaps& caps, std::string_view project_id,
                             std::string_view author, const ActiveRuns& active) {
  std::vector<QuotaViolation> violations;
  std::vector<std::string> reasons;
  auto check = [&](int64_t cap, int64_t count, std::string_view option, absl::string_view kind,
                   absl::string_view id) {
    if (cap <= 0 || count < cap) return;
    violations.push_back({absl::StrCat(kind, ":", id),
                          absl::StrCat("at most ", cap, " runs queued or running at once per ",
                                       kind, " (", EnvName(option), "); it has ", count)});
    reasons.push_back(absl::StrCat(kind, " ", id, " has ", count,
                                   " runs queued or running, the most ", EnvName(option),
                                   " allows (", cap, ")"));
  };
  check(caps.per_project, active.project, "run-max-active-per-project", "project",
        ToAbsl(project_id));
  if (!author.empty()) {
    check(caps.per_principal, active.principal, "run-max-active-per-principal", "principal",
          ToAbsl(author));
  }
  if (violations.empty()) return absl::OkStatus();
  return QuotaExceeded(absl::StrCat("too many active runs: ", absl::StrJoin(reasons, "; "),
                                    "; wait for one to finish or cancel one"),
                       violations);
}

}  // namespace qai::orchestrator

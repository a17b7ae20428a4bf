#pragma once
// Run settings: what a prompt may ask of its agent run (the model, the iteration limit, the
// timeout) and the bounds an operator sets on them. qai-messages checks a CreateMessage's
// settings against them so the caller hears of a bad one at once; qai-orchestrator checks
// StartRun's again and fills in the defaults. Both read the same variables (one ConfigMap).
//
//   std::vector<common::Option> options = {...};   // plus RunSettingsOptions() and
//   DefaultModelOptions() auto base = ServiceBase::Init("messages", argc, argv,
//   std::move(options)); absl::StatusOr<RunBounds> bounds = RunBoundsFrom((*base)->config());
//   ...
//   common::FieldViolations bad;
//   RunSettings settings = CheckRunSettings(*bounds, {.max_iterations = req.max_iterations(), ...},
//                                           {.timeout = "run_timeout"}, bad);
//   QAI_RETURN_IF_ERROR(bad.ToStatus());
//
// Both services also enforce the caps on runs queued or running at once (RunCaps):
// CheckActiveRuns says whether one more run fits, with the same RESOURCE_EXHAUSTED from both.
//
// A run's default model is the provider's configured one (QAI_OPENAI_MODEL with
// QAI_MODEL_PROVIDER=openai, "builtin" for the builtin provider); it is always allowed, and so
// is any model QAI_MODEL_ALLOWED names.

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "google/protobuf/duration.pb.h"

namespace qai::orchestrator {

// The most iterations any run may have, whatever the configuration says.
inline constexpr int kRunIterationsLimit = 50;
// The iterations a run gets when it asks for no number (lowered to the bound when that is less).
inline constexpr int kRunDefaultIterations = 15;
// The shortest timeout a run may ask for.
inline constexpr absl::Duration kRunMinTimeout = absl::Seconds(1);
// The model name of the builtin provider, its default.
inline constexpr char kBuiltinModel[] = "builtin";

// The largest value the caps may be set to.
inline constexpr int64_t kRunCapLimit = 100000;

// RunCaps: the most runs that may be QUEUED or RUNNING at once for one project, and for one
// principal (the author of the prompts, over all their projects). 0 is no cap.
struct RunCaps {
  int64_t per_project = 5;
  int64_t per_principal = 20;
};

// ActiveRuns: how many runs are queued or running (or on their way: a prompt whose StartRun
// is not delivered yet) for a project and for a principal.
struct ActiveRuns {
  int64_t project = 0;
  int64_t principal = 0;
};

// RunBounds: the operator's bounds on run settings, and the defaults within them.
struct RunBounds {
  int max_iterations = kRunIterationsLimit;
  absl::Duration default_timeout = absl::Minutes(30);
  absl::Duration max_timeout = absl::Hours(2);
  std::string default_model = kBuiltinModel;
  std::set<std::string> allowed_models;  // besides the default
  RunCaps caps;
  // DefaultIterations: what a run gets when it asks for no number.
  int DefaultIterations() const;
};

// RunSettings: one run's settings, defaults filled in.
struct RunSettings {
  int max_iterations = kRunDefaultIterations;
  std::string model;
  absl::Duration timeout;
};

// RequestedRunSettings: the settings as a request gives them: 0, "" and no timeout (nullptr)
// ask for the defaults.
struct RequestedRunSettings {
  int max_iterations = 0;
  std::string_view model;
  const google::protobuf::Duration* timeout = nullptr;
};

// RunSettingFields: what a request calls each setting, for the violations.
struct RunSettingFields {
  std::string_view max_iterations = "max_iterations";
  std::string_view model = "model";
  std::string_view timeout = "timeout";
};

// DefaultModelOptions: model-provider and openai-model: which provider runs use and its
// default model (the orchestrator uses them; the messages service reads the default's name).
std::vector<common::Option> DefaultModelOptions();

// RunSettingsOptions: run-max-iterations, run-timeout, run-max-timeout, model-allowed,
// run-max-active-per-project and run-max-active-per-principal.
std::vector<common::Option> RunSettingsOptions();

// RunBoundsFrom: the bounds a configuration with both option sets above describes;
// INVALID_ARGUMENT naming the option when they contradict each other (a default timeout above
// the maximum).
[[nodiscard]] absl::StatusOr<RunBounds> RunBoundsFrom(const common::Config& config);

// CheckRunSettings: the settings `requested` resolves to within `bounds`; each bad one is added
// to `bad` under its name in `fields` (the result is then meaningless).
RunSettings CheckRunSettings(const RunBounds& bounds, const RequestedRunSettings& requested,
                             const RunSettingFields& fields, common::FieldViolations& bad);

// CheckActiveRuns: OK when one more run of `project_id` by `author` stays within `caps`, given
// the runs `active` now. Otherwise RESOURCE_EXHAUSTED naming each cap reached (its variable and
// value) in the message and in a google.rpc.QuotaFailure detail, one violation per cap, with
// subject "project:<id>" or "principal:<author>". An empty author counts against no principal.
[[nodiscard]] absl::Status CheckActiveRuns(const RunCaps& caps, std::string_view project_id,
                                           std::string_view author, const ActiveRuns& active);

}  // namespace qai::orchestrator

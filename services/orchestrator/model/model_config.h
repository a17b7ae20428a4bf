#pragma once
// The model provider's configuration: its options (for the orchestrator's flags) and the
// provider they describe, checked as a whole at start-up.
//
//   auto base = ServiceBase::Init("orchestrator", argc, argv, {...ModelOptions()...});
//   absl::StatusOr<std::unique_ptr<Model>> model = MakeModel((*base)->config());
//
// `--model-provider=builtin` (default) needs nothing else. `--model-provider=openai` needs
// --openai-base-url and --openai-model; --openai-api-key (a secret, never printed) is optional,
// for local servers that want none.

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

// ModelOptions: model-provider and openai-model (orchestrator::DefaultModelOptions, which the
// messages service reads too), openai-base-url, openai-api-key, openai-stream, openai-timeout
// and model-max-retries.
std::vector<common::Option> ModelOptions();

// MakeModel: the configured provider; INVALID_ARGUMENT naming the missing option when the
// options do not describe one.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Model>> MakeModel(const common::Config& config);

}  // namespace qai::orchestrator

#pragma once
// MeteredModel: a Model that passes every call on to another and reports the token usage of
// each reply, so a run's worker can account for every call it makes (the agent's turns and
// the title and response that follow).
//
//   MeteredModel model(&provider, [&](const TokenUsage& usage) { ... store it ... });
//   RunAgent(input, model, ...);

#include <functional>
#include <string>
#include <vector>

#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

class MeteredModel : public Model {
 public:
  using Record = std::function<void(const TokenUsage& usage)>;
  // `inner` must outlive this; `record` is called for every reply with a usage.
  MeteredModel(Model* inner, Record record) : inner_(inner), record_(std::move(record)) {}

  std::string name() const override { return inner_->name(); }
  [[nodiscard]] absl::StatusOr<ModelReply> Complete(const std::vector<ChatMessage>& conversation,
                                                    const std::vector<ToolSpec>& tools) override {
    return Meter(inner_->Complete(conversation, tools));
  }
  [[nodiscard]] absl::StatusOr<ModelReply> Stream(const std::vector<ChatMessage>& conversation,
                                                  const std::vector<ToolSpec>& tools,
                                                  ModelObserver& observer) override {
    return Meter(inner_->Stream(conversation, tools, observer));
  }

 private:
  absl::StatusOr<ModelReply> Meter(absl::StatusOr<ModelReply> reply) {
    if (reply.ok() && !reply->usage.empty()) record_(reply->usage);
    return reply;
  }

  Model* const inner_;
  const Record record_;
};

}  // namespace qai::orchestrator

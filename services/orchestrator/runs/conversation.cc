#include "services/orchestrator/runs/conversation.h"

#include "absl/strings/str_cat.h"

namespace qai::orchestrator {

std::vector<ChatMessage> ChatTurns(const std::vector<messages::v1::Message>& messages) {
  std::vector<ChatMessage> turns;
  turns.reserve(messages.size());
  for (const messages::v1::Message& m : messages) {
    ChatMessage turn;
    turn.content = m.content();
    if (m.role() == messages::v1::Message::ROLE_USER) {
      turn.role = ChatMessage::Role::kUser;
    } else {
      turn.role = ChatMessage::Role::kAssistant;
      if (m.has_fragment() && !m.fragment().summary().empty()) {
        absl::StrAppend(&turn.content, "\n<task_summary>", m.fragment().summary(),
                        "</task_summary>");
      }
    }
    turns.push_back(std::move(turn));
  }
  return turns;
}

}  // namespace qai::orchestrator

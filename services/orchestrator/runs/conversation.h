#pragma once
// ChatTurns: a project's earlier messages as the conversation turns a run's model reads: a
// USER message is the user's turn, any other the assistant's; an ASSISTANT message with a
// fragment brings its summary along, so the model knows what exists.
//
//   QAI_ASSIGN_OR_RETURN(std::vector<messages::v1::Message> before, messages.Before(...));
//   std::vector<ChatMessage> history = ChatTurns(before);

#include <vector>

#include "qai/messages/v1/messages.pb.h"
#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

std::vector<ChatMessage> ChatTurns(const std::vector<messages::v1::Message>& messages);

}  // namespace qai::orchestrator

// Fuzzes a tool call's arguments as the model writes them, for each of the agent's tools: the
// first byte picks the tool, the rest is the arguments' text. Whatever they hold, the answer is
// arguments the tool can run or a message for the model.

#include <cstddef>
#include <cstdint>
#include <string>
#include <variant>

#include "services/orchestrator/agent/tool_args.h"
#include "services/orchestrator/model/prompts.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  static const char* const kTools[] = {qai::orchestrator::kToolTerminal,
                                       qai::orchestrator::kToolWriteFiles,
                                       qai::orchestrator::kToolReadFiles, "unknownTool"};
  constexpr size_t kMaxCommandBytes = 4096;
  const qai::orchestrator::ToolCall call{
      .id = "call_1",
      .name = kTools[data[0] % 4],
      .arguments_json = std::string(reinterpret_cast<const char*>(data) + 1, size - 1),
  };
  const auto args = qai::orchestrator::ParseToolArgs(call, kMaxCommandBytes);
  if (const auto* terminal = std::get_if<qai::orchestrator::TerminalArgs>(&args)) {
    const std::string& command = terminal->command;
    if (command.empty() || command.size() > kMaxCommandBytes ||
        command.find('\0') != std::string::npos) {
      __builtin_trap();
    }
  }
  if (const auto* error = std::get_if<qai::orchestrator::ToolArgsError>(&args);
      error && error->message.empty()) {
    __builtin_trap();
  }
  return 0;
}

#pragma once
// The prompts and tool definitions of the agent, shared by the agent loop and the providers.
//
// Three conversations use a model: the agent itself (kAgentSystemPrompt, with the tools), the
// title of a fragment (kTitleSystemPrompt) and the friendly answer shown to the user
// (kResponseSystemPrompt); the last two get the agent's task summary as their user message.

#include <vector>

#include "services/orchestrator/model/model.h"

namespace qai::orchestrator {

inline constexpr char kAgentSystemPrompt[] =
    "You are a senior software engineer working in a sandboxed project workspace.\n"
    "Build what the user asks for as a small website whose entry point is index.html at the\n"
    "workspace root (plain HTML, CSS and JavaScript; no build step). Use the tools:\n"
    "- terminal {command}: run a shell command in the workspace;\n"
    "- createOrUpdateFiles {files: [{path, content}]}: write files (paths relative to the "
    "workspace);\n"
    "- readFiles {files: [path]}: read files.\n"
    "The workspace keeps the files of earlier requests: read them before changing them.\n"
    "When the work is complete, answer with a short description wrapped exactly as\n"
    "<task_summary>what you built or changed</task_summary> and call no more tools.";

inline constexpr char kTitleSystemPrompt[] =
    "You write titles. Given a summary of a website an engineer built, answer with a title of\n"
    "at most 3 words, in title case, with no punctuation and nothing else.";

inline constexpr char kResponseSystemPrompt[] =
    "You are the friendly assistant of a website builder. Given a summary of what was built,\n"
    "tell the user in 1 to 3 casual sentences what you made for them. No markdown, no code.";

inline constexpr char kToolTerminal[] = "terminal";
inline constexpr char kToolWriteFiles[] = "createOrUpdateFiles";
inline constexpr char kToolReadFiles[] = "readFiles";

// AgentTools: the three tools with their JSON-schema parameters.
inline std::vector<ToolSpec> AgentTools() {
  return {
      {kToolTerminal, "Run a shell command in the project workspace and get its output.",
       R"({"type":"object","properties":{"command":{"type":"string"}},"required":["command"]})"},
      {kToolWriteFiles, "Create or update files in the project workspace.",
       R"({"type":"object","properties":{"files":{"type":"array","items":{"type":"object",)"
       R"("properties":{"path":{"type":"string"},"content":{"type":"string"}},"required":["path","content"]}}},)"
       R"("required":["files"]})"},
      {kToolReadFiles, "Read files from the project workspace.",
       R"({"type":"object","properties":{"files":{"type":"array","items":{"type":"string"}}},"required":["files"]})"},
  };
}

}  // namespace qai::orchestrator

#pragma once
// Parsing JSON that comes from outside (a token, a model endpoint, a tool call's arguments).
//
// nlohmann's parser itself copes with any nesting, but copying, comparing or dumping a document
// recurses once per level: a tool call's arguments nested 100,000 deep overflow the stack. So
// such a document is refused before it is parsed.
//
//   nlohmann::json args = ParseUntrustedJson(call.arguments_json);
//   if (!args.is_object()) ... not JSON, too deep, or not an object: say so

#include <nlohmann/json.hpp>
#include <string_view>

namespace qai::common {

// No QAI document nests nearly this deep; a model's tool arguments get plenty of room.
inline constexpr int kMaxUntrustedJsonDepth = 100;

// JsonNestedDeeperThan: whether text (JSON, or something like it) opens more than max_depth
// arrays and objects inside each other, strings aside. Linear, no allocation.
bool JsonNestedDeeperThan(std::string_view text, int max_depth);

// ParseUntrustedJson: the document, or a discarded value when text is not JSON or nests deeper
// than max_depth.
nlohmann::json ParseUntrustedJson(std::string_view text, int max_depth = kMaxUntrustedJsonDepth);

}  // namespace qai::common

#pragma once
// What a prompt is about, in words: the pieces of text the builtin model reads a request with.
// Pure functions, so the builtin model stays deterministic.
//
//   SubjectWords("Build a landing page for a coffee shop")   // {"coffee", "shop"}
//   TitleCase({"coffee", "shop"})                             // "Coffee Shop"
//   Words("To-do “lists”!")                                   // {"To", "do", "lists"}

#include <string>
#include <string_view>
#include <vector>

namespace qai::orchestrator {

// The subject of a request that names none.
inline constexpr char kFallbackSubject[] = "My Website";

// Words: the runs of letters and digits in text, in any script; punctuation, symbols and emoji
// separate them ("To-do “lists”!" -> "To", "do", "lists").
std::vector<std::string> Words(std::string_view text);

// Normalized: the text's words, lower-cased, joined and framed by single spaces (" a b "), for
// matching whole words and phrases.
std::string Normalized(std::string_view text);

// TitleCase: "coffee shop" -> "Coffee Shop"; words already spelt with capitals ("ACME",
// "iPhone") stay as written; short joining words stay small after the first.
std::string TitleCase(const std::vector<std::string>& words);

// SubjectWords: the words of what the request is about (at most six); empty when it names
// nothing. Leading requests and verbs ("please build", "make me"), articles, "landing page
// for" and trailing clauses ("with ...") are dropped.
std::vector<std::string> SubjectWords(std::string_view request);

}  // namespace qai::orchestrator

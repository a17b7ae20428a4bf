#include "services/orchestrator/model/prompt_subject.h"

#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/strings.h"
#include "common/utf8.h"

namespace qai::orchestrator {
namespace {

using common::ToAbsl;

constexpr size_t kMaxSubjectWords = 6;

std::string Lower(std::string_view text) { return absl::AsciiStrToLower(ToAbsl(text)); }

// Token: a whitespace-separated word without the punctuation around it; `ends_clause` when a
// comma, colon or semicolon followed it ("a coffee shop: menu, prices").
struct Token {
  std::string text;
  bool ends_clause = false;
};

std::vector<Token> Tokens(std::string_view text) {
  static constexpr std::string_view kAsciiPunct = ".,;:!?\"'()[]{}*`";
  static constexpr std::string_view kQuotes[] = {"\xE2\x80\x9C", "\xE2\x80\x9D", "\xE2\x80\x98",
                                                 "\xE2\x80\x99"};
  std::vector<Token> out;
  for (absl::string_view raw :
       absl::StrSplit(ToAbsl(text), absl::ByAnyChar(" \t\r\n\v\f"), absl::SkipEmpty())) {
    std::string_view t(raw.data(), raw.size());
    const bool ends_clause = t.ends_with(",") || t.ends_with(":") || t.ends_with(";");
    bool changed = true;
    while (changed && !t.empty()) {
      changed = false;
      if (kAsciiPunct.find(t.front()) != std::string_view::npos) t.remove_prefix(1), changed = true;
      if (!t.empty() && kAsciiPunct.find(t.back()) != std::string_view::npos)
        t.remove_suffix(1), changed = true;
      for (std::string_view q : kQuotes) {
        if (t.starts_with(q)) t.remove_prefix(q.size()), changed = true;
        if (t.ends_with(q)) t.remove_suffix(q.size()), changed = true;
      }
    }
    if (!t.empty()) out.push_back({std::string(t), ends_clause});
  }
  return out;
}

// FirstSentence: text up to the first line break or sentence end ("example.com" is no end).
std::string_view FirstSentence(std::string_view text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') return text.substr(0, i);
    if ((c == '.' || c == '!' || c == '?') &&
        (i + 1 == text.size() || absl::ascii_isspace(text[i + 1]))) {
      // Only once there is something before it: "... for a coffee shop."
      if (i > 0) return text.substr(0, i);
    }
  }
  return text;
}

bool In(const std::set<std::string_view>& words, const std::string& token) {
  return words.count(Lower(token)) > 0;
}

}  // namespace

std::vector<std::string> Words(std::string_view text) {
  std::vector<std::string> out;
  std::string word;
  for (size_t i = 0; i < text.size();) {
    const auto c = static_cast<unsigned char>(text[i]);
    size_t len = c < 0x80           ? 1
                 : (c >> 5) == 0x6  ? 2
                 : (c >> 4) == 0xe  ? 3
                 : (c >> 3) == 0x1e ? 4
                                    : 1;
    len = std::min(len, text.size() - i);
    uint32_t cp = len == 1 ? c : c & (0x7f >> len);
    for (size_t k = 1; k < len; ++k)
      cp = (cp << 6) | (static_cast<unsigned char>(text[i + k]) & 0x3f);
    const bool letter =
        c < 0x80 ? absl::ascii_isalnum(c)
                 : cp >= 0xC0 && cp != 0xD7 && cp != 0xF7 &&  // × ÷
                       !(cp >= 0x2000 && cp <= 0x2BFF) &&  // punctuation, symbols, arrows, shapes
                       !(cp >= 0x3000 && cp <= 0x303F) &&  // CJK punctuation
                       !(cp >= 0xFE30 && cp <= 0xFE4F) && !(cp >= 0xFF00 && cp <= 0xFF0F) &&
                       cp != 0xFFFD && cp < 0x1F000;  // emoji and pictographs
    if (letter) {
      word.append(text.substr(i, len));
    } else if (!word.empty()) {
      out.push_back(std::move(word));
      word.clear();
    }
    i += len;
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

// Normalized: lowercase words separated by single spaces, padded with one space each side, so
// " to do " finds "To-do" and " form " does not find "format".
std::string Normalized(std::string_view text) {
  return absl::StrCat(" ", Lower(absl::StrJoin(Words(text), " ")), " ");
}

// TitleCase: "coffee shop" -> "Coffee Shop"; words already spelt with capitals ("ACME",
// "iPhone") stay as written; short joining words stay small after the first.
std::string TitleCase(const std::vector<std::string>& words) {
  static const std::set<std::string_view> kSmall = {"a",  "an", "and", "at", "by",  "for",
                                                    "in", "of", "on",  "or", "the", "to"};
  std::vector<std::string> out;
  for (size_t i = 0; i < words.size(); ++i) {
    std::string w = words[i];
    const bool lower = std::none_of(w.begin(), w.end(), [](char c) {
      return absl::ascii_isupper(static_cast<unsigned char>(c));
    });
    if (lower && !(i > 0 && In(kSmall, w)))
      w[0] = absl::ascii_toupper(static_cast<unsigned char>(w[0]));
    out.push_back(std::move(w));
  }
  return absl::StrJoin(out, " ");
}

// SubjectWords: the words of what the request is about; empty when it names nothing.
std::vector<std::string> SubjectWords(std::string_view request) {
  // What people put before the thing they want.
  static const std::set<std::string_view> kLead = {
      "please",   "pls",        "can",          "could",     "would",   "will",       "you",
      "u",        "i",          "i'd",          "id",        "we",      "we'd",       "want",
      "wanna",    "need",       "like",         "love",      "to",      "let's",      "lets",
      "me",       "us",         "for",          "build",     "create",  "make",       "generate",
      "design",   "write",      "develop",      "code",      "craft",   "produce",    "put",
      "together", "set",        "up",           "add",       "give",    "show",       "implement",
      "change",   "update",     "improve",      "modify",    "adjust",  "tweak",      "include",
      "insert",   "also",       "now",          "then",      "and",     "another",    "a",
      "an",       "the",        "my",           "our",       "your",    "some",       "simple",
      "small",    "basic",      "nice",         "beautiful", "modern",  "cool",       "clean",
      "new",      "quick",      "little",       "single",    "one",     "responsive", "static",
      "minimal",  "minimalist", "pretty",       "fancy",     "stylish", "elegant",    "sleek",
      "great",    "good",       "professional", "awesome",   "amazing", "colorful",   "colourful"};
  static const std::set<std::string_view> kArticles = {"a",   "an",   "the",  "my",
                                                       "our", "your", "this", "that"};
  // Kinds of page: "landing page for X" is about X.
  static const std::set<std::string_view> kPageWords = {
      "landing",   "page", "pages",     "website",    "websites", "web", "site",
      "homepage",  "home", "webpage",   "one-page",   "onepage",  "app", "application",
      "portfolio", "blog", "dashboard", "storefront", "tool"};
  // Page words that say nothing at the end of a subject ("coffee shop landing page").
  static const std::set<std::string_view> kTrailing = {
      "landing", "page", "pages", "website", "site", "homepage", "webpage", "one-page", "onepage"};
  static const std::set<std::string_view> kStops = {
      "with", "that", "which", "where", "who",   "using",   "including",  "featuring", "and",
      "to",   "in",   "on",    "so",    "but",   "showing", "containing", "having",    "plus",
      "&",    "-",    "–",     "—",     "where", "from",    "at",         "like"};
  static const std::set<std::string_view> kAbout = {"for", "about"};

  const std::vector<Token> tokens = Tokens(FirstSentence(request));
  size_t start = 0;
  while (start < tokens.size() && In(kLead, tokens[start].text)) ++start;
  // The first clause after the lead: "for a coffee shop, with ..." ends at "shop".
  std::vector<std::string> words;
  for (size_t i = start; i < tokens.size(); ++i) {
    words.push_back(tokens[i].text);
    if (tokens[i].ends_clause) break;
  }

  auto tidy = [&](std::vector<std::string> w) {
    size_t from = 0;
    while (from < w.size() && In(kArticles, w[from])) ++from;
    w.erase(w.begin(), w.begin() + static_cast<long>(from));
    for (size_t i = 1; i < w.size(); ++i) {
      if (In(kStops, w[i])) {
        w.resize(i);
        break;
      }
    }
    if (!w.empty() && In(kStops, w[0])) w.clear();
    while (w.size() > 1 && In(kTrailing, w.back())) w.pop_back();
    if (w.size() == 1 && In(kTrailing, w[0])) w.clear();
    if (w.size() > kMaxSubjectWords) w.resize(kMaxSubjectWords);
    return w;
  };

  // "landing page for a coffee shop", "a website about cats"
  for (size_t i = 0; i < words.size(); ++i) {
    if (!In(kAbout, words[i])) continue;
    const bool page_before = std::all_of(words.begin(), words.begin() + static_cast<long>(i),
                                         [&](const std::string& w) { return In(kPageWords, w); });
    if (page_before)
      return tidy(std::vector<std::string>(words.begin() + static_cast<long>(i) + 1, words.end()));
    break;
  }
  std::vector<std::string> subject = tidy(words);
  if (!subject.empty()) return subject;
  // "a landing page with a menu for a bakery": the part after "for".
  for (size_t i = 0; i < words.size(); ++i) {
    if (In(kAbout, words[i]))
      return tidy(std::vector<std::string>(words.begin() + static_cast<long>(i) + 1, words.end()));
  }
  return {};
}

}  // namespace qai::orchestrator

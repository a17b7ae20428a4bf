#include "services/orchestrator/model/builtin_site.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <set>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/strings.h"
#include "common/utf8.h"
#include "services/orchestrator/model/builtin_site_assets.h"
#include "services/orchestrator/model/prompt_subject.h"

namespace qai::orchestrator {
using common::ToValidUtf8;
using common::TruncateUtf8;
namespace {

using common::ToAbsl;

std::string Lower(std::string_view text) { return absl::AsciiStrToLower(ToAbsl(text)); }

// Markers in the pages the builtin writes (builtin_site/page.html): where a later request adds
// its sections and links.
constexpr char kSectionsEnd[] = "<!-- qai:sections-end -->";
constexpr char kNavEnd[] = "<!-- qai:nav-end -->";

// StripDirectives: the request without the builtin's [[test directives]].
std::string StripDirectives(std::string_view text) {
  std::string out;
  while (true) {
    const size_t open = text.find("[[");
    const size_t close = open == std::string_view::npos ? open : text.find("]]", open + 2);
    if (close == std::string_view::npos) break;
    out.append(text.substr(0, open));
    text.remove_prefix(close + 2);
  }
  out.append(text);
  return std::string(absl::StripAsciiWhitespace(out));
}

// PlainText: text for a summary, which is plain text inside <task_summary> tags.
std::string PlainText(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c != '<' && c != '>') out += c;
  }
  return out;
}

std::string JoinLabels(const std::vector<std::string>& labels) {
  if (labels.size() <= 1) return labels.empty() ? "" : labels[0];
  return absl::StrCat(absl::StrJoin(labels.begin(), labels.end() - 1, ", "), " and ",
                      labels.back());
}

std::string IndefiniteArticle(std::string_view word) {
  return !word.empty() && absl::StrContains("aeiouAEIOU", word[0]) ? "an" : "a";
}

// ---------------------------------------------------------------------------------------------
// Sections

enum class Kind {
  kFeatures,
  kAbout,
  kMenu,
  kGallery,
  kPricing,
  kTestimonials,
  kBlog,
  kTodo,
  kCounter,
  kCalculator,
  kContact
};

struct KindInfo {
  Kind kind;
  const char* id;
  const char* label;
  bool tool;    // the page's point is this widget (a to-do app): no filler sections around it
  bool script;  // needs app.js
  std::vector<const char*> keywords;
};

// Kinds: every section kind, in the order sections appear on a page.
const std::vector<KindInfo>& Kinds() {
  static const auto* kinds = new std::vector<KindInfo>{
      {Kind::kFeatures,
       "features",
       "Features",
       false,
       false,
       {"feature", "features", "services", "benefits"}},
      {Kind::kAbout,
       "about",
       "About",
       false,
       false,
       {"about", "story", "team", "mission", "history"}},
      {Kind::kMenu,
       "menu",
       "Menu",
       false,
       false,
       {"menu", "prices", "price list", "coffee", "cafe", "café", "restaurant", "bakery",
        "pizzeria", "pizza", "bistro", "bar", "food", "drinks", "dishes", "tea"}},
      {Kind::kGallery,
       "gallery",
       "Gallery",
       false,
       false,
       {"gallery", "photos", "photo", "pictures", "images", "portfolio", "photography",
        "photographer"}},
      {Kind::kPricing,
       "pricing",
       "Pricing",
       false,
       false,
       {"pricing", "plans", "subscription", "subscriptions", "tiers", "saas"}},
      {Kind::kTestimonials,
       "testimonials",
       "Reviews",
       false,
       false,
       {"testimonial", "testimonials", "reviews", "review", "quotes"}},
      {Kind::kBlog, "blog", "Blog", false, false, {"blog", "posts", "articles", "news"}},
      {Kind::kTodo,
       "todo",
       "To-do list",
       true,
       true,
       {"todo", "todos", "to do", "task list", "tasks", "checklist"}},
      {Kind::kCounter, "counter", "Counter", true, true, {"counter", "tally"}},
      {Kind::kCalculator, "calculator", "Calculator", true, true, {"calculator", "calc"}},
      {Kind::kContact,
       "contact",
       "Contact",
       false,
       true,
       {"contact", "form", "email", "newsletter", "signup", "sign up", "booking", "reservation",
        "reservations"}},
  };
  return *kinds;
}

const KindInfo& Info(Kind kind) { return Kinds()[static_cast<size_t>(kind)]; }

// KindsIn: the kinds whose keywords the request names, in page order.
std::vector<Kind> KindsIn(std::string_view request) {
  const std::string text = Normalized(request);
  std::vector<Kind> out;
  for (const KindInfo& info : Kinds()) {
    for (const char* keyword : info.keywords) {
      if (absl::StrContains(text, absl::StrCat(" ", keyword, " "))) {
        out.push_back(info.kind);
        break;
      }
    }
  }
  return out;
}

// Filled: the template builtin_site/<path> with its {{placeholders}} replaced, in one pass (what
// is filled in is not read again, so a subject that spells a placeholder stays as it is).
std::string Filled(
    std::string_view path,
    std::initializer_list<std::pair<absl::string_view, absl::string_view>> placeholders) {
  return absl::StrReplaceAll(ToAbsl(BuiltinSiteAsset(path)), placeholders);
}

// SectionHtml: one section's markup, builtin_site/sections/<id>.html; `s` is the escaped subject.
std::string SectionHtml(Kind kind, const std::string& s) {
  return Filled(absl::StrCat("sections/", Info(kind).id, ".html"), {{"{{subject}}", s}});
}

// NoteSection: a follow-up that names no known section gets one with its own words.
std::string NoteSection(const std::string& id, const std::string& heading,
                        const std::string& request) {
  return absl::StrCat("    <section id=\"", id, "\" class=\"block\">\n      <h2>",
                      HtmlEscape(heading), "</h2>\n      <p>", HtmlEscape(request),
                      "</p>\n    </section>\n");
}

std::string NavLink(const std::string& id, const std::string& label) {
  return absl::StrCat("      <a href=\"#", id, "\">", HtmlEscape(label), "</a>\n");
}

// The stylesheet and the script are the same for every page: each part of the script starts only
// when its markup is there.
std::string Styles() { return std::string(BuiltinSiteAsset("styles.css")); }
std::string Script() { return std::string(BuiltinSiteAsset("app.js")); }

// ---------------------------------------------------------------------------------------------
// Pages

bool NeedsScript(const std::vector<Kind>& kinds) {
  return std::any_of(kinds.begin(), kinds.end(), [](Kind k) { return Info(k).script; });
}

// PageNoun: what the request calls the page, for the summary.
std::string PageNoun(std::string_view request) {
  const std::string text = Normalized(request);
  if (absl::StrContains(text, " landing ")) return "landing page";
  for (const char* w : {" website ", " site ", " homepage ", " web page "}) {
    if (absl::StrContains(text, w)) return "website";
  }
  return "page";
}

// FreshKinds: the sections of a new page. A tool (a to-do list, a calculator) stands alone;
// otherwise there are at least three sections.
std::vector<Kind> FreshKinds(std::string_view request) {
  std::vector<Kind> kinds = KindsIn(request);
  const bool tool = std::any_of(kinds.begin(), kinds.end(), [](Kind k) { return Info(k).tool; });
  for (Kind filler : {Kind::kAbout, Kind::kContact, Kind::kFeatures}) {
    if (tool || kinds.size() >= 3) break;
    if (std::find(kinds.begin(), kinds.end(), filler) == kinds.end()) kinds.push_back(filler);
  }
  std::sort(kinds.begin(), kinds.end());
  return kinds;
}

std::string FreshPage(const std::string& subject, const std::vector<Kind>& kinds) {
  const std::string s = HtmlEscape(subject);
  const bool tool = std::any_of(kinds.begin(), kinds.end(), [](Kind k) { return Info(k).tool; });
  const bool contact = std::find(kinds.begin(), kinds.end(), Kind::kContact) != kinds.end();
  std::string nav, sections;
  for (Kind k : kinds) {
    absl::StrAppend(&nav, NavLink(Info(k).id, Info(k).label));
    absl::StrAppend(&sections, SectionHtml(k, s));
  }
  const std::string first = kinds.empty() ? "top" : Info(kinds.front()).id;
  const std::string cta =
      tool      ? absl::StrCat("<a class=\"button\" href=\"#", first, "\">Get started</a>")
      : contact ? "<a class=\"button\" href=\"#contact\">Get in touch</a>"
                : absl::StrCat("<a class=\"button\" href=\"#", first, "\">Learn more</a>");
  const std::string lead =
      tool ? "Everything runs right here in your browser, and your data stays on this device."
           : absl::StrCat("Welcome to ", s,
                          ". Take a look around, and say hello whenever you like.");
  return Filled(
      "page.html",
      {{"{{subject}}", s},
       {"{{nav}}", nav},
       {"{{eyebrow}}", tool ? "Works in your browser" : "Welcome"},
       {"{{lead}}", lead},
       {"{{cta}}", cta},
       {"{{sections}}", sections},
       {"{{script}}", NeedsScript(kinds) ? "  <script src=\"app.js\" defer></script>\n" : ""}});
}

// FindCaseless: the position of the last (or first) `needle` in html, ignoring ASCII case.
size_t FindCaseless(const std::string& html, std::string_view needle, bool last) {
  const std::string lower = Lower(html);
  return last ? lower.rfind(needle) : lower.find(needle);
}

// InsertBeforeLine: text inserted at the start of the line that holds `pos` when only
// indentation precedes it there, so the insert keeps the page's layout.
void InsertBeforeLine(std::string& html, size_t pos, std::string_view text) {
  size_t at = pos;
  while (at > 0 && (html[at - 1] == ' ' || html[at - 1] == '\t')) --at;
  if (at > 0 && html[at - 1] != '\n') at = pos;
  html.insert(at, text);
}

std::set<std::string> IdsIn(const std::string& html) {
  std::set<std::string> ids;
  for (size_t pos = html.find("id=\""); pos != std::string::npos;
       pos = html.find("id=\"", pos + 4)) {
    const size_t end = html.find('"', pos + 4);
    if (end == std::string::npos) break;
    ids.insert(html.substr(pos + 4, end - pos - 4));
  }
  return ids;
}

size_t CountCaseless(const std::string& html, std::string_view needle) {
  const std::string lower = Lower(html);
  size_t n = 0;
  for (size_t pos = lower.find(needle); pos != std::string::npos; pos = lower.find(needle, pos + 1))
    ++n;
  return n;
}

// TitleOf: the text of the page's <title>, entities undone, or "".
std::string TitleOf(const std::string& html) {
  const size_t open = FindCaseless(html, "<title>", false);
  if (open == std::string::npos) return "";
  const size_t close = Lower(html).find("</title>", open);
  if (close == std::string::npos) return "";
  std::string title = html.substr(open + 7, close - open - 7);
  title = absl::StrReplaceAll(
      title, {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}, {"&amp;", "&"}});
  return std::string(absl::StripAsciiWhitespace(title));
}

std::string Slug(std::string_view text) {
  std::string slug;
  for (char c : text) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      slug += absl::ascii_tolower(static_cast<unsigned char>(c));
    } else if (!slug.empty() && slug.back() != '-') {
      slug += '-';
    }
    if (slug.size() >= 40) break;
  }
  while (!slug.empty() && slug.back() == '-') slug.pop_back();
  return slug.empty() ? "update" : slug;
}

SitePlan NewSite(const std::string& request) {
  std::vector<std::string> words = SubjectWords(request);
  const std::string subject = words.empty() ? kFallbackSubject : TitleCase(words);
  const std::vector<Kind> kinds = FreshKinds(request);
  SitePlan plan;
  plan.files.push_back({"index.html", FreshPage(subject, kinds)});
  plan.files.push_back({"styles.css", Styles()});
  if (NeedsScript(kinds)) plan.files.push_back({"app.js", Script()});
  std::vector<std::string> labels, paths;
  for (Kind k : kinds) labels.emplace_back(Info(k).label);
  for (const SiteFile& f : plan.files) paths.push_back(f.path);
  const std::string shown = PlainText(subject);
  plan.summary = absl::StrCat("Built ", IndefiniteArticle(shown), " ", shown, " ",
                              PageNoun(request), " with ", labels.size() == 1 ? "a " : "",
                              JoinLabels(labels), labels.size() == 1 ? " section" : " sections",
                              " (", absl::StrJoin(paths, ", "), ").");
  return plan;
}

SitePlan ExtendSite(const std::string& request, std::string html) {
  const bool ours = absl::StrContains(html, kSectionsEnd);
  const std::string css = ours ? "styles.css" : "qai-builtin.css";
  const std::string js = ours ? "app.js" : "qai-builtin.js";
  const std::string old_subject = PlainText(TitleOf(html));
  const size_t old_sections = CountCaseless(html, "<section");
  const std::set<std::string> ids = IdsIn(html);

  std::vector<Kind> kinds;
  for (Kind k : KindsIn(request)) {
    if (!ids.count(Info(k).id)) kinds.push_back(k);
  }
  // The page's own subject goes into sections that name it.
  const std::string s =
      HtmlEscape(old_subject.empty() ? std::string(kFallbackSubject) : old_subject);
  std::string sections, nav;
  std::vector<std::string> labels;
  for (Kind k : kinds) {
    absl::StrAppend(&sections, SectionHtml(k, s));
    absl::StrAppend(&nav, NavLink(Info(k).id, Info(k).label));
    labels.emplace_back(Info(k).label);
  }
  if (kinds.empty()) {
    std::vector<std::string> words = SubjectWords(request);
    const std::string heading = words.empty() ? "Update" : TitleCase(words);
    std::string id = Slug(heading);
    for (int n = 2; ids.count(id); ++n) id = absl::StrCat(Slug(heading), "-", n);
    absl::StrAppend(&sections, NoteSection(id, heading, request));
    absl::StrAppend(&nav, NavLink(id, heading));
    labels.push_back(PlainText(heading));
  }
  if (!ours && FindCaseless(html, absl::StrCat("href=\"", css, "\""), false) == std::string::npos) {
    const std::string link = absl::StrCat("  <link rel=\"stylesheet\" href=\"", css, "\">\n");
    const size_t head_end = FindCaseless(html, "</head>", false);
    if (head_end != std::string::npos) {
      InsertBeforeLine(html, head_end, link);
    } else {
      sections.insert(0, link);
    }
  }
  if (ours) {
    if (const size_t at = html.find(kNavEnd); at != std::string::npos)
      InsertBeforeLine(html, at, nav);
    InsertBeforeLine(html, html.find(kSectionsEnd), sections);
  } else {
    size_t at = FindCaseless(html, "</main>", true);
    if (at == std::string::npos) at = FindCaseless(html, "</body>", true);
    if (at == std::string::npos) at = FindCaseless(html, "</html>", true);
    if (at == std::string::npos) at = html.size();
    InsertBeforeLine(html, at, sections);
  }
  const bool script =
      NeedsScript(kinds) || FindCaseless(html, "data-widget=", false) != std::string::npos;
  if (script && FindCaseless(html, absl::StrCat("src=\"", js, "\""), false) == std::string::npos) {
    const std::string tag = absl::StrCat("  <script src=\"", js, "\" defer></script>\n");
    size_t at = FindCaseless(html, "</body>", true);
    if (at == std::string::npos) at = FindCaseless(html, "</html>", true);
    if (at == std::string::npos) {
      html += tag;
    } else {
      InsertBeforeLine(html, at, tag);
    }
  }

  SitePlan plan;
  plan.files.push_back({"index.html", std::move(html)});
  plan.files.push_back({css, Styles()});
  if (script) plan.files.push_back({js, Script()});
  std::vector<std::string> paths;
  for (const SiteFile& f : plan.files) paths.push_back(f.path);
  plan.summary =
      absl::StrCat("Updated the ", old_subject.empty() ? "existing" : old_subject, " page: added ",
                   labels.size() == 1 ? "a " : "", JoinLabels(labels),
                   labels.size() == 1 ? " section" : " sections", " and kept its ", old_sections,
                   old_sections == 1 ? " earlier section" : " earlier sections", " (",
                   absl::StrJoin(paths, ", "), ").");
  return plan;
}

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string SubjectOf(std::string_view request) {
  std::vector<std::string> words = SubjectWords(StripDirectives(ToValidUtf8(request)));
  return words.empty() ? kFallbackSubject : TitleCase(words);
}

SitePlan PlanSite(std::string_view request, const std::optional<std::string>& existing_index) {
  const std::string text = StripDirectives(ToValidUtf8(request));
  if (existing_index.has_value()) return ExtendSite(text, ToValidUtf8(*existing_index));
  return NewSite(text);
}

}  // namespace qai::orchestrator

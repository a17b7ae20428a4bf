#include "services/orchestrator/model/builtin_site.h"

#include <algorithm>
#include <cstdint>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/strings.h"
#include "common/utf8.h"

namespace qai::orchestrator {
using common::ToValidUtf8;
using common::TruncateUtf8;
namespace {

using common::ToAbsl;

constexpr char kFallbackSubject[] = "My Website";
// Markers in the pages the builtin writes: where a later request adds its sections and links.
constexpr char kSectionsEnd[] = "<!-- qai:sections-end -->";
constexpr char kNavEnd[] = "<!-- qai:nav-end -->";
constexpr size_t kMaxSubjectWords = 6;

// ---------------------------------------------------------------------------------------------
// Words

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

// Normalized: lowercase words separated by single spaces, padded with one space each side, so
// " to do " finds "To-do" and " form " does not find "format".
std::string Normalized(std::string_view text) {
  return absl::StrCat(" ", Lower(absl::StrJoin(Words(text), " ")), " ");
}

bool In(const std::set<std::string_view>& words, const std::string& token) {
  return words.count(Lower(token)) > 0;
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

// SectionHtml: one section's markup; `s` is the escaped subject.
std::string SectionHtml(Kind kind, const std::string& s) {
  switch (kind) {
    case Kind::kFeatures:
      return absl::StrCat(R"(    <section id="features" class="block">
      <h2>Why )",
                          s, R"(</h2>
      <div class="cards">
        <article class="card"><h3>Made with care</h3><p>Every detail is thought through, from your first visit to your last.</p></article>
        <article class="card"><h3>Fast and simple</h3><p>Everything you need is a click away, on any device.</p></article>
        <article class="card"><h3>Here for you</h3><p>Questions? A real person answers, usually within a day.</p></article>
      </div>
    </section>
)");
    case Kind::kAbout:
      return absl::StrCat(
          R"(    <section id="about" class="block">
      <h2>About )",
          s, R"(</h2>
      <p>)",
          s,
          R"( started with a simple idea: do one thing really well, and share it with as many people as possible.</p>
      <p>We are a small, dedicated team, and we still care about the same things as on the first day.</p>
    </section>
)");
    case Kind::kMenu:
      return R"(    <section id="menu" class="block">
      <h2>Menu</h2>
      <ul class="menu-list">
        <li><span>House Special</span><span class="price">$4.50</span></li>
        <li><span>Seasonal Favourite</span><span class="price">$5.25</span></li>
        <li><span>The Classic</span><span class="price">$3.75</span></li>
        <li><span>Something Sweet</span><span class="price">$3.95</span></li>
        <li><span>Daily Pick</span><span class="price">$4.95</span></li>
      </ul>
    </section>
)";
    case Kind::kGallery: {
      std::string tiles;
      const char* captions[] = {"Morning light",     "Details",    "Our place",
                                "Behind the scenes", "Favourites", "Evenings"};
      for (int i = 0; i < 6; ++i) {
        absl::StrAppend(&tiles, "        <figure class=\"tile tile-", i + 1, "\"><figcaption>",
                        captions[i], "</figcaption></figure>\n");
      }
      return absl::StrCat(
          "    <section id=\"gallery\" class=\"block\">\n      <h2>Gallery</h2>\n      <div "
          "class=\"gallery\">\n",
          tiles, "      </div>\n    </section>\n");
    }
    case Kind::kPricing:
      return R"(    <section id="pricing" class="block">
      <h2>Pricing</h2>
      <div class="cards">
        <article class="card"><h3>Starter</h3><p class="price-tag">$0</p><p>The essentials, free forever.</p></article>
        <article class="card featured"><h3>Pro</h3><p class="price-tag">$12<small>/month</small></p><p>Everything in Starter, plus priority support.</p></article>
        <article class="card"><h3>Team</h3><p class="price-tag">$39<small>/month</small></p><p>For groups that work together every day.</p></article>
      </div>
    </section>
)";
    case Kind::kTestimonials:
      return absl::StrCat(
          R"(    <section id="testimonials" class="block">
      <h2>What people say</h2>
      <div class="cards">
        <blockquote class="card quote"><p>“Exactly what I was looking for. I keep coming back.”</p><footer>Sam R.</footer></blockquote>
        <blockquote class="card quote"><p>“)",
          s,
          R"( made my week. Friendly, quick and simply good.”</p><footer>Priya K.</footer></blockquote>
        <blockquote class="card quote"><p>“I have recommended it to all my friends.”</p><footer>Jonas M.</footer></blockquote>
      </div>
    </section>
)");
    case Kind::kBlog:
      return R"(    <section id="blog" class="block">
      <h2>Latest posts</h2>
      <div class="cards">
        <article class="card"><time datetime="2024-05-02">May 2, 2024</time><h3>Hello, world</h3><p>Why we started, and what comes next.</p></article>
        <article class="card"><time datetime="2024-05-16">May 16, 2024</time><h3>Five small things</h3><p>Little changes that made a big difference this month.</p></article>
        <article class="card"><time datetime="2024-06-01">June 1, 2024</time><h3>Looking ahead</h3><p>Plans for the summer, and how you can join in.</p></article>
      </div>
    </section>
)";
    case Kind::kTodo:
      return R"(    <section id="todo" class="block">
      <h2>To-do list</h2>
      <div class="widget todo" data-widget="todo" data-key="todo">
        <form class="todo-form">
          <label class="visually-hidden" for="todo-input">New task</label>
          <input id="todo-input" name="todo" type="text" placeholder="What needs doing?" autocomplete="off" maxlength="200" required>
          <button type="submit" class="button">Add</button>
        </form>
        <ul class="todo-list" aria-live="polite"></ul>
        <p class="muted" data-todo-left>0 items left</p>
      </div>
    </section>
)";
    case Kind::kCounter:
      return R"(    <section id="counter" class="block">
      <h2>Counter</h2>
      <div class="widget counter" data-widget="counter" data-key="counter">
        <output class="counter-value" data-counter-value aria-live="polite">0</output>
        <div class="row">
          <button type="button" class="button" data-action="decrement" aria-label="Decrease">−</button>
          <button type="button" class="button" data-action="increment" aria-label="Increase">+</button>
          <button type="button" class="button secondary" data-action="reset">Reset</button>
        </div>
      </div>
    </section>
)";
    case Kind::kCalculator: {
      struct Key {
        const char* key;
        const char* face;
        const char* cls;
      };
      static constexpr Key kKeys[] = {{"C", "C", "wide"}, {"/", "÷", "op"},     {"*", "×", "op"},
                                      {"7", "7", ""},     {"8", "8", ""},       {"9", "9", ""},
                                      {"-", "−", "op"},   {"4", "4", ""},       {"5", "5", ""},
                                      {"6", "6", ""},     {"+", "+", "op"},     {"1", "1", ""},
                                      {"2", "2", ""},     {"3", "3", ""},       {".", ".", ""},
                                      {"0", "0", "wide"}, {"=", "=", "op wide"}};
      std::string keys;
      for (const Key& k : kKeys) {
        absl::StrAppend(&keys, "          <button type=\"button\" data-key=\"", k.key, "\"",
                        *k.cls ? absl::StrCat(" class=\"", k.cls, "\"") : "", ">", k.face,
                        "</button>\n");
      }
      return absl::StrCat(R"(    <section id="calculator" class="block">
      <h2>Calculator</h2>
      <div class="widget calculator" data-widget="calculator">
        <output class="calc-display" data-calc-display aria-live="polite">0</output>
        <div class="calc-keys">
)",
                          keys, "        </div>\n      </div>\n    </section>\n");
    }
    case Kind::kContact:
      return R"(    <section id="contact" class="block">
      <h2>Contact</h2>
      <p>Questions, ideas or a booking: write to us and we will answer soon.</p>
      <form class="contact-form" data-widget="contact">
        <label>Name <input name="name" type="text" autocomplete="name" required></label>
        <label>Email <input name="email" type="email" autocomplete="email" required></label>
        <label>Message <textarea name="message" rows="4" required></textarea></label>
        <button type="submit" class="button">Send</button>
        <p class="form-status" role="status"></p>
      </form>
    </section>
)";
  }
  return "";
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

// ---------------------------------------------------------------------------------------------
// Assets (the same for every page: each part of the script starts only when its markup is there)

constexpr char kStyles[] = R"css(/* Styles of the page QAI's builtin model wrote. */
:root {
  --bg: #fbfaf7;
  --fg: #1f2430;
  --muted: #5d6475;
  --accent: #c2410c;
  --accent-fg: #ffffff;
  --card: #ffffff;
  --border: #e6e1d8;
  --radius: 14px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.6; }
a { color: var(--accent); }
img { max-width: 100%; height: auto; }
.site-header {
  position: sticky; top: 0; z-index: 10;
  display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: .5rem 1.5rem;
  padding: .9rem clamp(1rem, 4vw, 3rem);
  background: rgba(251, 250, 247, .94); border-bottom: 1px solid var(--border);
}
.brand { font-weight: 700; font-size: 1.15rem; color: var(--fg); text-decoration: none; }
.site-header nav { display: flex; flex-wrap: wrap; gap: .25rem 1.1rem; }
.site-header nav a { color: var(--muted); text-decoration: none; }
.site-header nav a:hover, .site-header nav a:focus { color: var(--accent); }
main { max-width: 1080px; margin: 0 auto; padding: 0 clamp(1rem, 4vw, 3rem); }
section { padding: clamp(2.5rem, 6vw, 4.5rem) 0; border-bottom: 1px solid var(--border); scroll-margin-top: 4rem; }
h1, h2, h3 { line-height: 1.2; overflow-wrap: anywhere; }
h2 { font-size: clamp(1.6rem, 4vw, 2.2rem); margin-top: 0; }
.hero { text-align: center; padding-top: clamp(3.5rem, 10vw, 7rem); }
.hero h1 { font-size: clamp(2.2rem, 6vw, 3.8rem); margin: .2em 0; }
.eyebrow { text-transform: uppercase; letter-spacing: .12em; font-size: .8rem; font-weight: 600; color: var(--accent); margin: 0; }
.lead { font-size: 1.2rem; color: var(--muted); max-width: 40rem; margin: 0 auto 2rem; }
.muted { color: var(--muted); }
.button {
  display: inline-block; border: 0; border-radius: 999px; padding: .75rem 1.5rem;
  background: var(--accent); color: var(--accent-fg); font: inherit; font-weight: 600;
  text-decoration: none; cursor: pointer;
}
.button:hover, .button:focus { filter: brightness(1.08); }
.button.secondary { background: transparent; color: var(--accent); box-shadow: inset 0 0 0 2px var(--accent); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(220px, 1fr)); gap: 1.25rem; }
.card { background: var(--card); border: 1px solid var(--border); border-radius: var(--radius); padding: 1.5rem; margin: 0; }
.card h3 { margin-top: 0; }
.card.featured { border-color: var(--accent); box-shadow: 0 10px 30px rgba(194, 65, 12, .15); }
.card time { color: var(--muted); font-size: .9rem; }
.price-tag { font-size: 2rem; font-weight: 700; margin: 0; }
.price-tag small { font-size: 1rem; font-weight: 400; color: var(--muted); }
.quote p { font-style: italic; margin-top: 0; }
.quote footer { color: var(--muted); }
.menu-list { list-style: none; padding: 0; margin: 0; display: grid; gap: .75rem; max-width: 40rem; }
.menu-list li { display: flex; justify-content: space-between; gap: 1rem; border-bottom: 1px dashed var(--border); padding-bottom: .5rem; }
.price { font-weight: 600; color: var(--accent); }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(180px, 1fr)); gap: 1rem; }
.tile {
  margin: 0; aspect-ratio: 4 / 3; border-radius: var(--radius);
  display: flex; align-items: flex-end; padding: .75rem; color: #ffffff; font-weight: 600;
}
.tile-1 { background: linear-gradient(135deg, #f97316, #db2777); }
.tile-2 { background: linear-gradient(135deg, #0ea5e9, #6366f1); }
.tile-3 { background: linear-gradient(135deg, #22c55e, #0d9488); }
.tile-4 { background: linear-gradient(135deg, #eab308, #f97316); }
.tile-5 { background: linear-gradient(135deg, #a855f7, #ec4899); }
.tile-6 { background: linear-gradient(135deg, #334155, #0f172a); }
.widget { background: var(--card); border: 1px solid var(--border); border-radius: var(--radius); padding: 1.5rem; max-width: 32rem; }
input, textarea { font: inherit; padding: .65rem .8rem; border: 1px solid var(--border); border-radius: 10px; background: #ffffff; width: 100%; }
.row, .todo-form { display: flex; flex-wrap: wrap; gap: .5rem; }
.todo-form input { flex: 1; width: auto; min-width: 10rem; }
.todo-list { list-style: none; padding: 0; margin: 1rem 0; }
.todo-item { display: flex; align-items: center; gap: .75rem; padding: .5rem 0; border-bottom: 1px solid var(--border); }
.todo-item input { width: auto; }
.todo-item span { flex: 1; overflow-wrap: anywhere; }
.todo-item.done span { text-decoration: line-through; color: var(--muted); }
.todo-remove { border: 0; background: none; font-size: 1.4rem; line-height: 1; color: var(--muted); cursor: pointer; }
.counter-value { display: block; font-size: 3.5rem; font-weight: 700; text-align: center; margin-bottom: 1rem; }
.counter .row { justify-content: center; }
.calculator { max-width: 20rem; }
.calc-display {
  display: block; min-height: 3.5rem; margin-bottom: .75rem; padding: .5rem .75rem;
  text-align: right; font-size: 2rem; background: #f3f1ec; border-radius: 10px; overflow-x: auto;
}
.calc-keys { display: grid; grid-template-columns: repeat(4, 1fr); gap: .5rem; }
.calc-keys button { padding: .9rem 0; font: inherit; font-size: 1.2rem; border: 1px solid var(--border); border-radius: 10px; background: #ffffff; cursor: pointer; }
.calc-keys .op { background: #fde7d8; }
.calc-keys .wide { grid-column: span 2; }
.contact-form { display: grid; gap: 1rem; max-width: 32rem; }
.contact-form label { display: grid; gap: .35rem; font-weight: 600; }
.form-status { min-height: 1.5em; margin: 0; color: var(--accent); }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.site-footer { text-align: center; padding: 2rem 1rem; color: var(--muted); }
@media (max-width: 600px) {
  .site-header { position: static; }
  .lead { font-size: 1.05rem; }
  .menu-list li { flex-direction: column; gap: 0; }
}
)css";

constexpr char kScript[] =
    R"js(// The interactive parts of the page QAI's builtin model wrote. Each part starts only when its
// markup is on the page, so one script serves every page.
(function () {
  'use strict';

  function load(key, fallback) {
    try {
      var value = JSON.parse(window.localStorage.getItem(key));
      return value === null ? fallback : value;
    } catch (e) {
      return fallback;
    }
  }

  function save(key, value) {
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (e) {
      // Storage may be full or switched off: the page keeps working without it.
    }
  }

  // A to-do list: add, tick off and remove tasks; they survive a reload.
  function initTodo(root) {
    var key = 'qai.todo.' + (root.getAttribute('data-key') || 'list');
    var items = load(key, []);
    if (!Array.isArray(items)) items = [];
    var form = root.querySelector('form');
    var input = root.querySelector('input[name="todo"]');
    var list = root.querySelector('.todo-list');
    var left = root.querySelector('[data-todo-left]');

    function update() {
      save(key, items);
      render();
    }

    function render() {
      list.textContent = '';
      items.forEach(function (item, index) {
        var li = document.createElement('li');
        li.className = item.done ? 'todo-item done' : 'todo-item';
        var box = document.createElement('input');
        box.type = 'checkbox';
        box.checked = Boolean(item.done);
        box.setAttribute('aria-label', 'Done');
        box.addEventListener('change', function () {
          items[index].done = box.checked;
          update();
        });
        var text = document.createElement('span');
        text.textContent = String(item.text);
        var remove = document.createElement('button');
        remove.type = 'button';
        remove.className = 'todo-remove';
        remove.setAttribute('aria-label', 'Remove');
        remove.textContent = '\u00d7';
        remove.addEventListener('click', function () {
          items.splice(index, 1);
          update();
        });
        li.appendChild(box);
        li.appendChild(text);
        li.appendChild(remove);
        list.appendChild(li);
      });
      var open = items.filter(function (item) { return !item.done; }).length;
      left.textContent = open + (open === 1 ? ' item left' : ' items left');
    }

    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var text = input.value.trim();
      if (!text) return;
      items.push({ text: text, done: false });
      input.value = '';
      update();
    });
    render();
  }

  // A counter that remembers its value.
  function initCounter(root) {
    var key = 'qai.counter.' + (root.getAttribute('data-key') || 'count');
    var value = Number(load(key, 0)) || 0;
    var display = root.querySelector('[data-counter-value]');

    function render() {
      display.textContent = String(value);
    }

    root.addEventListener('click', function (event) {
      var button = event.target.closest('button[data-action]');
      if (!button) return;
      var action = button.getAttribute('data-action');
      if (action === 'increment') value += 1;
      else if (action === 'decrement') value -= 1;
      else if (action === 'reset') value = 0;
      save(key, value);
      render();
    });
    render();
  }

  // A four-function calculator, without eval.
  function initCalculator(root) {
    var display = root.querySelector('[data-calc-display]');
    var current = '0';
    var stored = null;
    var operator = null;
    var fresh = false;

    function compute(a, b, op) {
      if (op === '+') return a + b;
      if (op === '-') return a - b;
      if (op === '*') return a * b;
      if (op === '/') return b === 0 ? NaN : a / b;
      return b;
    }

    function format(n) {
      return isFinite(n) ? String(parseFloat(n.toPrecision(12))) : 'Error';
    }

    function press(key) {
      if (current === 'Error') {
        current = '0';
        stored = null;
        operator = null;
      }
      if (/^[0-9]$/.test(key)) {
        current = fresh || current === '0' ? key : current + key;
        fresh = false;
      } else if (key === '.') {
        if (fresh) {
          current = '0.';
          fresh = false;
        } else if (current.indexOf('.') < 0) {
          current += '.';
        }
      } else if (key === 'C') {
        current = '0';
        stored = null;
        operator = null;
        fresh = false;
      } else if (key === '=') {
        if (operator !== null) {
          current = format(compute(stored, parseFloat(current), operator));
          stored = null;
          operator = null;
          fresh = true;
        }
      } else {
        if (operator !== null && !fresh) current = format(compute(stored, parseFloat(current), operator));
        stored = parseFloat(current);
        operator = key;
        fresh = true;
      }
      display.textContent = current;
    }

    root.addEventListener('click', function (event) {
      var button = event.target.closest('button[data-key]');
      if (button) press(button.getAttribute('data-key'));
    });
    display.textContent = current;
  }

  // A contact form that thanks the visitor (there is no server behind this page).
  function initContact(form) {
    var status = form.querySelector('.form-status');
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      if (!form.checkValidity()) {
        form.reportValidity();
        return;
      }
      var name = form.elements.namedItem('name').value.trim();
      status.textContent = 'Thanks' + (name ? ', ' + name : '') + '! We will be in touch soon.';
      form.reset();
    });
  }

  function start() {
    document.querySelectorAll('[data-widget="todo"]').forEach(initTodo);
    document.querySelectorAll('[data-widget="counter"]').forEach(initCounter);
    document.querySelectorAll('[data-widget="calculator"]').forEach(initCalculator);
    document.querySelectorAll('[data-widget="contact"]').forEach(initContact);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
)js";

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
  return absl::StrCat(R"(<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="generator" content="QAI builtin">
  <title>)",
                      s, R"(</title>
  <link rel="stylesheet" href="styles.css">
</head>
<body>
  <header class="site-header">
    <a class="brand" href="#top">)",
                      s, R"(</a>
    <nav aria-label="Sections">
)",
                      nav, "      ", kNavEnd, R"(
    </nav>
  </header>
  <main>
    <section class="hero" id="top">
      <p class="eyebrow">)",
                      tool ? "Works in your browser" : "Welcome", R"(</p>
      <h1>)",
                      s, R"(</h1>
      <p class="lead">)",
                      lead, R"(</p>
      )",
                      cta, R"(
    </section>
)",
                      sections, "    ", kSectionsEnd, R"(
  </main>
  <footer class="site-footer">
    <p>)",
                      s, R"( · made with QAI</p>
  </footer>
)",
                      NeedsScript(kinds) ? "  <script src=\"app.js\" defer></script>\n" : "",
                      R"(</body>
</html>
)");
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
  plan.files.push_back({"styles.css", kStyles});
  if (NeedsScript(kinds)) plan.files.push_back({"app.js", kScript});
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
  plan.files.push_back({css, kStyles});
  if (script) plan.files.push_back({js, kScript});
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

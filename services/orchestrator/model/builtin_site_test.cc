#include "services/orchestrator/model/builtin_site.h"

#include <gtest/gtest.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace qai::orchestrator {
namespace {

size_t Count(const std::string& text, std::string_view needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

const SiteFile* FileNamed(const SitePlan& plan, std::string_view path) {
  for (const SiteFile& f : plan.files) {
    if (f.path == path) return &f;
  }
  return nullptr;
}

TEST(BuiltinSiteTest, SubjectComesFromThePrompt) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"Build a landing page for a coffee shop", "Coffee Shop"},
      {"build a landing page for a coffee shop.", "Coffee Shop"},
      {"Please create a simple todo app", "Todo App"},
      {"Make a calculator", "Calculator"},
      {"Create a website about cats", "Cats"},
      {"I want a portfolio for a wedding photographer with a gallery", "Wedding Photographer"},
      {"Build a coffee shop landing page with a menu", "Coffee Shop"},
      {"Build a landing page with a menu for a bakery", "Bakery"},
      {"make me a modern website for ACME Corp and its products", "ACME Corp"},
      {"Create a Café Lumière homepage", "Café Lumière"},
      {"Build a site for the Museum of Modern Art", "Museum of Modern Art"},
      {"Add opening hours", "Opening Hours"},
      {"Add opening hours: Mon-Fri 8-18", "Opening Hours"},
      {"Please, build a landing page for a coffee shop, with a menu", "Coffee Shop"},
      {"Build a landing page for a coffee shop [[sleep 5]]", "Coffee Shop"},
      {"Build something", "Something"},
      {"build a website", "My Website"},
      {"", "My Website"},
      {"   !!! ", "My Website"},
  };
  for (const auto& [prompt, subject] : cases) EXPECT_EQ(SubjectOf(prompt), subject) << prompt;
}

TEST(BuiltinSiteTest, WordsAreLettersAndDigitsInAnyScript) {
  EXPECT_EQ(
      Words("To-do “lists”! café 2024 — ✨ naïve×2 日本語。"),
      (std::vector<std::string>{"To", "do", "lists", "café", "2024", "naïve", "2", "日本語"}));
  EXPECT_TRUE(Words(" ... ").empty());
}

TEST(BuiltinSiteTest, NewPageHasTitleHeadingAndKeywordSections) {
  SitePlan plan = PlanSite("Build a landing page for a coffee shop with testimonials and pricing",
                           std::nullopt);
  ASSERT_GE(plan.files.size(), 2u);
  EXPECT_EQ(plan.files[0].path, "index.html");
  const std::string& html = plan.files[0].content;
  EXPECT_TRUE(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
  EXPECT_TRUE(absl::StrContains(html, "<title>Coffee Shop</title>"));
  EXPECT_TRUE(absl::StrContains(html, "<h1>Coffee Shop</h1>"));
  EXPECT_TRUE(absl::StrContains(html, "<meta name=\"viewport\""));
  for (const char* id : {"menu", "testimonials", "pricing"}) {
    EXPECT_TRUE(absl::StrContains(html, absl::StrCat("<section id=\"", id, "\""))) << id;
  }
  EXPECT_FALSE(absl::StrContains(html, "id=\"todo\""));
  EXPECT_TRUE(html.ends_with("</html>\n"));
  ASSERT_NE(FileNamed(plan, "styles.css"), nullptr);
  EXPECT_TRUE(absl::StrContains(FileNamed(plan, "styles.css")->content, "@media"));
  EXPECT_EQ(plan.summary,
            "Built a Coffee Shop landing page with Menu, Pricing and Reviews sections (index.html, "
            "styles.css).");
}

TEST(BuiltinSiteTest, DefaultSectionsFillAPlainPrompt) {
  SitePlan plan = PlanSite("Create a website for Northwind Traders", std::nullopt);
  const std::string& html = plan.files[0].content;
  for (const char* id : {"features", "about", "contact"}) {
    EXPECT_TRUE(absl::StrContains(html, absl::StrCat("id=\"", id, "\""))) << id;
  }
  ASSERT_NE(FileNamed(plan, "app.js"), nullptr);  // the contact form
  EXPECT_TRUE(absl::StrContains(html, "<script src=\"app.js\" defer></script>"));
  EXPECT_TRUE(plan.summary.starts_with("Built a Northwind Traders website with"));
}

TEST(BuiltinSiteTest, ToolsStandAloneWithTheirScript) {
  for (const auto& [prompt, widget] :
       std::vector<std::pair<std::string, std::string>>{{"Create a todo app", "todo"},
                                                        {"Build a click counter", "counter"},
                                                        {"Make a calculator", "calculator"}}) {
    SitePlan plan = PlanSite(prompt, std::nullopt);
    const std::string& html = plan.files[0].content;
    EXPECT_TRUE(absl::StrContains(html, absl::StrCat("data-widget=\"", widget, "\""))) << prompt;
    EXPECT_EQ(Count(html, "<section"), 2u) << prompt;  // the hero and the tool
    ASSERT_NE(FileNamed(plan, "app.js"), nullptr) << prompt;
  }
}

TEST(BuiltinSiteTest, EscapesThePromptEverywhere) {
  SitePlan plan =
      PlanSite("Build a page for <script>alert(1)</script> & \"friends\"", std::nullopt);
  const std::string& html = plan.files[0].content;
  EXPECT_FALSE(absl::StrContains(html, "<script>alert"));
  EXPECT_TRUE(absl::StrContains(html, "&lt;script&gt;alert(1)&lt;/script&gt;")) << html;
  EXPECT_FALSE(absl::StrContains(plan.summary, "<"));
  SitePlan next = PlanSite("Add <img src=x onerror=alert(2)> please", html);
  EXPECT_FALSE(absl::StrContains(next.files[0].content, "<img src=x"));
  EXPECT_TRUE(absl::StrContains(next.files[0].content, "&lt;img src=x onerror=alert(2)&gt;"));
}

TEST(BuiltinSiteTest, FollowUpKeepsThePageAndAddsItsSection) {
  const std::string first =
      PlanSite("Build a landing page for a coffee shop", std::nullopt).files[0].content;
  SitePlan plan = PlanSite("Now add a photo gallery", first);
  const std::string& html = plan.files[0].content;
  EXPECT_EQ(Count(html, "<section"), Count(first, "<section") + 1);
  EXPECT_TRUE(absl::StrContains(html, "<section id=\"gallery\""));
  EXPECT_TRUE(absl::StrContains(html, "<a href=\"#gallery\">Gallery</a>"));
  // Everything that was there still is, in the same order: only lines were inserted.
  size_t at = 0;
  for (absl::string_view line : absl::StrSplit(first, '\n')) {
    at = html.find(std::string(line), at);
    ASSERT_NE(at, std::string::npos) << line;
  }
  EXPECT_TRUE(plan.summary.starts_with(
      "Updated the Coffee Shop page: added a Gallery section and kept its 4 earlier sections"))
      << plan.summary;
  // A request that names no known section gets one with its own words.
  SitePlan hours = PlanSite("Add opening hours: Mon-Fri 8-18", html);
  EXPECT_TRUE(absl::StrContains(
      hours.files[0].content,
      "<section id=\"opening-hours\" class=\"block\">\n      <h2>Opening Hours</h2>"));
  EXPECT_TRUE(absl::StrContains(hours.files[0].content, "Mon-Fri 8-18"));
  SitePlan again = PlanSite("Add opening hours", hours.files[0].content);
  EXPECT_TRUE(absl::StrContains(again.files[0].content, "id=\"opening-hours-2\""));
  // A section that is already there is not added twice.
  SitePlan menu = PlanSite("Add a menu", html);
  EXPECT_EQ(Count(menu.files[0].content, "id=\"menu\""), 1u);
}

TEST(BuiltinSiteTest, FollowUpAddsTheScriptWhenANewSectionNeedsIt) {
  const std::string first =
      PlanSite("Build a website about birds with a gallery, blog and testimonials", std::nullopt)
          .files[0]
          .content;
  EXPECT_FALSE(absl::StrContains(first, "app.js"));
  SitePlan plan = PlanSite("Add a todo list", first);
  EXPECT_TRUE(
      absl::StrContains(plan.files[0].content, "<script src=\"app.js\" defer></script>\n</body>"));
  ASSERT_NE(FileNamed(plan, "app.js"), nullptr);
  EXPECT_EQ(
      Count(PlanSite("Add a counter", plan.files[0].content).files[0].content, "src=\"app.js\""),
      1u);
}

TEST(BuiltinSiteTest, AForeignPageGetsItsSectionsWithOwnAssets) {
  const std::string page =
      "<!doctype html>\n<html>\n<head>\n<title>Tom &amp; Jerry</title>\n<link rel=\"stylesheet\" "
      "href=\"styles.css\">\n"
      "</head>\n<body>\n<main>\n<h1>Tom &amp; Jerry</h1>\n</main>\n</body>\n</html>\n";
  SitePlan plan = PlanSite("add a contact form", page);
  const std::string& html = plan.files[0].content;
  EXPECT_TRUE(absl::StrContains(html, "<section id=\"contact\""));
  EXPECT_LT(html.find("id=\"contact\""), html.find("</main>"));
  EXPECT_TRUE(
      absl::StrContains(html, "<link rel=\"stylesheet\" href=\"qai-builtin.css\">\n</head>"));
  EXPECT_TRUE(absl::StrContains(html, "<script src=\"qai-builtin.js\" defer></script>\n</body>"));
  EXPECT_EQ(FileNamed(plan, "styles.css"), nullptr);  // the page's own are left alone
  EXPECT_EQ(FileNamed(plan, "app.js"), nullptr);
  EXPECT_NE(FileNamed(plan, "qai-builtin.css"), nullptr);
  EXPECT_NE(FileNamed(plan, "qai-builtin.js"), nullptr);
  EXPECT_TRUE(plan.summary.starts_with("Updated the Tom & Jerry page: added a Contact section"))
      << plan.summary;
}

TEST(BuiltinSiteTest, IsAPureFunction) {
  const std::string first =
      PlanSite("Build a landing page for a coffee shop", std::nullopt).files[0].content;
  EXPECT_EQ(first,
            PlanSite("Build a landing page for a coffee shop", std::nullopt).files[0].content);
  EXPECT_EQ(PlanSite("add a gallery", first).files[0].content,
            PlanSite("add a gallery", first).files[0].content);
}

}  // namespace
}  // namespace qai::orchestrator

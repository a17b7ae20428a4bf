#pragma once
// The small websites the builtin model builds: a page from a prompt, or a new section added to
// the page an earlier prompt built. Pure functions of their input, so the builtin model stays
// deterministic.
//
// The page is index.html (a hero named after the prompt's subject, then sections chosen from
// keywords in the prompt), styles.css (responsive) and, when a section needs it, app.js
// (vanilla JavaScript: a to-do list kept in localStorage, a counter, a calculator, a contact
// form). Everything taken from the prompt is HTML-escaped.
//
//   SitePlan plan = PlanSite("Build a landing page for a coffee shop", std::nullopt);
//   // plan.files: index.html, styles.css, app.js; plan.summary: "Built a Coffee Shop landing ..."
//   SitePlan next = PlanSite("Add a gallery", plan.files[0].content);
//   // next.files[0]: the same page with a Gallery section before the end marker

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "services/orchestrator/model/prompt_subject.h"

namespace qai::orchestrator {

// SiteFile: a file to write, relative to the workspace.
struct SiteFile {
  std::string path;
  std::string content;
};

// SitePlan: the files of one request (index.html first) and a one-sentence summary of the
// change, phrased so that a title can be taken from its first words ("Built a Coffee Shop
// landing page with ...", "Updated the Coffee Shop page: ...").
struct SitePlan {
  std::vector<SiteFile> files;
  std::string summary;
};

// PlanSite: the files for `request`. Without `existing_index` it is a new page. With one, the
// page is kept as it is and the request's sections are added (a section with the request's
// own words when no keyword names one). A page the builtin did not write gets its sections
// before `</main>` or `</body>`, with their own stylesheet and script (qai-builtin.css/.js) so
// the page's own styles.css and app.js are left alone.
SitePlan PlanSite(std::string_view request, const std::optional<std::string>& existing_index);

// SubjectOf: what a prompt is about, in title case: "Build a landing page for a coffee shop" ->
// "Coffee Shop", "Create a simple todo app" -> "Todo App". Leading requests and verbs
// ("please build", "make me"), articles, "landing page for" and trailing clauses ("with ...")
// are dropped; "My Website" when nothing is left. Not escaped.
std::string SubjectOf(std::string_view request);

// HtmlEscape: text safe inside HTML elements and quoted attributes.
std::string HtmlEscape(std::string_view text);

}  // namespace qai::orchestrator

#include "services/orchestrator/runs/run_result.h"

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"

namespace qai::orchestrator {

messages::v1::RecordAgentResultRequest RunResult(const RunRecord& run, const ResultText& text,
                                                 const SavedSnapshot& snapshot) {
  messages::v1::RecordAgentResultRequest req;
  req.set_run_id(run.id);
  req.set_project_id(run.project_id);
  req.set_content(text.content);
  req.set_type(messages::v1::Message::TYPE_RESULT);
  messages::v1::Fragment* fragment = req.mutable_fragment();
  fragment->set_sandbox_url(snapshot.preview_url);
  fragment->set_title(text.title);
  fragment->set_summary(text.summary);
  fragment->mutable_files()->insert(snapshot.files.begin(), snapshot.files.end());
  return req;
}

ResultText RestoredText(const VersionRecord& version, bool fork) {
  const std::string when =
      absl::FormatTime("%Y-%m-%d %H:%M UTC", version.create_time, absl::UTCTimeZone());
  return {.content = fork ? absl::StrCat("Started from version ", version.number,
                                         " of the project this one was forked from.")
                          : absl::StrCat("Restored version ", version.number,
                                         ". Later versions are all kept."),
          .title = version.title.empty() ? absl::StrCat("Version ", version.number) : version.title,
          .summary = absl::StrCat("Version ", version.number, " of ", when, ", restored.")};
}

}  // namespace qai::orchestrator

#pragma once
// `qai versions list|get|diff|restore|download`: a project's versions from the command line. Every
// successful run makes one; a restore brings one back as the next version, keeping every other.
//
//   qai versions list --project 3f0c... --all        # newest first
//   qai versions get --project 3f0c... 2 --files     # and its files (path, size, sha256)
//   qai versions get --project 3f0c... 2 --cat index.html   # one file's content
//   qai versions diff --project 3f0c... --from 1 --to 2
//   qai versions diff --project 3f0c... --from 2 --to-draft 9a1b...   # a failed run's changes
//   qai versions diff --project 3f0c... --from 2 --to workspace  # a running run's edits so far
//   qai versions restore --project 3f0c... 2 --watch # then follow the restore to its end
//   qai versions download --project 3f0c... 2 --format tar.gz   # saves <project>-v2.tar.gz

#include <string>
#include <vector>

#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "tools/qai/args.h"

namespace qai::cli {

// VersionCommands: the declarations and handlers of every `versions` command.
std::vector<CommandSpec> VersionCommands();

// FormatVersion: one "key: value" line per field that is set (number, project_id, title,
// author, created, restored_from, run_id, message_id, sandbox_url, download_url), then, with
// `files`, one
// "  SIZE  SHA256  PATH" line per file.
std::string FormatVersion(const qai::orchestrator::v1::Version& version, bool files);

// FormatDiff: per changed file "MODIFIED PATH (OLD -> NEW bytes)" (", binary", ", diff cut"),
// then its unified diff under "--- a/PATH" and "+++ b/PATH" lines; "no change" for none; a
// line saying so when the diff was cut or the latest version stood for the workspace.
std::string FormatDiff(const qai::orchestrator::v1::DiffVersionsResponse& diff);

// FormatVersionRow: "NUMBER  CREATED  AUTHOR  TITLE  SANDBOX_URL" ("(restored from N)" after the
// title of a restore).
std::string FormatVersionRow(const qai::orchestrator::v1::Version& version);

}  // namespace qai::cli

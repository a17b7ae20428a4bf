#pragma once
// `qai projects create|get|list|rename|delete`: the ProjectService from the command line.
// Mutations go out with the invocation's request id (see GlobalOptions::request_id); a created
// or renamed project is shown with it, and so is a failure that a repeat could cure.
//
//   qai projects create --prompt "a todo app" --display-name Todos   # then its first message
//   qai projects list --all
//   qai projects rename 3f0c... "New name" --etag W/"7"

#include <string>
#include <vector>

#include "qai/projects/v1/projects.pb.h"
#include "tools/qai/args.h"

namespace qai::cli {

// ProjectCommands: the declarations and handlers of every `projects` command.
std::vector<CommandSpec> ProjectCommands();

// FormatProject: one "key: value" line per field (id, name, display_name, owner, created,
// updated, etag, and latest_run when known).
std::string FormatProject(const qai::projects::v1::Project& project);

// FormatProjectRow: "ID  NAME  DISPLAY_NAME  UPDATED" on one line; an empty display name
// shows as "-" so that the columns stay countable.
std::string FormatProjectRow(const qai::projects::v1::Project& project);

}  // namespace qai::cli

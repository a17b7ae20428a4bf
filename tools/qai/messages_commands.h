#pragma once
// `qai messages send|list`: a project's conversation from the command line.
//
//   qai messages send --project 3f0c... --content "Add a dark mode"
//   qai messages list --project 3f0c... --all

#include <string>
#include <vector>

#include "qai/messages/v1/messages.pb.h"
#include "tools/qai/args.h"

namespace qai::cli {

// MessageCommands: the declarations and handlers of every `messages` command.
std::vector<CommandSpec> MessageCommands();

// FormatMessage: one "key: value" line per field: id, role, type, author and run_id (when
// known), created, content (its later lines indented by two spaces), and for a fragment its
// title, then indented its sandbox_url and one "file: PATH" line per file, sorted. File
// contents are left to --json: a fragment may hold megabytes of them.
std::string FormatMessage(const qai::messages::v1::Message& message);

}  // namespace qai::cli

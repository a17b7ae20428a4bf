#pragma once
// MessageStore: the `messages` schema behind plain structs. SQL lives here and nowhere else.
//
// A message is written together with what it announces: a USER message with the outbox row
// that asks the orchestrator to start its run, in one transaction. Writes for a project take a
// shared advisory lock on it and purging takes it exclusively, so once a project's messages
// are purged (and its tombstone written) nothing new is ever stored for it, even by a call that
// checked the project just before it was deleted. A USER message's outbox row records its
// author, so CreateMessage can count the runs a project and an author have on their way.
//
// A fragment's files are stored by content, once per project (messages.file_contents): a
// result that leaves a file as the last one had it stores only its path and hash.

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/db_pool.h"
#include "services/orchestrator/client/run_settings.h"

namespace qai::messages {

// The numbers of qai.messages.v1.Message.Role and .Type, as the store keeps them.
inline constexpr int kRoleUser = 1;
inline constexpr int kRoleAssistant = 2;
inline constexpr int kTypeResult = 1;
inline constexpr int kTypeError = 2;

inline constexpr char kOutboxTable[] = "messages.outbox";
// The outbox topic of the StartRun request a USER message announces.
inline constexpr char kTopicStartRun[] = "orchestrator.StartRun";

struct FragmentRecord {
  std::string id;
  std::string message_id;
  std::string sandbox_url;
  std::string title;
  std::map<std::string, std::string> files;  // path -> content (List leaves it empty: LoadFiles)
  int64_t files_bytes = 0;                   // of the files' paths and contents, as stored
  int files_count = 0;
  std::string summary;
  absl::Time create_time;
  absl::Time update_time;
};

struct MessageRecord {
  std::string id;
  std::string project_id;
  std::string owner;   // the project's owner
  std::string author;  // see messages.messages.author
  std::string content;
  int role = kRoleUser;
  int type = kTypeResult;
  std::string run_id;  // "" until known
  absl::Time create_time;
  absl::Time update_time;
  std::optional<FragmentRecord> fragment;
};

struct CreateParams {
  std::string principal;   // who calls: the idempotency scope
  std::string request_id;  // empty: no idempotency
  std::string id;          // the new message's id, chosen by the caller (the payload names it)
  std::string project_id;
  std::string owner;
  std::string author;
  std::string content;
  // The serialized StartRunRequest the outbox delivers; the store does not look inside it.
  std::string start_run_payload;
  // When set, the caps on runs queued or running at once apply to this prompt's run: the runs
  // `active` elsewhere (the orchestrator's count; zeros when it could not say) plus the
  // project's and the author's StartRun rows still in the outbox (not parked) must leave room
  // for one more, else Create writes nothing and answers RESOURCE_EXHAUSTED. A repeated
  // request id is answered with its first message before any cap is looked at.
  struct CapCheck {
    orchestrator::RunCaps caps;
    orchestrator::ActiveRuns active;
  };
  std::optional<CapCheck> cap_check;
};

struct ListParams {
  std::string project_id;
  int limit = 20;
  // Keyset cursor: the last message of the previous page (absent on the first page).
  std::optional<std::pair<int64_t, std::string>> after;  // (create_time µs, id)
  bool newest_first = false;
};

struct ResultParams {
  std::string id;  // the new message's id (ignored when the run already has its result)
  std::string run_id;
  std::string project_id;
  std::string owner;
  std::string content;
  int type = kTypeResult;
  std::optional<FragmentRecord> fragment;  // its id is chosen by the caller
};

// RecordPromptNotRun: on conn, in the transaction that parks a prompt's StartRun row for good,
// an ERROR message in the prompt's project telling its author why it will not run, so no prompt
// fails in silence. Idempotent on `id` (the outbox row's); nothing when the prompt is gone or its
// project is being or was purged (no one is left to tell).
[[nodiscard]] absl::Status RecordPromptNotRun(common::DbConnection& conn, const std::string& id,
                                              const std::string& message_id, std::string_view why);

class MessageStore {
 public:
  explicit MessageStore(common::DbPool* db) : db_(db) {}

  // Create: the USER message and its StartRun outbox row. A repeated (principal, request_id)
  // returns the first message; NOT_FOUND when the project's messages were purged;
  // RESOURCE_EXHAUSTED when a cap of params.cap_check is reached (see CreateParams).
  [[nodiscard]] absl::StatusOr<MessageRecord> Create(const CreateParams& params);
  // Get: one message with its fragment; NOT_FOUND when unknown.
  [[nodiscard]] absl::StatusOr<MessageRecord> Get(const std::string& id);
  // List: up to params.limit messages of a project after the cursor, oldest (or newest) first,
  // with their fragments but not the fragments' files: their sizes tell what a page can hold
  // before any is loaded.
  [[nodiscard]] absl::StatusOr<std::vector<MessageRecord>> List(const ListParams& params);
  // LoadFiles: the files of the messages' fragments (of a project being purged: none).
  [[nodiscard]] absl::Status LoadFiles(std::vector<MessageRecord>& messages);
  // RecordResult: the ASSISTANT message of a run and its fragment; if the run already has one,
  // that one, unchanged. NOT_FOUND when the project's messages were purged.
  [[nodiscard]] absl::StatusOr<MessageRecord> RecordResult(const ResultParams& params);
  // ProjectOwner: the owner recorded on the project's messages, if it has any.
  [[nodiscard]] absl::StatusOr<std::optional<std::string>> ProjectOwner(
      const std::string& project_id);
  // SetRunId: the run a USER message started (once the orchestrator has named it).
  [[nodiscard]] absl::Status SetRunId(const std::string& message_id, const std::string& run_id);
  // Purge: removes a project's messages, fragments and undelivered run requests, and keeps a
  // tombstone so nothing is written for it again. Idempotent.
  [[nodiscard]] absl::Status Purge(const std::string& project_id);

 private:
  common::DbPool* const db_;
};

}  // namespace qai::messages

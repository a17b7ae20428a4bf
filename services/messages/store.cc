#include "services/messages/store.h"

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/auth.h"
#include "common/outbox.h"
#include "common/status.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace qai::messages {
namespace {

using common::DbConnection;
using soci::into;
using soci::use;

// A message with its fragment (if any) and the fragment's sizes, in ReadMessage's order.
constexpr char kSelectMessage[] =
    "SELECT m.id::text, m.project_id::text, m.owner, m.author, m.content, m.role::int, m.type::int,"
    " COALESCE(m.run_id::text, ''), (EXTRACT(EPOCH FROM m.create_time) * 1000000)::bigint,"
    " (EXTRACT(EPOCH FROM m.update_time) * 1000000)::bigint,"
    " COALESCE(f.id::text, ''), COALESCE(f.sandbox_url, ''), COALESCE(f.title, ''),"
    " COALESCE(f.files_bytes, 0), COALESCE(f.files_count, 0), COALESCE(f.summary, ''),"
    " COALESCE((EXTRACT(EPOCH FROM f.create_time) * 1000000)::bigint, 0),"
    " COALESCE((EXTRACT(EPOCH FROM f.update_time) * 1000000)::bigint, 0)"
    " FROM messages.messages m LEFT JOIN messages.fragments f ON f.message_id = m.id ";

// A µs count as a timestamptz, exactly.
#define MICROS_TO_TS(param) "(timestamptz 'epoch' + " param " * interval '1 microsecond')"

MessageRecord ReadMessage(const soci::row& r) {
  MessageRecord m;
  m.id = r.get<std::string>(0);
  m.project_id = r.get<std::string>(1);
  m.owner = r.get<std::string>(2);
  m.author = r.get<std::string>(3);
  m.content = r.get<std::string>(4);
  m.role = r.get<int>(5);
  m.type = r.get<int>(6);
  m.run_id = r.get<std::string>(7);
  m.create_time = absl::FromUnixMicros(r.get<long long>(8));
  m.update_time = absl::FromUnixMicros(r.get<long long>(9));
  if (std::string fragment_id = r.get<std::string>(10); !fragment_id.empty()) {
    FragmentRecord f;
    f.id = std::move(fragment_id);
    f.message_id = m.id;
    f.sandbox_url = r.get<std::string>(11);
    f.title = r.get<std::string>(12);
    f.files_bytes = r.get<long long>(13);
    f.files_count = r.get<int>(14);
    f.summary = r.get<std::string>(15);
    f.create_time = absl::FromUnixMicros(r.get<long long>(16));
    f.update_time = absl::FromUnixMicros(r.get<long long>(17));
    m.fragment = std::move(f);
  }
  return m;
}

// LoadFragmentFiles: the files of the message's fragment, if it has one.
void LoadFragmentFiles(DbConnection& conn, MessageRecord& m) {
  if (!m.fragment || m.fragment->files_count == 0) return;
  soci::rowset<soci::row> rows =
      (conn.session().prepare << "SELECT ff.path, c.content FROM messages.fragment_files ff"
                                 " JOIN messages.file_contents c"
                                 " ON c.project_id = CAST(:p AS uuid) AND c.sha256 = ff.sha256"
                                 " WHERE ff.fragment_id = CAST(:f AS uuid)",
       use(m.project_id), use(m.fragment->id));
  for (const soci::row& r : rows)
    m.fragment->files.emplace(r.get<std::string>(0), r.get<std::string>(1));
}

// SelectOne: the message `where` (bound to `value`) finds, with its fragment's files, or nullopt.
std::optional<MessageRecord> SelectOne(DbConnection& conn, const char* where,
                                       const std::string& value) {
  std::optional<MessageRecord> out;
  soci::rowset<soci::row> rows =
      (conn.session().prepare << absl::StrCat(kSelectMessage, where), use(value));
  for (const soci::row& r : rows) {
    out = ReadMessage(r);
    break;
  }
  if (out) LoadFragmentFiles(conn, *out);
  return out;
}

absl::Status NotFound(const std::string& what) {
  return absl::NotFoundError(absl::StrCat(what, " not found"));
}

// LockProject: serialises this transaction's writes for a project against its purge (shared
// for writers, exclusive for the purge), then refuses a purged project.
absl::Status LockProject(DbConnection& conn, const std::string& project_id, bool exclusive) {
  int locked = 0;
  conn.session() << (exclusive
                         ? "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended(:p, 7))"
                         : "SELECT 1 FROM pg_advisory_xact_lock_shared(hashtextextended(:p, 7))"),
      into(locked), use(project_id);
  if (exclusive) return absl::OkStatus();
  int purged = 0;
  conn.session()
      << "SELECT count(*) FROM messages.purged_projects WHERE project_id = CAST(:p AS uuid)",
      into(purged), use(project_id);
  return purged > 0 ? NotFound(absl::StrCat("project ", project_id)) : absl::OkStatus();
}

// CheckCaps: whether the project and the author have room for one more run: the runs active
// elsewhere plus their StartRun rows still in the outbox (parked rows are not on their way).
// Creates of one project, and of one author, wait for each other here, so two at once never
// both take the last place.
absl::Status CheckCaps(DbConnection& conn, const CreateParams& params) {
  const CreateParams::CapCheck& check = *params.cap_check;
  const std::string topic = kTopicStartRun;
  orchestrator::ActiveRuns total = check.active;
  long long n = 0;
  // Project lock first, then author lock, in every Create: no two wait for each other's second.
  if (check.caps.per_project > 0) {
    conn.session() << "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended(:p, 9))",
        use(params.project_id);
    conn.session() << "SELECT count(*) FROM messages.outbox WHERE ordering_key = :p AND topic = :t"
                      " AND deliver_time IS NULL AND next_attempt_time <> 'infinity'",
        into(n), use(params.project_id), use(topic);
    total.project += n;
  }
  if (check.caps.per_principal > 0 && !params.author.empty()) {
    conn.session() << "SELECT 1 FROM pg_advisory_xact_lock(hashtextextended(:a, 10))",
        use(params.author);
    conn.session() << "SELECT count(*) FROM messages.outbox WHERE author = :a AND topic = :t"
                      " AND deliver_time IS NULL AND next_attempt_time <> 'infinity'",
        into(n), use(params.author), use(topic);
    total.principal += n;
  }
  return orchestrator::CheckActiveRuns(check.caps, params.project_id, params.author, total);
}

// StoreFiles: the fragment's files, each content once per project: the contents the project
// does not have yet (sent only then), and each path with its content's hash.
void StoreFiles(DbConnection& conn, const std::string& project_id, const FragmentRecord& f) {
  nlohmann::json paths = nlohmann::json::object();     // path -> hash
  std::map<std::string, const std::string*> contents;  // hash -> content
  for (const auto& [path, content] : f.files) {
    std::string hash = common::Sha256Hex(content);
    paths[path] = hash;
    contents.emplace(std::move(hash), &content);
  }
  nlohmann::json hashes = nlohmann::json::array();
  for (const auto& [hash, content] : contents) hashes.push_back(hash);
  // Handlers accept only valid UTF-8 without NUL, which jsonb stores as is.
  const std::string paths_json =
      paths.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::string hashes_json = hashes.dump();
  soci::rowset<std::string> known =
      (conn.session().prepare
           << "SELECT encode(sha256, 'hex') FROM messages.file_contents"
              " WHERE project_id = CAST(:p AS uuid) AND sha256 IN"
              " (SELECT decode(h, 'hex') FROM jsonb_array_elements_text(CAST(:h AS jsonb)) h)",
       use(project_id), use(hashes_json));
  for (const std::string& hash : known) contents.erase(hash);
  for (const auto& [hash, content] : contents) {
    conn.session() << "INSERT INTO messages.file_contents (project_id, sha256, content)"
                      " VALUES (CAST(:p AS uuid), decode(:h, 'hex'), :c) ON CONFLICT DO NOTHING",
        use(project_id), use(hash), use(*content);
  }
  conn.session() << "INSERT INTO messages.fragment_files (fragment_id, path, sha256)"
                    " SELECT CAST(:f AS uuid), e.key, decode(e.value, 'hex') FROM "
                    "jsonb_each_text(CAST(:j AS jsonb)) e",
      use(f.id), use(paths_json);
}

// FilesBytes: what FragmentRecord::files_bytes says of these files.
int64_t FilesBytes(const std::map<std::string, std::string>& files) {
  int64_t bytes = 0;
  for (const auto& [path, content] : files)
    bytes += static_cast<int64_t>(path.size() + content.size());
  return bytes;
}

}  // namespace

absl::StatusOr<MessageRecord> MessageStore::Create(const CreateParams& params) {
  std::optional<MessageRecord> out;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    out.reset();
    QAI_RETURN_IF_ERROR(LockProject(conn, params.project_id, false));
    if (!params.request_id.empty()) {
      conn.session()
          << "INSERT INTO messages.idempotency (principal, request_id, method, resource_id)"
             " VALUES (:p, CAST(:r AS uuid), 'CreateMessage', CAST(:m AS uuid)) ON CONFLICT DO "
             "NOTHING",
          use(params.principal), use(params.request_id), use(params.id);
      std::string method, resource;
      conn.session() << "SELECT method, resource_id::text FROM messages.idempotency"
                        " WHERE principal = :p AND request_id = CAST(:r AS uuid)",
          into(method), into(resource), use(params.principal), use(params.request_id);
      if (method != "CreateMessage") {
        return common::InvalidField(
            "request_id",
            absl::StrCat("was already used for a different call (", common::ToAbsl(method), ")"));
      }
      if (resource != params.id) {  // a repeat: the first request's message
        std::optional<MessageRecord> first =
            SelectOne(conn, "WHERE m.id = CAST(:id AS uuid)", resource);
        if (!first) return absl::NotFoundError("the message this request created was purged");
        out = std::move(*first);
        return absl::OkStatus();
      }
    }
    if (params.cap_check) {
      QAI_RETURN_IF_ERROR(CheckCaps(conn, params));
    }
    conn.session()
        << "INSERT INTO messages.messages (id, project_id, owner, author, content, role, type)"
           " VALUES (CAST(:id AS uuid), CAST(:p AS uuid), :o, :a, :c, :role, :type)",
        use(params.id), use(params.project_id), use(params.owner), use(params.author),
        use(params.content), use(kRoleUser), use(kTypeResult);
    // Keyed by project: a project's runs are requested in the order its prompts arrived.
    absl::StatusOr<std::string> queued = common::EnqueueOutbox(
        conn, kOutboxTable,
        {kTopicStartRun, params.start_run_payload, params.project_id, params.author});
    if (!queued.ok()) return queued.status();
    out = SelectOne(conn, "WHERE m.id = CAST(:id AS uuid)", params.id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return *std::move(out);
}

absl::StatusOr<MessageRecord> MessageStore::Get(const std::string& id) {
  std::optional<MessageRecord> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    out = SelectOne(conn, "WHERE m.id = CAST(:id AS uuid)", id);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!out) return NotFound(absl::StrCat("message ", id));
  return *std::move(out);
}

absl::StatusOr<std::vector<MessageRecord>> MessageStore::List(const ListParams& params) {
  std::vector<MessageRecord> out;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    out.clear();
    // The first page starts before every real row: below them oldest first (1970), above them
    // newest first (year 9999).
    long long after_us =
        params.after ? params.after->first : (params.newest_first ? 253402300799999999LL : 0);
    std::string after_id = params.after
                               ? params.after->second
                               : (params.newest_first ? "ffffffff-ffff-ffff-ffff-ffffffffffff"
                                                      : "00000000-0000-0000-0000-000000000000");
    // Only constants go into the text; the values are bound.
    const char* const cmp = params.newest_first ? "<" : ">";
    const char* const dir = params.newest_first ? " DESC" : "";
    const std::string query = absl::StrCat(
        kSelectMessage, "WHERE m.project_id = CAST(:p AS uuid) AND (m.create_time, m.id) ", cmp,
        " (" MICROS_TO_TS(":us"), ", CAST(:aid AS uuid)) ORDER BY m.project_id", dir,
        ", m.create_time", dir, ", m.id", dir, " LIMIT :n");
    soci::rowset<soci::row> rows = (conn.session().prepare << query, use(params.project_id),
                                    use(after_us), use(after_id), use(params.limit));
    for (const soci::row& r : rows) out.push_back(ReadMessage(r));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status MessageStore::LoadFiles(std::vector<MessageRecord>& messages) {
  return db_->Run([&](DbConnection& conn) -> absl::Status {
    for (MessageRecord& m : messages) {
      if (m.fragment) m.fragment->files.clear();
      LoadFragmentFiles(conn, m);
    }
    return absl::OkStatus();
  });
}

absl::StatusOr<MessageRecord> MessageStore::RecordResult(const ResultParams& params) {
  std::optional<MessageRecord> out;
  absl::Status s = db_->Transaction([&](DbConnection& conn) -> absl::Status {
    out.reset();
    QAI_RETURN_IF_ERROR(LockProject(conn, params.project_id, false));
    // The unique index on (run_id) of ASSISTANT messages makes a repeat (even a concurrent one)
    // insert nothing.
    std::string inserted;
    soci::indicator ind = soci::i_null;
    conn.session() << "INSERT INTO messages.messages (id, project_id, owner, author, content, "
                      "role, type, run_id)"
                      " VALUES (CAST(:id AS uuid), CAST(:p AS uuid), :o, '', :c, :role, :type, "
                      "CAST(:run AS uuid))"
                      " ON CONFLICT (run_id) WHERE role = 2 DO NOTHING RETURNING id::text",
        into(inserted, ind), use(params.id), use(params.project_id), use(params.owner),
        use(params.content), use(kRoleAssistant), use(params.type), use(params.run_id);
    if (conn.session().got_data() && ind == soci::i_ok && params.fragment) {
      const FragmentRecord& f = *params.fragment;
      const long long files_bytes = FilesBytes(f.files);
      const int files_count = static_cast<int>(f.files.size());
      conn.session() << "INSERT INTO messages.fragments"
                        " (id, message_id, sandbox_url, title, files_bytes, files_count, summary)"
                        " VALUES (CAST(:id AS uuid), CAST(:m AS uuid), :u, :t, :b, :n, :s)",
          use(f.id), use(params.id), use(f.sandbox_url), use(f.title), use(files_bytes),
          use(files_count), use(f.summary);
      StoreFiles(conn, params.project_id, f);
    }
    std::optional<MessageRecord> result =
        SelectOne(conn, "WHERE m.run_id = CAST(:run AS uuid) AND m.role = 2", params.run_id);
    if (!result) return absl::AbortedError("run result vanished; retry");
    if (result->project_id != params.project_id) {
      return common::InvalidField("run_id", "already has a result in another project");
    }
    out = std::move(*result);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return *std::move(out);
}

absl::Status RecordPromptNotRun(DbConnection& conn, const std::string& id,
                                const std::string& message_id, std::string_view why) {
  std::string project_id, owner;
  conn.session()
      << "SELECT project_id::text, owner FROM messages.messages WHERE id = CAST(:m AS uuid)",
      into(project_id), into(owner), use(message_id);
  if (!conn.session().got_data()) return absl::OkStatus();
  // A try, not a wait: a purge holds the project's lock while it deletes outbox rows, this
  // transaction one of them; a project being purged has no one left to tell.
  int locked = 0;
  conn.session() << "SELECT pg_try_advisory_xact_lock_shared(hashtextextended(:p, 7))::int",
      into(locked), use(project_id);
  if (locked == 0) return absl::OkStatus();
  int purged = 0;
  conn.session()
      << "SELECT count(*) FROM messages.purged_projects WHERE project_id = CAST(:p AS uuid)",
      into(purged), use(project_id);
  if (purged > 0) return absl::OkStatus();
  const std::string content = absl::StrCat("This prompt could not run: ", std::string(why));
  conn.session()
      << "INSERT INTO messages.messages (id, project_id, owner, author, content, role, type)"
         " VALUES (CAST(:id AS uuid), CAST(:p AS uuid), :o, '', :c, :role, :type)"
         " ON CONFLICT (id) DO NOTHING",
      use(id), use(project_id), use(owner), use(content), use(kRoleAssistant), use(kTypeError);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> MessageStore::ProjectOwner(
    const std::string& project_id) {
  std::optional<std::string> owner;
  absl::Status s = db_->Run([&](DbConnection& conn) -> absl::Status {
    std::string found;
    conn.session() << "SELECT owner FROM messages.messages WHERE project_id = CAST(:p AS uuid)"
                      " ORDER BY project_id, create_time, id LIMIT 1",
        into(found), use(project_id);
    owner = conn.session().got_data() ? std::optional<std::string>(found) : std::nullopt;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return owner;
}

absl::Status MessageStore::SetRunId(const std::string& message_id, const std::string& run_id) {
  return db_->Run([&](DbConnection& conn) -> absl::Status {
    conn.session() << "UPDATE messages.messages SET run_id = CAST(:run AS uuid), update_time = "
                      "clock_timestamp()"
                      " WHERE id = CAST(:id AS uuid) AND role = 1 AND run_id IS DISTINCT FROM "
                      "CAST(:run AS uuid)",
        use(run_id), use(message_id), use(run_id);
    return absl::OkStatus();
  });
}

absl::Status MessageStore::Purge(const std::string& project_id) {
  return db_->Transaction([&](DbConnection& conn) -> absl::Status {
    QAI_RETURN_IF_ERROR(LockProject(conn, project_id, true));
    conn.session() << "INSERT INTO messages.purged_projects (project_id) VALUES (CAST(:p AS uuid))"
                      " ON CONFLICT DO NOTHING",
        use(project_id);
    // Fragments go with their messages, and their files' paths with them (ON DELETE CASCADE).
    conn.session() << "DELETE FROM messages.messages WHERE project_id = CAST(:p AS uuid)",
        use(project_id);
    conn.session() << "DELETE FROM messages.file_contents WHERE project_id = CAST(:p AS uuid)",
        use(project_id);
    // Runs not yet requested are not requested any more; the projects service cancels the rest.
    const std::string topic = kTopicStartRun;
    conn.session() << "DELETE FROM messages.outbox WHERE ordering_key = :p AND topic = :t AND "
                      "deliver_time IS NULL",
        use(project_id), use(topic);
    return absl::OkStatus();
  });
}

}  // namespace qai::messages

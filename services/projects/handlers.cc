#include "services/projects/handlers.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/ids.h"
#include "common/proto_time.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/utf8.h"
#include "common/validation.h"
#include "google/protobuf/util/time_util.h"
#include "qai/orchestrator/v1/orchestrator.pb.h"
#include "services/projects/effects.h"

namespace qai::projects {
namespace {

using common::CallContext;
using common::FieldViolations;
using google::protobuf::util::TimeUtil;

Actor ActorOf(const CallContext& call) {
  return Actor{call.principal.id, call.principal.role == common::Role::kUser};
}

std::string ListScope(const Actor& actor) {
  return actor.owner_scoped ? absl::StrCat("projects/owner:", actor.id) : "projects/all";
}

}  // namespace

std::string EtagOf(int64_t version) { return absl::StrCat("\"", version, "\""); }

std::optional<int64_t> ParseEtag(std::string_view etag) {
  int64_t version = 0;
  if (etag.size() < 3 || etag.front() != '"' || etag.back() != '"' ||
      !absl::SimpleAtoi(common::ToAbsl(etag.substr(1, etag.size() - 2)), &version)) {
    return std::nullopt;
  }
  return version;
}

// CheckEtag: an optional etag; sets expected when one is given and valid.
static void CheckEtag(FieldViolations& bad, std::string_view field, std::string_view etag,
                      std::optional<int64_t>& expected) {
  if (etag.empty()) return;
  expected = ParseEtag(etag);
  if (!expected) bad.Add(std::string(field), "is not an etag this service issued");
}

// ForkName: a fork's display name: the one asked for, else the source's with " (fork)", within
// the limit.
static std::string ForkName(const std::string& asked, const std::string& source) {
  if (!asked.empty()) return asked;
  std::string name = absl::StrCat(source.empty() ? "Project" : source, " (fork)");
  return common::TruncateUtf8(name, kMaxDisplayNameChars);
}

void ToProto(const ProjectRecord& r, pb::Project& out) {
  out.set_id(r.id);
  out.set_name(r.name);
  out.set_display_name(r.display_name);
  out.set_owner(r.owner);
  common::SetTimestamp(r.create_time, out.mutable_create_time());
  common::SetTimestamp(r.update_time, out.mutable_update_time());
  out.set_etag(EtagOf(r.version));
  if (!r.latest_run_id.empty()) {
    out.mutable_latest_run()->set_id(r.latest_run_id);
    out.mutable_latest_run()->set_state(r.latest_run_state);
  }
}

void ProjectHandlers::CreateProject(const CallContext& call, const pb::CreateProjectRequest& req,
                                    pb::Project& resp, common::Reply reply) {
  FieldViolations bad;
  common::CheckText(bad, "initial_prompt", req.initial_prompt(), 1, common::kMaxPromptChars);
  common::CheckText(bad, "display_name", req.display_name(), 0, kMaxDisplayNameChars);
  common::CheckUuid(bad, "request_id", req.request_id(), /*required=*/false);
  if (absl::Status s = bad.ToStatus(); !s.ok()) return reply(s);

  CreateParams params{.actor = ActorOf(call),
                      .id = common::NewUuid(),
                      .display_name = req.display_name(),
                      .request_id = req.request_id(),
                      .trace_request_id = call.request_id};
  params.initial_message_payload =
      FirstPromptPayload(params.id, req.initial_prompt(), params.actor.id);
  Create(call, std::move(params), resp, std::move(reply));
}

void ProjectHandlers::Create(const CallContext& call, CreateParams params, pb::Project& resp,
                             common::Reply reply) {
  auto create = [this, &resp, reply = std::move(reply)](CreateParams params,
                                                        absl::Status room) mutable {
    auto answer = [&resp, reply = std::move(reply)](absl::StatusOr<ProjectRecord> project) {
      if (!project.ok()) return reply(project.status());
      ToProto(*project, resp);
      reply(absl::OkStatus());
    };
    if (room.ok()) {
      auto created = [this, answer = std::move(answer)](absl::StatusOr<ProjectRecord> project) {
        if (project.ok()) outbox_written_();
        answer(std::move(project));
      };
      return store_->CreateAsync(std::move(params), std::move(created));
    }
    // At the cap, a repeat of a request that made its project still answers that project.
    if (params.request_id.empty()) return answer(std::move(room));
    store_->FindCreatedAsync(params, std::move(room), std::move(answer));
  };
  // The first prompt counts against the author's cap on active runs as every later one does.
  if (room_ == nullptr) return create(std::move(params), absl::OkStatus());
  const std::string project_id = params.id;
  room_->Check(call, project_id,
               [create = std::move(create), params = std::move(params)](absl::Status room) mutable {
                 create(std::move(params), std::move(room));
               });
}

void ProjectHandlers::ForkProject(const CallContext& call, const pb::ForkProjectRequest& req,
                                  pb::Project& resp, common::Reply reply) {
  FieldViolations bad;
  common::CheckUuid(bad, "project_id", req.project_id(), /*required=*/true);
  if (req.version() < 1) bad.Add("version", "must be 1 or more");
  common::CheckText(bad, "display_name", req.display_name(), 0, kMaxDisplayNameChars);
  common::CheckUuid(bad, "request_id", req.request_id(), /*required=*/false);
  if (absl::Status s = bad.ToStatus(); !s.ok()) return reply(s);
  if (orchestrator_ == nullptr) return reply(absl::UnimplementedError("forks are not served here"));
  // The source must be the caller's to see (NOT_FOUND as for an unknown one), and have the
  // version; then the fork is created as a project is, its first message naming the version.
  auto fork = [this, call, req, &resp, reply](absl::StatusOr<ProjectRecord> source) mutable {
    if (!source.ok()) return reply(source.status());
    const std::string source_id = source->id;
    auto create = [this, call, req, &resp, reply,
                   source = *std::move(source)](absl::Status exists) mutable {
      if (!exists.ok()) return reply(exists);
      CreateParams params{.actor = ActorOf(call),
                          .id = common::NewUuid(),
                          .display_name = ForkName(req.display_name(), source.display_name),
                          .request_id = req.request_id(),
                          .trace_request_id = call.request_id};
      params.initial_message_payload = ForkFirstMessagePayload(
          params.id,
          absl::StrCat("Fork of \u201c",
                       source.display_name.empty() ? source.name : source.display_name,
                       "\u201d at version ", req.version()),
          params.actor.id, source.id, req.version());
      Create(call, std::move(params), resp, std::move(reply));
    };
    orchestrator_->VersionExistsAsync(call, source_id, req.version(), std::move(create));
  };
  store_->GetAsync(ActorOf(call), absl::AsciiStrToLower(req.project_id()), std::move(fork));
}

void ProjectHandlers::GetProject(const CallContext& call, const pb::GetProjectRequest& req,
                                 pb::Project& resp, common::Reply reply) {
  FieldViolations bad;
  common::CheckUuid(bad, "id", req.id(), /*required=*/true);
  if (absl::Status s = bad.ToStatus(); !s.ok()) return reply(s);
  store_->GetAsync(ActorOf(call), req.id(),
                   [&resp, reply = std::move(reply)](absl::StatusOr<ProjectRecord> found) {
                     if (!found.ok()) return reply(found.status());
                     ToProto(*found, resp);
                     reply(absl::OkStatus());
                   });
}

absl::Status ProjectHandlers::ListProjects(const CallContext& call,
                                           const pb::ListProjectsRequest& req,
                                           pb::ListProjectsResponse& resp) {
  QAI_ASSIGN_OR_RETURN(int page_size, common::NormalizePageSize(req.page_size()));
  ListParams params{.actor = ActorOf(call), .page_size = page_size};
  const std::string scope = ListScope(params.actor);
  QAI_ASSIGN_OR_RETURN(std::optional<common::KeysetPosition> after,
                       common::DecodePosition(*tokens_, req.page_token(), scope));
  if (after) params.after.emplace(after->micros, after->id);
  QAI_ASSIGN_OR_RETURN(ListResult page, store_->List(params));
  for (const ProjectRecord& r : page.projects) ToProto(r, *resp.add_projects());
  if (page.more && !page.projects.empty()) {
    const ProjectRecord& last = page.projects.back();
    resp.set_next_page_token(
        common::EncodePosition(*tokens_, scope, {absl::ToUnixMicros(last.update_time), last.id}));
  }
  return absl::OkStatus();
}

absl::Status ProjectHandlers::UpdateProject(const CallContext& call,
                                            const pb::UpdateProjectRequest& req,
                                            pb::Project& resp) {
  FieldViolations bad;
  if (!req.has_project()) {
    bad.Add("project", "is required");
    return bad.ToStatus();
  }
  const pb::Project& project = req.project();
  common::CheckUuid(bad, "project.id", project.id(), /*required=*/true);
  bool set_display_name = req.update_mask().paths_size() == 0;
  for (const std::string& path : req.update_mask().paths()) {
    if (path == "display_name") {
      set_display_name = true;
    } else {
      bad.Add("update_mask",
              absl::StrCat("names \"", path, "\", which cannot be updated (only display_name)"));
    }
  }
  if (set_display_name) {
    common::CheckText(bad, "project.display_name", project.display_name(), 0, kMaxDisplayNameChars);
  }
  common::CheckUuid(bad, "request_id", req.request_id(), /*required=*/false);
  std::optional<int64_t> expected_version;
  CheckEtag(bad, "project.etag", project.etag(), expected_version);
  QAI_RETURN_IF_ERROR(bad.ToStatus());

  UpdateParams params{.actor = ActorOf(call),
                      .id = project.id(),
                      .display_name = std::nullopt,
                      .expected_version = expected_version,
                      .request_id = req.request_id()};
  if (set_display_name) params.display_name = project.display_name();
  QAI_ASSIGN_OR_RETURN(ProjectRecord updated, store_->Update(params));
  ToProto(updated, resp);
  return absl::OkStatus();
}

absl::Status ProjectHandlers::DeleteProject(const CallContext& call,
                                            const pb::DeleteProjectRequest& req) {
  FieldViolations bad;
  common::CheckUuid(bad, "id", req.id(), /*required=*/true);
  common::CheckUuid(bad, "request_id", req.request_id(), /*required=*/false);
  std::optional<int64_t> expected_version;
  CheckEtag(bad, "etag", req.etag(), expected_version);
  QAI_RETURN_IF_ERROR(bad.ToStatus());

  DeleteParams params{.actor = ActorOf(call),
                      .id = req.id(),
                      .expected_version = expected_version,
                      .request_id = req.request_id(),
                      .purge_payload = PurgeMessagesPayload(req.id()),
                      .cancel_payload = CancelRunsPayload(req.id())};
  QAI_RETURN_IF_ERROR(store_->Delete(params));
  outbox_written_();
  return absl::OkStatus();
}

namespace {

// CheckLatestRun: one piece of run news, its fields named after `prefix`.
void CheckLatestRun(FieldViolations& bad, const std::string& prefix,
                    const pb::RecordLatestRunRequest& req) {
  common::CheckUuid(bad, prefix + "project_id", req.project_id(), /*required=*/true);
  common::CheckUuid(bad, prefix + "run.id", req.run().id(), /*required=*/true);
  orchestrator::v1::Run::State state = orchestrator::v1::Run::STATE_UNSPECIFIED;
  if (!orchestrator::v1::Run::State_Parse(req.run().state(), &state) ||
      state == orchestrator::v1::Run::STATE_UNSPECIFIED) {
    bad.Add(prefix + "run.state", "must name a qai.orchestrator.v1.Run.State, e.g. STATE_RUNNING");
  }
  if (!req.has_run_create_time()) bad.Add(prefix + "run_create_time", "is required");
  if (req.sequence() < 1) bad.Add(prefix + "sequence", "must be at least 1");
}

LatestRun ToLatestRun(const pb::RecordLatestRunRequest& req) {
  return {.project_id = req.project_id(),
          .run_id = req.run().id(),
          .state = req.run().state(),
          .run_create_time_us = TimeUtil::TimestampToMicroseconds(req.run_create_time()),
          .sequence = req.sequence()};
}

}  // namespace

absl::Status ProjectHandlers::RecordLatestRun(const CallContext& call,
                                              const pb::RecordLatestRunRequest& req) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "RecordLatestRun"));
  FieldViolations bad;
  CheckLatestRun(bad, "", req);
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  return store_->RecordLatestRuns({ToLatestRun(req)}).status();
}

absl::Status ProjectHandlers::RecordLatestRuns(const CallContext& call,
                                               const pb::RecordLatestRunsRequest& req) {
  QAI_RETURN_IF_ERROR(common::RequireService(call, "RecordLatestRuns"));
  FieldViolations bad;
  if (req.runs_size() > kMaxLatestRuns)
    bad.Add("runs", absl::StrCat("must be at most ", kMaxLatestRuns));
  for (int i = 0; i < req.runs_size() && i < kMaxLatestRuns; ++i) {
    CheckLatestRun(bad, absl::StrCat("runs[", i, "]."), req.runs(i));
  }
  QAI_RETURN_IF_ERROR(bad.ToStatus());
  std::vector<LatestRun> runs;
  for (const pb::RecordLatestRunRequest& r : req.runs()) runs.push_back(ToLatestRun(r));
  return store_->RecordLatestRuns(runs).status();
}

}  // namespace qai::projects

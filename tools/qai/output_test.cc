#include "tools/qai/output.h"

#include <string>

#include "google/rpc/error_details.pb.h"
#include "google/rpc/status.pb.h"
#include "gtest/gtest.h"
#include "tools/qai/messages_commands.h"
#include "tools/qai/projects_commands.h"

namespace qai::cli {
namespace {

// RichStatus: what a QAI server sends for INVALID_ARGUMENT (see docs/api.md, AIP-193).
grpc::Status RichStatus(grpc::StatusCode code, const std::string& message,
                        const google::protobuf::Message& detail) {
  google::rpc::Status rich;
  rich.set_code(static_cast<int>(code));
  rich.set_message(message);
  rich.add_details()->PackFrom(detail);
  return grpc::Status(code, message, rich.SerializeAsString());
}

TEST(FormatRpcErrorTest, CodeAndMessage) {
  EXPECT_EQ(FormatRpcError(grpc::Status(grpc::StatusCode::NOT_FOUND, "project not found")),
            "error: NOT_FOUND: project not found\n");
  EXPECT_EQ(FormatRpcError(grpc::Status(grpc::StatusCode::UNAVAILABLE, "")),
            "error: UNAVAILABLE\n");
}

TEST(FormatRpcErrorTest, FieldViolationsFromBadRequest) {
  google::rpc::BadRequest bad_request;
  auto* v1 = bad_request.add_field_violations();
  v1->set_field("initial_prompt");
  v1->set_description("must not be blank");
  auto* v2 = bad_request.add_field_violations();
  v2->set_field("display_name");
  v2->set_description("at most 100 characters");
  grpc::Status status =
      RichStatus(grpc::StatusCode::INVALID_ARGUMENT,
                 "initial_prompt must not be blank; display_name too long", bad_request);
  EXPECT_EQ(FormatRpcError(status),
            "error: INVALID_ARGUMENT: initial_prompt must not be blank; display_name too long\n"
            "  initial_prompt: must not be blank\n"
            "  display_name: at most 100 characters\n");
}

TEST(FormatRpcErrorTest, RetryDelay) {
  google::rpc::RetryInfo retry;
  retry.mutable_retry_delay()->set_seconds(2);
  EXPECT_EQ(FormatRpcError(RichStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, "slow down", retry)),
            "error: RESOURCE_EXHAUSTED: slow down\n  retry after: 2s\n");
}

TEST(FormatRpcErrorTest, QuotaViolations) {
  google::rpc::QuotaFailure quota;
  auto* v = quota.add_violations();
  v->set_subject("project:p-1");
  v->set_description(
      "at most 5 runs queued or running at once per project (QAI_RUN_MAX_ACTIVE_PER_PROJECT); it "
      "has 5");
  EXPECT_EQ(FormatRpcError(
                RichStatus(grpc::StatusCode::RESOURCE_EXHAUSTED, "too many active runs", quota)),
            "error: RESOURCE_EXHAUSTED: too many active runs\n"
            "  project:p-1: at most 5 runs queued or running at once per project "
            "(QAI_RUN_MAX_ACTIVE_PER_PROJECT);"
            " it has 5\n");
}

TEST(FormatRpcErrorTest, UnknownOrBrokenDetailsAreSkipped) {
  google::protobuf::Timestamp unrelated;
  EXPECT_EQ(FormatRpcError(RichStatus(grpc::StatusCode::INTERNAL, "oops", unrelated)),
            "error: INTERNAL: oops\n");
  EXPECT_EQ(FormatRpcError(grpc::Status(grpc::StatusCode::INTERNAL, "oops", "\xff\xff not proto")),
            "error: INTERNAL: oops\n");
}

TEST(FormatMutationErrorTest, RequestIdOnlyWhenARepeatMakesSense) {
  const std::string id = "0b5a2c1e-7d7e-4a59-9a7e-3b1f2d3c4e5f";
  for (grpc::StatusCode code : {grpc::StatusCode::UNAVAILABLE, grpc::StatusCode::DEADLINE_EXCEEDED,
                                grpc::StatusCode::RESOURCE_EXHAUSTED, grpc::StatusCode::INTERNAL,
                                grpc::StatusCode::UNKNOWN, grpc::StatusCode::CANCELLED}) {
    EXPECT_EQ(FormatMutationError(grpc::Status(code, "m"), id),
              std::string("error: ") + StatusCodeName(code) + ": m\n" + "request_id: " + id +
                  " (repeat with --request-id " + id + ": it takes effect at most once)\n");
  }
  // A refusal is final: the same request would be refused again.
  for (grpc::StatusCode code :
       {grpc::StatusCode::INVALID_ARGUMENT, grpc::StatusCode::NOT_FOUND, grpc::StatusCode::ABORTED,
        grpc::StatusCode::PERMISSION_DENIED, grpc::StatusCode::FAILED_PRECONDITION}) {
    EXPECT_EQ(FormatMutationError(grpc::Status(code, "m"), id),
              FormatRpcError(grpc::Status(code, "m")));
  }
}

TEST(FormatTimestampTest, Rfc3339InUtc) {
  google::protobuf::Timestamp t;
  EXPECT_EQ(FormatTimestamp(t), "");
  t.set_seconds(1769850900);  // 2026-01-31T09:15:00Z
  EXPECT_EQ(FormatTimestamp(t), "2026-01-31T09:15:00Z");
  t.set_nanos(250000000);
  EXPECT_EQ(FormatTimestamp(t), "2026-01-31T09:15:00.250Z");
}

qai::projects::v1::Project SampleProject() {
  qai::projects::v1::Project p;
  p.set_id("5b0f3c1e-0000-4000-8000-000000000001");
  p.set_name("brave-otter-4f2a");
  p.set_display_name("My site");
  p.set_owner("user-42");
  p.mutable_create_time()->set_seconds(1769850900);
  p.mutable_update_time()->set_seconds(1769850960);
  p.set_etag("e1");
  return p;
}

TEST(ProjectFormatTest, Human) {
  qai::projects::v1::Project p = SampleProject();
  EXPECT_EQ(FormatProject(p),
            "id: 5b0f3c1e-0000-4000-8000-000000000001\n"
            "name: brave-otter-4f2a\n"
            "display_name: My site\n"
            "owner: user-42\n"
            "created: 2026-01-31T09:15:00Z\n"
            "updated: 2026-01-31T09:16:00Z\n"
            "etag: e1\n");
  p.mutable_latest_run()->set_id("r1");
  p.mutable_latest_run()->set_state("STATE_RUNNING");
  EXPECT_TRUE(FormatProject(p).ends_with("latest_run: r1 STATE_RUNNING\n"));
  EXPECT_EQ(FormatProjectRow(p),
            "5b0f3c1e-0000-4000-8000-000000000001  brave-otter-4f2a  My site  "
            "2026-01-31T09:16:00Z\n");
  p.clear_display_name();
  EXPECT_EQ(FormatProjectRow(p),
            "5b0f3c1e-0000-4000-8000-000000000001  brave-otter-4f2a  -  2026-01-31T09:16:00Z\n");
}

TEST(ProjectFormatTest, JsonIsOneLine) {
  EXPECT_EQ(ToJsonLine(SampleProject()),
            R"({"id":"5b0f3c1e-0000-4000-8000-000000000001","name":"brave-otter-4f2a",)"
            R"("displayName":"My site","owner":"user-42","createTime":"2026-01-31T09:15:00Z",)"
            R"("updateTime":"2026-01-31T09:16:00Z","etag":"e1"})"
            "\n");
}

qai::messages::v1::Message SampleMessage() {
  qai::messages::v1::Message m;
  m.set_id("7d2e0c41-0000-4000-8000-000000000002");
  m.set_project_id("5b0f3c1e-0000-4000-8000-000000000001");
  m.set_role(qai::messages::v1::Message::ROLE_USER);
  m.set_type(qai::messages::v1::Message::TYPE_RESULT);
  m.set_author("user-42");
  m.set_run_id("r1");
  m.set_content("Build a todo app");
  m.mutable_create_time()->set_seconds(1769850900);
  return m;
}

TEST(MessageFormatTest, UserMessage) {
  EXPECT_EQ(FormatMessage(SampleMessage()),
            "id: 7d2e0c41-0000-4000-8000-000000000002\n"
            "role: USER\n"
            "type: RESULT\n"
            "author: user-42\n"
            "created: 2026-01-31T09:15:00Z\n"
            "run_id: r1\n"
            "content: Build a todo app\n");
}

TEST(MessageFormatTest, AssistantMessageWithFragmentShowsPathsNotContents) {
  qai::messages::v1::Message m = SampleMessage();
  m.set_role(qai::messages::v1::Message::ROLE_ASSISTANT);
  m.clear_author();
  m.set_content("Your todo app is ready.\nOpen the preview.");
  auto* f = m.mutable_fragment();
  f->set_title("Todo app");
  f->set_sandbox_url("http://localhost:8080/p/abc/");
  f->set_summary("A page with a list");
  (*f->mutable_files())["app/page.tsx"] = "export default function Page() {}";
  (*f->mutable_files())["app/globals.css"] = "body {}";
  EXPECT_EQ(FormatMessage(m),
            "id: 7d2e0c41-0000-4000-8000-000000000002\n"
            "role: ASSISTANT\n"
            "type: RESULT\n"
            "created: 2026-01-31T09:15:00Z\n"
            "run_id: r1\n"
            "content: Your todo app is ready.\n"
            "  Open the preview.\n"
            "fragment: Todo app\n"
            "  sandbox_url: http://localhost:8080/p/abc/\n"
            "  file: app/globals.css\n"
            "  file: app/page.tsx\n");
}

TEST(MessageFormatTest, ErrorTypeAndUnknownRole) {
  qai::messages::v1::Message m = SampleMessage();
  m.set_type(qai::messages::v1::Message::TYPE_ERROR);
  m.set_role(static_cast<qai::messages::v1::Message::Role>(7));  // added by a newer server
  std::string text = FormatMessage(m);
  EXPECT_NE(text.find("role: 7\ntype: ERROR\n"), std::string::npos) << text;
}

TEST(MessageFormatTest, JsonHasFileContents) {
  qai::messages::v1::Message m = SampleMessage();
  (*m.mutable_fragment()->mutable_files())["a.txt"] = "hello";
  EXPECT_EQ(
      ToJsonLine(m),
      R"({"id":"7d2e0c41-0000-4000-8000-000000000002","projectId":"5b0f3c1e-0000-4000-8000-000000000001",)"
      R"("content":"Build a todo app","role":"ROLE_USER","type":"TYPE_RESULT","runId":"r1",)"
      R"("createTime":"2026-01-31T09:15:00Z","fragment":{"files":{"a.txt":"hello"}},"author":"user-42"})"
      "\n");
}

}  // namespace
}  // namespace qai::cli

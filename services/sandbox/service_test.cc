// SandboxService over gRPC, its real handlers, workspaces and store (tests/support's
// LocalSandbox) against a private PostgreSQL: who may call, fences, changes, snapshots,
// streaming, purges and uid allocation.

#include <gtest/gtest.h>

#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "common/db_pool.h"
#include "common/ids.h"
#include "common/pg_listener.h"
#include "common/status.h"
#include "qai/sandbox/v1/sandbox.grpc.pb.h"
#include "services/sandbox/store.h"
#include "tests/support/local_sandbox.h"
#include "tests/support/pg_server.h"
#include "tests/support/unpack.h"

namespace qai::sandbox {
namespace {

using grpc::StatusCode;

class SandboxServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    db_url_ = testing::PgServer::Shared().CreateDatabase();
    auto sandbox =
        testing::LocalSandbox::Start(db_url_, {.preview_base_url = "https://preview.test"});
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    sandbox_ = *std::move(sandbox);
    stub_ = v1::SandboxService::NewStub(sandbox_->channel());
  }

  void AsService(grpc::ClientContext& ctx) {
    ctx.AddMetadata("x-api-key", sandbox_->api_key());
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }

  grpc::Status Open(int64_t fence, std::string* snapshot_id = nullptr,
                    const std::string& project = "", bool* empty = nullptr) {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::OpenWorkspaceRequest req;
    req.set_project_id(project.empty() ? project_ : project);
    req.set_fence(fence);
    v1::Workspace resp;
    grpc::Status s = stub_->OpenWorkspace(&ctx, req, &resp);
    if (snapshot_id != nullptr) *snapshot_id = resp.snapshot_id();
    if (empty != nullptr) *empty = resp.empty();
    return s;
  }

  grpc::Status Write(int64_t fence, const std::string& path, const std::string& content) {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::WriteFilesRequest req;
    req.set_project_id(project_);
    req.set_fence(fence);
    v1::FileContent* f = req.add_files();
    f->set_path(path);
    f->set_content(content);
    v1::WriteFilesResponse resp;
    grpc::Status s = stub_->WriteFiles(&ctx, req, &resp);
    if (s.ok()) {
      EXPECT_EQ(resp.results(0).error(), "");
    }
    return s;
  }

  // Run: the command's streamed output, and its end (exit code -1 when none came).
  grpc::Status Run(int64_t fence, const std::string& command, std::string* output, int* exit_code,
                   std::vector<absl::Time>* arrivals = nullptr) {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::RunCommandRequest req;
    req.set_project_id(project_);
    req.set_fence(fence);
    req.set_command(command);
    auto reader = stub_->RunCommand(&ctx, req);
    v1::RunCommandResponse piece;
    *exit_code = -1;
    while (reader->Read(&piece)) {
      if (arrivals != nullptr) arrivals->push_back(absl::Now());
      if (piece.has_end()) {
        *exit_code = piece.end().exit_code();
      } else {
        output->append(piece.output());
      }
    }
    return reader->Finish();
  }

  // AsMap: a GetChanges answer (or a with_changes report) as path -> content (nullopt: removed).
  static std::map<std::string, std::optional<std::string>> AsMap(
      const v1::GetChangesResponse& resp) {
    std::map<std::string, std::optional<std::string>> out;
    for (const auto& c : resp.changes())
      out[c.path()] = c.has_content() ? std::optional(c.content()) : std::nullopt;
    return out;
  }

  std::map<std::string, std::optional<std::string>> Changes(int64_t fence) {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::GetChangesRequest req;
    req.set_project_id(project_);
    req.set_fence(fence);
    v1::GetChangesResponse resp;
    grpc::Status s = stub_->GetChanges(&ctx, req, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return AsMap(resp);
  }

  grpc::Status Snapshot(int64_t fence, const std::string& id, v1::Snapshot* out) {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::CreateSnapshotRequest req;
    req.set_project_id(project_);
    req.set_fence(fence);
    req.set_snapshot_id(id);
    return stub_->CreateSnapshot(&ctx, req, out);
  }

  grpc::Status Restore(int64_t fence, const std::string& snapshot_id, std::string* held) {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::RestoreSnapshotRequest req;
    req.set_project_id(project_);
    req.set_fence(fence);
    req.set_snapshot_id(snapshot_id);
    v1::Workspace resp;
    grpc::Status s = stub_->RestoreSnapshot(&ctx, req, &resp);
    *held = resp.snapshot_id();
    return s;
  }

  // WorkspaceFiles: GetWorkspaceFiles of the project (path -> content; contents when asked).
  grpc::Status WorkspaceFiles(v1::WorkspaceFiles* out, bool with_contents = true,
                              const std::vector<std::string>& paths = {},
                              const std::string& project = "") {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::GetWorkspaceFilesRequest req;
    req.set_project_id(project.empty() ? project_ : project);
    req.set_with_contents(with_contents);
    for (const std::string& p : paths) req.add_paths(p);
    return stub_->GetWorkspaceFiles(&ctx, req, out);
  }
  static std::map<std::string, std::string> Contents(const v1::WorkspaceFiles& files) {
    std::map<std::string, std::string> out;
    for (const v1::SnapshotFile& f : files.files()) out[f.path()] = f.content();
    return out;
  }

  std::string db_url_;
  std::string project_ = common::NewUuid();
  std::unique_ptr<testing::LocalSandbox> sandbox_;
  std::unique_ptr<v1::SandboxService::Stub> stub_;
};

TEST_F(SandboxServiceTest, OnlyTheServiceKeyGetsIn) {
  grpc::ClientContext anonymous;
  v1::OpenWorkspaceRequest req;
  req.set_project_id(project_);
  req.set_fence(1);
  v1::Workspace resp;
  EXPECT_EQ(stub_->OpenWorkspace(&anonymous, req, &resp).error_code(), StatusCode::UNAUTHENTICATED);
  grpc::ClientContext wrong_key;
  wrong_key.AddMetadata("x-api-key", "someone-else");
  EXPECT_EQ(stub_->OpenWorkspace(&wrong_key, req, &resp).error_code(), StatusCode::UNAUTHENTICATED);
  grpc::ClientContext user;
  user.AddMetadata("authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x");
  EXPECT_EQ(stub_->OpenWorkspace(&user, req, &resp).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(SandboxServiceTest, BadFieldsAreNamedAndNothingIsDone) {
  grpc::ClientContext ctx;
  AsService(ctx);
  v1::RunCommandRequest req;
  req.set_project_id("../etc");
  req.set_fence(0);
  req.set_command(std::string("ls\0x", 4));
  req.set_max_output_bytes(int64_t{1} << 40);
  req.mutable_timeout()->set_seconds(100000);
  auto reader = stub_->RunCommand(&ctx, req);
  v1::RunCommandResponse piece;
  EXPECT_FALSE(reader->Read(&piece));
  grpc::Status s = reader->Finish();
  ASSERT_EQ(s.error_code(), StatusCode::INVALID_ARGUMENT);
  std::vector<std::string> fields;
  for (const auto& v : common::GetFieldViolations(common::FromGrpcStatus(s)))
    fields.push_back(v.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"project_id", "fence", "command", "timeout",
                                              "max_output_bytes"}));
}

TEST_F(SandboxServiceTest, AWorkspaceNotOpenedHereIsAbortedSoItsCallerRestoresIt) {
  EXPECT_EQ(Write(1, "index.html", "x").error_code(), StatusCode::ABORTED);
  ASSERT_TRUE(Open(1).ok());
  EXPECT_TRUE(Write(1, "index.html", "x").ok());
  EXPECT_EQ(Write(2, "index.html", "x").error_code(), StatusCode::ABORTED)
      << "a fence that never opened it";
}

TEST_F(SandboxServiceTest, AHigherFenceTakesOverKillsTheOlderCommandAndFencesItOut) {
  ASSERT_TRUE(Open(1).ok());
  grpc::Status first;
  std::string output;
  int exit_code = 0;
  const absl::Time start = absl::Now();
  std::thread old_holder([&] { first = Run(1, "sleep 30", &output, &exit_code); });
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_TRUE(Open(2).ok());
  old_holder.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(10))
      << "the older command was killed, not waited for";
  EXPECT_FALSE(first.ok());
  EXPECT_EQ(Write(1, "index.html", "stale").error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Open(1).error_code(), StatusCode::FAILED_PRECONDITION)
      << "no going back to an older fence";
  EXPECT_TRUE(Write(2, "index.html", "fresh").ok());
}

TEST_F(SandboxServiceTest, ChangesAreWhatAnythingChangedSinceTheLastLook) {
  ASSERT_TRUE(Open(1).ok());
  ASSERT_TRUE(Write(1, "a.txt", "written").ok());
  EXPECT_EQ(Changes(1), (std::map<std::string, std::optional<std::string>>{{"a.txt", "written"}}));
  std::string output;
  int exit_code = 0;
  ASSERT_TRUE(
      Run(1, "echo b > b.txt && rm a.txt && mkdir -p d && echo c > d/c.txt", &output, &exit_code)
          .ok());
  ASSERT_EQ(exit_code, 0) << output;
  EXPECT_EQ(Changes(1), (std::map<std::string, std::optional<std::string>>{
                            {"a.txt", std::nullopt}, {"b.txt", "b\n"}, {"d/c.txt", "c\n"}}));
  EXPECT_TRUE(Changes(1).empty()) << "nothing since";
}

TEST_F(SandboxServiceTest, ANewWorkspaceSaysItIsEmptyUntilAnythingIsInIt) {
  bool empty = false;
  ASSERT_TRUE(Open(1, nullptr, "", &empty).ok());
  EXPECT_TRUE(empty) << "a new project's first run need not restore anything";
  std::string output;
  int exit_code = 0;
  ASSERT_TRUE(Run(1, "mkdir .hidden", &output, &exit_code).ok());
  ASSERT_EQ(exit_code, 0) << output;
  ASSERT_TRUE(Open(2, nullptr, "", &empty).ok());
  EXPECT_FALSE(empty) << "an empty directory is something too";
  ASSERT_TRUE(Run(2, "rmdir .hidden", &output, &exit_code).ok());
  ASSERT_TRUE(Write(2, "index.html", "<h1>hi</h1>").ok());
  ASSERT_TRUE(Open(3, nullptr, "", &empty).ok());
  EXPECT_FALSE(empty);
}

TEST_F(SandboxServiceTest, AWriteOrACommandWithChangesSaysWhatChangedAsGetChangesWould) {
  ASSERT_TRUE(Open(1).ok());
  ASSERT_TRUE(Write(1, "before.txt", "not reported, not looked at").ok());
  {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::WriteFilesRequest req;
    req.set_project_id(project_);
    req.set_fence(1);
    req.set_with_changes(true);
    v1::FileContent* f = req.add_files();
    f->set_path("a.txt");
    f->set_content("a");
    v1::WriteFilesResponse resp;
    ASSERT_TRUE(stub_->WriteFiles(&ctx, req, &resp).ok());
    ASSERT_TRUE(resp.has_changes());
    EXPECT_EQ(AsMap(resp.changes()),
              (std::map<std::string, std::optional<std::string>>{
                  {"a.txt", "a"}, {"before.txt", "not reported, not looked at"}}))
        << "everything since the last look";
  }
  {
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::RunCommandRequest req;
    req.set_project_id(project_);
    req.set_fence(1);
    req.set_command("rm a.txt && echo b > b.txt");
    req.set_with_changes(true);
    auto reader = stub_->RunCommand(&ctx, req);
    v1::RunCommandResponse piece, end;
    while (reader->Read(&piece)) {
      if (piece.has_end()) end = piece;
    }
    ASSERT_TRUE(reader->Finish().ok());
    ASSERT_TRUE(end.end().has_changes());
    EXPECT_EQ(AsMap(end.end().changes()), (std::map<std::string, std::optional<std::string>>{
                                              {"a.txt", std::nullopt}, {"b.txt", "b\n"}}));
  }
  EXPECT_TRUE(Changes(1).empty()) << "the reports were looks: nothing since";
  std::string output;
  int exit_code = 0;
  ASSERT_TRUE(Run(1, "echo c > c.txt", &output, &exit_code).ok());
  EXPECT_EQ(Changes(1), (std::map<std::string, std::optional<std::string>>{{"c.txt", "c\n"}}))
      << "without with_changes, no look is taken";
}

TEST_F(SandboxServiceTest, OutputComesAsItIsPrintedThenTheEnd) {
  ASSERT_TRUE(Open(1).ok());
  std::string output;
  int exit_code = 0;
  std::vector<absl::Time> arrivals;
  ASSERT_TRUE(Run(1, "echo one; sleep 1; echo two; exit 3", &output, &exit_code, &arrivals).ok());
  EXPECT_EQ(output, "one\ntwo\n");
  EXPECT_EQ(exit_code, 3);
  ASSERT_GE(arrivals.size(), 3u) << "one, two and the end, apart";
  EXPECT_GE(arrivals.back() - arrivals.front(), absl::Milliseconds(800))
      << "the first piece did not wait for the end";
}

TEST_F(SandboxServiceTest, SnapshotsAreIdempotentMarkTheWorkspaceAndRestore) {
  ASSERT_TRUE(Open(1).ok());
  ASSERT_TRUE(Write(1, "index.html", "<h1>v1</h1>").ok());
  const std::string id = common::NewUuid();
  v1::Snapshot first, again;
  ASSERT_TRUE(Snapshot(1, id, &first).ok());
  EXPECT_EQ(first.files().at("index.html"), "<h1>v1</h1>");
  EXPECT_EQ(first.preview_url(), "https://preview.test/" + id + "/");
  ASSERT_TRUE(Write(1, "index.html", "<h1>v2</h1>").ok());
  ASSERT_TRUE(Snapshot(1, id, &again).ok());
  EXPECT_EQ(again.files().at("index.html"), "<h1>v1</h1>") << "a repeat returns the first snapshot";
  // The workspace changed since: a new holder learns it holds no known snapshot.
  std::string held;
  ASSERT_TRUE(Open(2, &held).ok());
  EXPECT_EQ(held, "");
  ASSERT_TRUE(Restore(2, id, &held).ok());
  EXPECT_EQ(held, id);
  ASSERT_TRUE(Open(3, &held).ok());
  EXPECT_EQ(held, id) << "the mark survives until the next change";
  std::string output;
  int exit_code = 0;
  ASSERT_TRUE(Run(3, "cat index.html", &output, &exit_code).ok());
  EXPECT_EQ(output, "<h1>v1</h1>");
  ASSERT_TRUE(Open(4, &held).ok());
  EXPECT_EQ(held, "") << "a command may have changed it";
}

// A workspace larger than one response carries (4.5 MiB, within the snapshot limits): its
// snapshot is stored whole and answered without contents unless the caller asks for them, and
// its changes are "unknown" rather than a response too large to send.
TEST_F(SandboxServiceTest, ASnapshotLargerThanAResponseIsStoredWholeAndAnsweredWithoutContents) {
  ASSERT_TRUE(Open(1).ok());
  for (const char* name : {"a.txt", "b.txt", "c.txt"}) {
    ASSERT_TRUE(Write(1, name, std::string(3 << 19, name[0])).ok());
  }
  grpc::ClientContext ctx;
  AsService(ctx);
  v1::GetChangesRequest changes_req;
  changes_req.set_project_id(project_);
  changes_req.set_fence(1);
  v1::GetChangesResponse changes;
  ASSERT_TRUE(stub_->GetChanges(&ctx, changes_req, &changes).ok());
  EXPECT_TRUE(changes.unknown()) << "4.5 MiB of changes do not fit a response";

  v1::Snapshot omitted, whole;
  ASSERT_TRUE(Snapshot(1, common::NewUuid(), &omitted).ok());
  EXPECT_TRUE(omitted.contents_omitted());
  EXPECT_EQ(omitted.files_size(), 0);
  grpc::ClientContext ctx2;
  AsService(ctx2);
  v1::CreateSnapshotRequest req;
  req.set_project_id(project_);
  req.set_fence(1);
  req.set_snapshot_id(common::NewUuid());
  req.set_max_content_bytes(8 << 20);
  ASSERT_TRUE(stub_->CreateSnapshot(&ctx2, req, &whole).ok());
  EXPECT_FALSE(whole.contents_omitted());
  ASSERT_EQ(whole.files_size(), 3);
  EXPECT_EQ(whole.files().at("c.txt"), std::string(3 << 19, 'c'));

  grpc::ClientContext ctx3;
  AsService(ctx3);
  v1::GetSnapshotRequest get;
  get.set_project_id(project_);
  get.set_snapshot_id(omitted.id());
  v1::SnapshotFiles listed;
  ASSERT_TRUE(stub_->GetSnapshot(&ctx3, get, &listed).ok());
  ASSERT_EQ(listed.files_size(), 3) << "stored whole";
  EXPECT_EQ(listed.files(2).size(), 3 << 19);
  grpc::ClientContext ctx4;
  AsService(ctx4);
  get.set_with_contents(true);
  EXPECT_EQ(stub_->GetSnapshot(&ctx4, get, &listed).error_code(), StatusCode::FAILED_PRECONDITION);
}

// Archive: the snapshot's archive as streamed, its pieces' sizes, and the stream's status.
grpc::Status Archive(v1::SandboxService::Stub& stub, const std::string& api_key,
                     const v1::ArchiveSnapshotRequest& req, std::string* archive,
                     size_t* pieces = nullptr) {
  grpc::ClientContext ctx;
  ctx.AddMetadata("x-api-key", api_key);
  auto reader = stub.ArchiveSnapshot(&ctx, req);
  v1::ArchiveChunk chunk;
  while (reader->Read(&chunk)) {
    archive->append(chunk.data());
    if (pieces != nullptr) ++*pieces;
  }
  return reader->Finish();
}

TEST_F(SandboxServiceTest, ASnapshotStreamsAsAnArchiveOfItsFiles) {
  // 2 MiB of letters that compress to no less than 1 MiB: an archive of several pieces.
  std::mt19937 random(5);
  std::string script(2 << 20, 'a');
  for (char& c : script) c = static_cast<char>('a' + random() % 26);
  ASSERT_TRUE(Open(1).ok());
  ASSERT_TRUE(Write(1, "index.html", "<h1>v1</h1>").ok());
  ASSERT_TRUE(Write(1, "js/app.js", script).ok());
  const std::string id = common::NewUuid();
  v1::Snapshot snapshot;
  ASSERT_TRUE(Snapshot(1, id, &snapshot).ok());
  v1::ArchiveSnapshotRequest req;
  req.set_project_id(project_);
  req.set_snapshot_id(id);
  req.set_folder("bakery-v1");
  for (v1::ArchiveFormat format : {v1::ARCHIVE_FORMAT_ZIP, v1::ARCHIVE_FORMAT_TAR_GZ}) {
    req.set_format(format);
    std::string archive;
    size_t pieces = 0;
    grpc::Status s = Archive(*stub_, sandbox_->api_key(), req, &archive, &pieces);
    ASSERT_TRUE(s.ok()) << s.error_message();
    EXPECT_GT(pieces, 1u) << "in pieces, not one message";
    auto files = testing::Unpack(archive, format == v1::ARCHIVE_FORMAT_ZIP ? ".zip" : ".tar.gz");
    ASSERT_TRUE(files.ok()) << files.status();
    EXPECT_EQ(files->size(), 2u);
    EXPECT_EQ((*files)["bakery-v1/index.html"], "<h1>v1</h1>");
    EXPECT_TRUE((*files)["bakery-v1/js/app.js"] == script);
  }
  std::string ignored;
  req.set_project_id(common::NewUuid());
  EXPECT_EQ(Archive(*stub_, sandbox_->api_key(), req, &ignored).error_code(), StatusCode::NOT_FOUND)
      << "another project's snapshot";
  req.set_project_id(project_);
  req.set_folder("../x");
  req.set_format(v1::ARCHIVE_FORMAT_UNSPECIFIED);
  grpc::Status bad = Archive(*stub_, sandbox_->api_key(), req, &ignored);
  EXPECT_EQ(bad.error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(bad.error_message().find("folder"), std::string::npos) << bad.error_message();
  EXPECT_NE(bad.error_message().find("format"), std::string::npos) << bad.error_message();
  EXPECT_EQ(Archive(*stub_, "not-a-key", req, &ignored).error_code(), StatusCode::UNAUTHENTICATED);
}

TEST_F(SandboxServiceTest, APurgedProjectIsGoneAndRefusedFromThenOn) {
  ASSERT_TRUE(Open(1).ok());
  ASSERT_TRUE(Write(1, "index.html", "<h1>bye</h1>").ok());
  v1::Snapshot snapshot;
  ASSERT_TRUE(Snapshot(1, common::NewUuid(), &snapshot).ok());
  for (int i = 0; i < 2; ++i) {  // idempotent
    grpc::ClientContext ctx;
    AsService(ctx);
    v1::PurgeProjectRequest req;
    req.set_project_id(project_);
    google::protobuf::Empty empty;
    ASSERT_TRUE(stub_->PurgeProject(&ctx, req, &empty).ok());
  }
  EXPECT_EQ(Open(2).error_code(), StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(Write(1, "index.html", "x").error_code(), StatusCode::FAILED_PRECONDITION)
      << "the old holder is out too";
  common::DbPool::Options options{.url = db_url_, .size = 1};
  auto pool = common::DbPool::Create(options);
  ASSERT_TRUE(pool.ok());
  SandboxStore store(pool->get());
  EXPECT_EQ(store.GetSnapshot(snapshot.id()).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(
      store
          .SaveSnapshot(
              {.id = common::NewUuid(), .project_id = project_, .files = std::make_shared<Files>()})
          .status()
          .code(),
      absl::StatusCode::kFailedPrecondition);
}

// GetWorkspaceFiles reads what the workspace holds now, a write not snapshotted included, with
// no fence; the holder's next look still sees every change since its last one.
TEST_F(SandboxServiceTest, WorkspaceFilesAreWhatItHoldsNowAndLeaveTheHoldersChangesAlone) {
  v1::WorkspaceFiles files;
  ASSERT_TRUE(WorkspaceFiles(&files).ok());
  EXPECT_FALSE(files.open()) << "never opened here: nothing known";
  EXPECT_EQ(files.files_size(), 0);

  ASSERT_TRUE(Open(1).ok());
  ASSERT_TRUE(Write(1, "index.html", "<h1>v1</h1>").ok());
  ASSERT_TRUE(Changes(1).size() == 1);
  v1::Snapshot snapshot;
  ASSERT_TRUE(Snapshot(1, common::NewUuid(), &snapshot).ok());
  ASSERT_TRUE(Write(1, "index.html", "<h1>v2</h1>").ok());
  ASSERT_TRUE(Write(1, "style.css", "h1 {}").ok());
  files.Clear();
  ASSERT_TRUE(WorkspaceFiles(&files).ok());
  EXPECT_TRUE(files.open());
  EXPECT_EQ(Contents(files), (std::map<std::string, std::string>{{"index.html", "<h1>v2</h1>"},
                                                                 {"style.css", "h1 {}"}}));
  for (const v1::SnapshotFile& f : files.files()) {
    EXPECT_EQ(f.size(), static_cast<int64_t>(f.content().size()));
    EXPECT_EQ(f.sha256(), common::Sha256Hex(f.content()));
  }
  files.Clear();
  ASSERT_TRUE(WorkspaceFiles(&files, /*with_contents=*/false, {"style.css", "nope"}).ok());
  ASSERT_EQ(files.files_size(), 1);
  EXPECT_EQ(files.files(0).path(), "style.css");
  EXPECT_EQ(files.files(0).size(), 5);
  EXPECT_EQ(files.files(0).content(), "") << "no contents unless asked";

  EXPECT_EQ(Changes(1), (std::map<std::string, std::optional<std::string>>{
                            {"index.html", "<h1>v2</h1>"}, {"style.css", "h1 {}"}}))
      << "the holder's changes since its snapshot, as if nobody had looked";
  std::string held;
  ASSERT_TRUE(Open(2, &held).ok());
  EXPECT_EQ(held, "") << "and the workspace is not taken for its snapshot";
}

// A command running in the workspace holds it for its whole length; GetWorkspaceFiles does not
// wait for it, and sees what it wrote so far.
TEST_F(SandboxServiceTest, WorkspaceFilesDoNotWaitForARunningCommand) {
  ASSERT_TRUE(Open(1).ok());
  std::string output;
  int exit_code = 0;
  std::thread holder(
      [&] { EXPECT_TRUE(Run(1, "echo half > draft.txt; sleep 5", &output, &exit_code).ok()); });
  const absl::Time start = absl::Now();
  std::map<std::string, std::string> seen;
  while (absl::Now() - start < absl::Seconds(4) && !seen.contains("draft.txt")) {
    v1::WorkspaceFiles files;
    ASSERT_TRUE(WorkspaceFiles(&files).ok());
    seen = Contents(files);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_LT(absl::Now() - start, absl::Seconds(4)) << "it did not wait for the command";
  EXPECT_EQ(seen["draft.txt"], "half\n");
  holder.join();
  EXPECT_EQ(exit_code, 0) << "the command was not disturbed: " << output;
  EXPECT_EQ(Changes(1),
            (std::map<std::string, std::optional<std::string>>{{"draft.txt", "half\n"}}));
}

TEST_F(SandboxServiceTest, WorkspaceFilesOfAPurgedOrMalformedProject) {
  ASSERT_TRUE(Open(1).ok());
  ASSERT_TRUE(Write(1, "index.html", "x").ok());
  grpc::ClientContext ctx;
  AsService(ctx);
  v1::PurgeProjectRequest purge;
  purge.set_project_id(project_);
  google::protobuf::Empty empty;
  ASSERT_TRUE(stub_->PurgeProject(&ctx, purge, &empty).ok());
  v1::WorkspaceFiles files;
  ASSERT_TRUE(WorkspaceFiles(&files).ok());
  EXPECT_FALSE(files.open()) << "a purged workspace is not open anywhere";
  EXPECT_EQ(files.files_size(), 0);
  grpc::Status bad = WorkspaceFiles(&files, true, std::vector<std::string>(1001, "a"), "../etc");
  ASSERT_EQ(bad.error_code(), StatusCode::INVALID_ARGUMENT);
  std::vector<std::string> fields;
  for (const auto& v : common::GetFieldViolations(common::FromGrpcStatus(bad)))
    fields.push_back(v.field);
  EXPECT_EQ(fields, (std::vector<std::string>{"project_id", "paths"}));
}

}  // namespace
}  // namespace qai::sandbox

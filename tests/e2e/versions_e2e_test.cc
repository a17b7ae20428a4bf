// Versions end to end (the whole suite as processes, StackTest): every success is a version
// and a failed run leaves a draft; a restore brings a version back as a new one, queues like a
// prompt and survives kill -9 while queued or midway; a fork starts from a version and shares
// nothing after; downloads unpack (Debian's unzip and tar) to the version's files and stream in
// bounded memory; a version larger than a fragment restores whole.

#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <random>

#include "common/auth.h"
#include "services/sandbox/store.h"
#include "tests/e2e/stack.h"
#include "tests/support/proc_status.h"
#include "tests/support/unpack.h"

namespace qai::testing {
namespace {

class VersionsE2ETest : public StackTest {
 protected:
  // Download: a version's archive by DownloadVersion as alice (or `sub`): its file name and
  // bytes, and the stream's status.
  grpc::Status Download(const std::string& project, int number,
                        opb::DownloadVersionRequest::Format format, std::string* file_name,
                        std::string* archive, const std::string& sub = "alice") {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    opb::DownloadVersionRequest req;
    req.set_project_id(project);
    req.set_number(number);
    req.set_format(format);
    auto reader = stubs_[0]->DownloadVersion(&ctx, req);
    opb::DownloadVersionResponse piece;
    for (bool first = true; reader->Read(&piece); first = false) {
      if (first) *file_name = piece.file_name();
      EXPECT_TRUE(first || piece.file_name().empty()) << "only the first message names the file";
      archive->append(piece.data());
    }
    return reader->Finish();
  }

  // SaveVersion: version `number` of the project, holding `files`, stored as a run's end
  // stores one (a snapshot in qai-sandbox's store, a row of versions); its preview's URL.
  std::string SaveVersion(const std::string& project, int number, const sandbox::Files& files) {
    auto pool = common::DbPool::Create({.url = db_url_, .size = 1});
    EXPECT_TRUE(pool.ok()) << pool.status();
    sandbox::SandboxStore store(pool->get());
    const std::string snapshot = common::NewUuid();
    EXPECT_TRUE(store
                    .SaveSnapshot({.id = snapshot,
                                   .project_id = project,
                                   .files = std::make_shared<const sandbox::Files>(files)})
                    .ok());
    const std::string v1_url =
        GetVersion(project, 1, opb::GetVersionRequest::VIEW_BASIC).sandbox_url();
    const std::string url = v1_url.substr(0, v1_url.size() - 37) + snapshot + "/";
    const std::string run = common::NewUuid();
    soci::session s(soci::postgresql, db_url_);
    s << "INSERT INTO orchestrator.versions (project_id, number, run_id, snapshot_id, sandbox_url)"
         " VALUES (CAST(:p AS uuid), :n, CAST(:r AS uuid), CAST(:s AS uuid), :u)",
        soci::use(project), soci::use(number), soci::use(run), soci::use(snapshot), soci::use(url);
    return url;
  }

  // PeakGrowthKiB: how far the process's resident memory rose above where it was while `work`
  // ran (its peak is reset first: /proc/<pid>/clear_refs).
  static int64_t PeakGrowthKiB(pid_t pid, const std::function<void()>& work) {
    std::ofstream(absl::StrCat("/proc/", pid, "/clear_refs")) << "5";
    const int64_t before = ProcessStatusKiB(pid, "VmRSS").value_or(0);
    work();
    return ProcessStatusKiB(pid, "VmHWM").value_or(1 << 30) - before;
  }

  // Files: a version's files by path, under `folder/`.
  std::map<std::string, std::string> Files(const std::string& project, int number,
                                           const std::string& folder) {
    std::map<std::string, std::string> out;
    const opb::Version version = GetVersion(project, number, opb::GetVersionRequest::VIEW_FULL);
    for (const opb::VersionFile& f : version.files()) {
      out[folder + "/" + f.path()] = f.content();
    }
    return out;
  }

  // GetVersionCode: how GetVersion of the project's version `number` ends, as alice.
  StatusCode GetVersionCode(const std::string& project, int number) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::GetVersionRequest req;
    req.set_project_id(project);
    req.set_number(number);
    opb::Version out;
    return stubs_[0]->GetVersion(&ctx, req, &out).error_code();
  }

  // DiffWorkspace: from version `from` to the project's workspace now (or back, `backwards`).
  opb::DiffVersionsResponse DiffWorkspace(const std::string& project, int from,
                                          bool backwards = false) {
    opb::DiffVersionsResponse resp;
    grpc::Status s = TryDiffWorkspace(project, from, backwards, &resp);
    EXPECT_TRUE(s.ok()) << s.error_message();
    return resp;
  }
  grpc::Status TryDiffWorkspace(const std::string& project, int from, bool backwards,
                                opb::DiffVersionsResponse* resp) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::DiffVersionsRequest req;
    req.set_project_id(project);
    opb::VersionRef* version = backwards ? req.mutable_to() : req.mutable_from();
    version->set_number(from);
    (backwards ? req.mutable_from() : req.mutable_to())->set_workspace(true);
    return stubs_[0]->DiffVersions(&ctx, req, resp);
  }
};

// Every successful run makes the project's next version; a failed run makes none, and what it
// had changed is kept as its draft while the next run starts from the last version.
TEST_F(VersionsE2ETest, EverySuccessIsAVersionAndAFailedRunLeavesOnlyADraft) {
  ppb::Project p = CreateProject("Build a bakery site");
  std::vector<opb::Run> runs = WaitForRuns(p.id(), 1);
  opb::Run first = WaitForEnd(runs[0].id());
  ASSERT_EQ(first.state(), opb::Run::STATE_SUCCEEDED) << first.error();
  EXPECT_EQ(first.version(), 1);

  ASSERT_TRUE(Send(p.id(), "Add a counter [[no-summary]]", [](mpb::CreateMessageRequest& r) {
                r.set_max_iterations(4);
              }).ok());
  runs = WaitForRuns(p.id(), 2);
  opb::Run failed = WaitForEnd(runs[0].id(), absl::Seconds(90));
  ASSERT_EQ(failed.state(), opb::Run::STATE_FAILED);
  EXPECT_EQ(failed.version(), 0);
  ASSERT_FALSE(failed.draft_url().empty()) << "what the failed run changed is its draft";
  httplib::Result draft = Fetch(failed.draft_url());
  ASSERT_TRUE(draft);
  EXPECT_NE(draft->body.find("ounter"), std::string::npos) << "the draft holds its edits";

  ASSERT_TRUE(Send(p.id(), "Add a todo list").ok());
  runs = WaitForRuns(p.id(), 3);
  opb::Run third = WaitForEnd(runs[0].id());
  ASSERT_EQ(third.state(), opb::Run::STATE_SUCCEEDED) << third.error();
  EXPECT_EQ(third.version(), 2);

  opb::ListVersionsResponse listed = ListVersions(p.id());
  ASSERT_EQ(listed.versions_size(), 2);
  EXPECT_EQ(listed.versions(0).number(), 2) << "newest first";
  EXPECT_EQ(listed.versions(0).run_id(), third.id());
  EXPECT_EQ(listed.versions(1).run_id(), first.id());
  EXPECT_EQ(listed.versions(1).sandbox_url(), first.sandbox_url());
  EXPECT_EQ(listed.versions(1).message_id(), first.result_message_id());
  EXPECT_EQ(listed.versions(1).author(), "alice");
  EXPECT_FALSE(listed.versions(1).title().empty());
  opb::Version v2 = GetVersion(p.id(), 2, opb::GetVersionRequest::VIEW_FULL);
  std::string page;
  for (const opb::VersionFile& f : v2.files()) {
    if (f.path() == "index.html") page = f.content();
    EXPECT_EQ(f.size(), static_cast<int64_t>(f.content().size()));
    EXPECT_EQ(f.sha256(), common::Sha256Hex(f.content()));
  }
  EXPECT_NE(page.find("odo"), std::string::npos) << page;
  EXPECT_NE(page.find("akery"), std::string::npos) << "it built on version 1";
  EXPECT_EQ(page.find("ounter"), std::string::npos) << "and not on the failed run's draft";
  EXPECT_EQ(Fetch(v2.sandbox_url())->body, page);
  // What version 2 changed, and what the failed run's draft had changed, from version 1.
  opb::DiffVersionsResponse diff = Diff(p.id(), 1, 2);
  std::map<std::string, opb::FileDiff> changed;
  for (const opb::FileDiff& f : diff.files()) changed[f.path()] = f;
  ASSERT_TRUE(changed.contains("index.html")) << diff.DebugString();
  EXPECT_EQ(changed["index.html"].change(), opb::FileDiff::CHANGE_MODIFIED);
  const std::string& unified = changed["index.html"].unified_diff();
  EXPECT_TRUE(unified.starts_with("@@ -")) << unified;
  EXPECT_NE(unified.find("\n+"), std::string::npos) << unified;
  EXPECT_NE(unified.find("odo"), std::string::npos) << unified;
  EXPECT_FALSE(diff.truncated());
  opb::DiffVersionsResponse draft_diff = Diff(p.id(), 1, 0, failed.id());
  bool counter = false;
  for (const opb::FileDiff& f : draft_diff.files())
    counter |= f.unified_diff().find("+") != std::string::npos &&
               f.unified_diff().find("ounter") != std::string::npos;
  EXPECT_TRUE(counter) << draft_diff.DebugString();
  EXPECT_EQ(Diff(p.id(), 2, 2).files_size(), 0);

  opb::Version basic = GetVersion(p.id(), 1, opb::GetVersionRequest::VIEW_BASIC);
  ASSERT_GT(basic.files_size(), 0);
  EXPECT_TRUE(basic.files(0).content().empty()) << "the basic view has no contents";

  // Another user's project is NOT_FOUND, as an unknown one is.
  grpc::ClientContext ctx;
  AsUser(ctx, "mallory");
  opb::GetVersionRequest req;
  req.set_project_id(p.id());
  req.set_number(1);
  opb::Version out;
  EXPECT_EQ(stubs_[0]->GetVersion(&ctx, req, &out).error_code(), StatusCode::NOT_FOUND);
  grpc::ClientContext ctx2;
  AsUser(ctx2, "alice");
  req.set_number(3);
  EXPECT_EQ(stubs_[0]->GetVersion(&ctx2, req, &out).error_code(), StatusCode::NOT_FOUND);
}

// Restore 2 of 4: version 5 serves version 2's page, versions 3 and 4 still serve theirs, and
// the next prompt edits version 5's files.
TEST_F(VersionsE2ETest, ARestoreBringsBackAVersionAndKeepsEveryLaterOne) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  for (const char* prompt : {"Add a counter", "Add a todo list", "Add a photo gallery"}) {
    opb::Run run = Prompt(p.id(), prompt);
    ASSERT_EQ(run.state(), opb::Run::STATE_SUCCEEDED) << prompt << ": " << run.error();
  }
  std::map<int, opb::Version> before;
  const opb::ListVersionsResponse listed = ListVersions(p.id());
  for (const opb::Version& v : listed.versions()) before[v.number()] = v;
  ASSERT_EQ(before.size(), 4u);

  const std::string request = common::NewUuid();
  opb::Run restore, again;
  ASSERT_TRUE(RestoreVersion(p.id(), 2, request, &restore).ok());
  EXPECT_EQ(restore.restore_version(), 2);
  EXPECT_TRUE(restore.message_id().empty());
  ASSERT_TRUE(RestoreVersion(p.id(), 2, request, &again).ok());
  EXPECT_EQ(again.id(), restore.id()) << "idempotent on request_id";
  EXPECT_EQ(RestoreVersion(p.id(), 3, request, &again).error_code(), StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(RestoreVersion(p.id(), 9, common::NewUuid(), &again).error_code(),
            StatusCode::NOT_FOUND);
  opb::Run restored = WaitForEnd(restore.id());
  ASSERT_EQ(restored.state(), opb::Run::STATE_SUCCEEDED) << restored.error();
  EXPECT_EQ(restored.version(), 5);

  opb::ListVersionsResponse after = ListVersions(p.id());
  ASSERT_EQ(after.versions_size(), 5);
  const opb::Version& v5 = after.versions(0);
  EXPECT_EQ(v5.restored_from(), 2);
  EXPECT_EQ(v5.title(), before[2].title());
  EXPECT_NE(v5.sandbox_url(), before[2].sandbox_url()) << "a preview of its own";
  const std::string page2 = Fetch(before[2].sandbox_url())->body;
  EXPECT_EQ(Fetch(v5.sandbox_url())->body, page2);
  for (int n : {3, 4}) {
    EXPECT_EQ(Fetch(before[n].sandbox_url())->status, 200) << "version " << n << " stays";
    EXPECT_EQ(GetVersion(p.id(), n, opb::GetVersionRequest::VIEW_BASIC).sandbox_url(),
              before[n].sandbox_url());
  }
  std::vector<mpb::Message> messages = Messages(p.id());
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.back().role(), mpb::Message::ROLE_ASSISTANT);
  EXPECT_EQ(messages.back().id(), restored.result_message_id());
  EXPECT_NE(messages.back().content().find("Restored version 2"), std::string::npos);
  EXPECT_EQ(messages.back().fragment().sandbox_url(), v5.sandbox_url());

  opb::Run next = Prompt(p.id(), "Add a contact form");
  ASSERT_EQ(next.state(), opb::Run::STATE_SUCCEEDED) << next.error();
  const std::string page6 = Fetch(next.sandbox_url())->body;
  EXPECT_NE(page6.find("ounter"), std::string::npos) << "it edits version 5, which is 2";
  EXPECT_NE(page6.find("ontact"), std::string::npos);
  EXPECT_EQ(page6.find("allery"), std::string::npos) << "version 4's gallery is not in it";
}

// A restore during an active run queues behind it; the orchestrator killed meanwhile (kill -9)
// costs nothing: one version for the run, one for the restore.
TEST_F(VersionsE2ETest, ARestoreQueuesBehindTheActiveRunAndSurvivesAKill) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  const std::string page1 = Fetch(ListVersions(p.id()).versions(0).sandbox_url())->body;
  ASSERT_TRUE(Send(p.id(), "Add a counter [[sleep 4]]").ok());
  std::vector<opb::Run> runs;
  ASSERT_TRUE(Eventually([&] {
    runs = Runs(p.id());
    return runs.size() == 2 && runs[0].state() == opb::Run::STATE_RUNNING;
  }));
  opb::Run restore;
  ASSERT_TRUE(RestoreVersion(p.id(), 1, common::NewUuid(), &restore).ok());
  EXPECT_EQ(restore.state(), opb::Run::STATE_QUEUED) << "it waits for the active run";
  RestartOrchestrator(0, {});

  opb::Run counter = WaitForEnd(runs[0].id(), absl::Seconds(90));
  opb::Run restored = WaitForEnd(restore.id(), absl::Seconds(90));
  ASSERT_EQ(counter.state(), opb::Run::STATE_SUCCEEDED) << counter.error();
  ASSERT_EQ(restored.state(), opb::Run::STATE_SUCCEEDED) << restored.error();
  EXPECT_EQ(counter.version(), 2);
  EXPECT_EQ(restored.version(), 3) << "after the run it waited for";
  opb::ListVersionsResponse versions = ListVersions(p.id());
  ASSERT_EQ(versions.versions_size(), 3) << "exactly one version each";
  EXPECT_EQ(versions.versions(0).restored_from(), 1);
  EXPECT_EQ(Fetch(versions.versions(0).sandbox_url())->body, page1);
}

// Fork, then change both projects: neither sees the other's files or messages.
TEST_F(VersionsE2ETest, AForkStartsFromAVersionAndSharesNothingAfter) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  ASSERT_EQ(Prompt(p.id(), "Add a counter").version(), 2);
  const std::string page1 =
      Fetch(GetVersion(p.id(), 1, opb::GetVersionRequest::VIEW_BASIC).sandbox_url())->body;

  auto fork = [&](const std::string& sub, int version, ppb::Project* out) {
    grpc::ClientContext ctx;
    AsUser(ctx, sub);
    ppb::ForkProjectRequest req;
    req.set_project_id(p.id());
    req.set_version(version);
    return projects_stub_->ForkProject(&ctx, req, out);
  };
  ppb::Project q, ignored;
  EXPECT_EQ(fork("mallory", 1, &ignored).error_code(), StatusCode::NOT_FOUND)
      << "another user's project is not there to fork";
  EXPECT_EQ(fork("alice", 9, &ignored).error_code(), StatusCode::NOT_FOUND);
  ASSERT_TRUE(fork("alice", 1, &q).ok());
  EXPECT_NE(q.id(), p.id());
  EXPECT_EQ(q.owner(), "alice");
  EXPECT_NE(q.display_name().find("(fork)"), std::string::npos) << q.display_name();

  opb::Run start = WaitForEnd(WaitForRuns(q.id(), 1)[0].id());
  ASSERT_EQ(start.state(), opb::Run::STATE_SUCCEEDED) << start.error();
  EXPECT_EQ(start.version(), 1) << "a fork's versions start at 1";
  opb::Version q1 = GetVersion(q.id(), 1, opb::GetVersionRequest::VIEW_BASIC);
  EXPECT_EQ(q1.restored_from(), 1);
  EXPECT_EQ(q1.forked_from_project_id(), p.id());
  EXPECT_EQ(Fetch(q1.sandbox_url())->body, page1) << "it starts from version 1's files";
  std::vector<mpb::Message> q_messages = Messages(q.id());
  ASSERT_EQ(q_messages.size(), 2u);
  EXPECT_NE(q_messages[0].content().find("Fork of"), std::string::npos);
  EXPECT_NE(q_messages[1].content().find("Started from version 1"), std::string::npos);

  // Each goes its own way.
  opb::Run p3 = Prompt(p.id(), "Add a todo list");
  opb::Run q2 = Prompt(q.id(), "Add a photo gallery");
  ASSERT_EQ(p3.state(), opb::Run::STATE_SUCCEEDED) << p3.error();
  ASSERT_EQ(q2.state(), opb::Run::STATE_SUCCEEDED) << q2.error();
  EXPECT_EQ(q2.version(), 2);
  const std::string p_page = Fetch(p3.sandbox_url())->body, q_page = Fetch(q2.sandbox_url())->body;
  EXPECT_NE(p_page.find("odo"), std::string::npos);
  EXPECT_EQ(p_page.find("allery"), std::string::npos) << "the fork's change is not the source's";
  EXPECT_NE(q_page.find("allery"), std::string::npos);
  EXPECT_EQ(q_page.find("odo"), std::string::npos) << "the source's change is not the fork's";
  EXPECT_EQ(q_page.find("ounter"), std::string::npos) << "version 2 came after the fork's start";
  for (const mpb::Message& m : Messages(p.id())) EXPECT_EQ(m.project_id(), p.id());
  EXPECT_EQ(Messages(q.id()).size(), 4u) << "the fork's conversation is its own";
}

// A download's zip and tar.gz, over gRPC and over HTTP next to the preview, unpacked by
// Debian's unzip and tar, equal the version's files byte for byte.
TEST_F(VersionsE2ETest, ADownloadUnpacksToTheVersionsFilesByteForByte) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  ASSERT_EQ(Prompt(p.id(), "Add a counter").version(), 2);

  std::string name, zip;
  grpc::Status s =
      Download(p.id(), 2, opb::DownloadVersionRequest::FORMAT_UNSPECIFIED, &name, &zip);
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_TRUE(name.ends_with("-v2.zip")) << name;
  const std::string folder = name.substr(0, name.size() - 4);
  const std::map<std::string, std::string> files = Files(p.id(), 2, folder);
  ASSERT_GT(files.size(), 1u);
  absl::StatusOr<std::map<std::string, std::string>> unzipped = Unpack(zip, ".zip");
  ASSERT_TRUE(unzipped.ok()) << unzipped.status();
  EXPECT_EQ(*unzipped, files);

  std::string tgz_name, tgz;
  ASSERT_TRUE(
      Download(p.id(), 2, opb::DownloadVersionRequest::FORMAT_TAR_GZ, &tgz_name, &tgz).ok());
  EXPECT_EQ(tgz_name, folder + ".tar.gz");
  EXPECT_EQ(Unpack(tgz, ".tar.gz").value_or(std::map<std::string, std::string>()), files);
  std::string v1_name, v1;
  ASSERT_TRUE(Download(p.id(), 1, opb::DownloadVersionRequest::FORMAT_ZIP, &v1_name, &v1).ok());
  EXPECT_NE(Unpack(v1, ".zip").value_or(files), Unpack(zip, ".zip").value_or(files))
      << "each version its own files";

  // Over HTTP, next to the preview.
  const std::string url = GetVersion(p.id(), 2, opb::GetVersionRequest::VIEW_BASIC).download_url();
  ASSERT_TRUE(url.ends_with("/" + name)) << url;
  httplib::Result http = Fetch(url);
  ASSERT_TRUE(http);
  EXPECT_EQ(http->status, 200);
  EXPECT_EQ(http->get_header_value("Content-Disposition"), "attachment; filename=\"" + name + "\"");
  EXPECT_EQ(Unpack(http->body, ".zip").value_or(std::map<std::string, std::string>()), files);
  httplib::Result http_tgz = Fetch(url.substr(0, url.size() - 4) + ".tar.gz");
  ASSERT_TRUE(http_tgz);
  EXPECT_EQ(Unpack(http_tgz->body, ".tar.gz").value_or(std::map<std::string, std::string>()),
            files);

  std::string ignored_name, ignored;
  EXPECT_EQ(Download(p.id(), 2, opb::DownloadVersionRequest::FORMAT_ZIP, &ignored_name, &ignored,
                     "mallory")
                .error_code(),
            StatusCode::NOT_FOUND)
      << "another user's project";
  EXPECT_EQ(Download(p.id(), 9, opb::DownloadVersionRequest::FORMAT_ZIP, &ignored_name, &ignored)
                .error_code(),
            StatusCode::NOT_FOUND);
  EXPECT_TRUE(ignored.empty()) << "nothing was sent before the refusal";
}

// A 50 MB version downloads in bounded memory: neither qai-sandbox nor qai-orchestrator holds
// more than a few pieces of it at once, over gRPC and over HTTP (their peak resident memory
// rises by far less than the archive).
TEST_F(VersionsE2ETest, AFiftyMegabyteVersionDownloadsInBoundedMemory) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  std::mt19937_64 random(11);
  sandbox::Files files;
  for (int i = 0; i < 50; ++i) {
    std::string& content = files[absl::StrCat("media/clip", i, ".bin")];
    content.resize(1 << 20);
    for (char& c : content) c = static_cast<char>(random());
  }
  SaveVersion(p.id(), 2, files);
  constexpr int64_t kBoundKiB = 12 << 10;  // a quarter of the archive

  std::string name, zip;
  const int64_t sandbox_grpc = PeakGrowthKiB(sandboxes_[0].service.process->pid(), [&] {
    const int64_t orchestrator = PeakGrowthKiB(orchestrators_[0].process->pid(), [&] {
      ASSERT_TRUE(Download(p.id(), 2, opb::DownloadVersionRequest::FORMAT_ZIP, &name, &zip).ok());
    });
    EXPECT_LT(orchestrator, kBoundKiB) << "qai-orchestrator, KiB";
  });
  EXPECT_LT(sandbox_grpc, kBoundKiB) << "qai-sandbox over gRPC, KiB";
  EXPECT_GT(zip.size(), 50u << 20);
  const std::string folder = name.substr(0, name.size() - 4);
  absl::StatusOr<std::map<std::string, std::string>> unzipped = Unpack(zip, ".zip");
  ASSERT_TRUE(unzipped.ok()) << unzipped.status();
  EXPECT_EQ(unzipped->size(), 50u);
  EXPECT_TRUE((*unzipped)[folder + "/media/clip7.bin"] == files["media/clip7.bin"]);

  const std::string url = GetVersion(p.id(), 2, opb::GetVersionRequest::VIEW_BASIC).download_url();
  std::string body;
  const int64_t sandbox_http = PeakGrowthKiB(sandboxes_[0].service.process->pid(), [&] {
    httplib::Result http = Fetch(url);
    ASSERT_TRUE(http);
    body = http->body;
  });
  EXPECT_LT(sandbox_http, kBoundKiB) << "qai-sandbox over HTTP, KiB";
  EXPECT_TRUE(body == zip) << "the same files make the same archive";
}

// A version larger than a fragment carries (991 files, 20 MB) restores like any other: the
// workspace gets every file, the new version holds them all, and its message's fragment leaves
// them out (its preview and download have them) instead of being refused.
TEST_F(VersionsE2ETest, ABigVersionRestoresWholeAndItsFragmentLeavesTheFilesOut) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  sandbox::Files files;
  for (int i = 0; i < 990; ++i) {
    files[absl::StrCat("src/part", i, ".js")] =
        absl::StrCat("// part ", i, "\n", std::string(20000, static_cast<char>('a' + i % 26)));
  }
  files["index.html"] = "<h1>The big one</h1>";
  SaveVersion(p.id(), 2, files);

  opb::Run restore;
  ASSERT_TRUE(RestoreVersion(p.id(), 2, common::NewUuid(), &restore).ok());
  opb::Run restored = WaitForEnd(restore.id());
  ASSERT_EQ(restored.state(), opb::Run::STATE_SUCCEEDED) << restored.error();
  EXPECT_EQ(restored.version(), 3);
  const opb::Version v3 = GetVersion(p.id(), 3, opb::GetVersionRequest::VIEW_BASIC);
  EXPECT_EQ(v3.files_size(), 991);
  EXPECT_EQ(Fetch(v3.sandbox_url())->body, "<h1>The big one</h1>");
  httplib::Result part = Fetch(v3.sandbox_url(), "src/part989.js");
  ASSERT_TRUE(part);
  EXPECT_TRUE(part->body == files["src/part989.js"]);
  const std::vector<mpb::Message> messages = Messages(p.id());
  ASSERT_FALSE(messages.empty());
  EXPECT_EQ(messages.back().id(), restored.result_message_id());
  EXPECT_EQ(messages.back().fragment().sandbox_url(), v3.sandbox_url());
  EXPECT_EQ(messages.back().fragment().files_size(), 0) << "20 MB do not fit a fragment";

  // The next prompt works on the restored files.
  opb::Run next = Prompt(p.id(), "Add a contact form");
  ASSERT_EQ(next.state(), opb::Run::STATE_SUCCEEDED) << next.error();
  EXPECT_GE(GetVersion(p.id(), 4, opb::GetVersionRequest::VIEW_BASIC).files_size(), 991);
}

// A run that leaves more files than a version may hold fails with that reason, once, and makes
// no version: the project stays at its last one.
TEST_F(VersionsE2ETest, ARunPastTheSnapshotLimitsFailsWithTheReason) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  sandbox::Files files;
  for (int i = 0; i < 999; ++i) files[absl::StrCat("src/part", i, ".js")] = "// part\n";
  files["index.html"] = "<h1>Full</h1>";
  SaveVersion(p.id(), 2, files);  // 1,000 files: the run below adds files of its page
  opb::Run restore;
  ASSERT_TRUE(RestoreVersion(p.id(), 2, common::NewUuid(), &restore).ok());
  ASSERT_EQ(WaitForEnd(restore.id()).state(), opb::Run::STATE_SUCCEEDED);

  opb::Run next = Prompt(p.id(), "Add a contact form");
  ASSERT_EQ(next.state(), opb::Run::STATE_FAILED);
  EXPECT_EQ(next.error(),
            "snapshot: more than 1000 files, the most a version holds (QAI_SNAPSHOT_MAX_FILES)");
  EXPECT_EQ(next.version(), 0);
  EXPECT_EQ(ListVersions(p.id()).versions(0).number(), 3) << "no version for it";
}

// kill -9 of the orchestrator in the middle of a restore (its worker waiting on qai-sandbox,
// which is stopped for the moment): the run is taken over once its lease lapses and ends with
// exactly one new version and one message, and the restore's request still names that run.
TEST_F(VersionsE2ETest, AKillMidRestoreEndsWithExactlyOneNewVersion) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  ASSERT_EQ(Prompt(p.id(), "Add a counter").version(), 2);
  const std::string page1 =
      Fetch(GetVersion(p.id(), 1, opb::GetVersionRequest::VIEW_BASIC).sandbox_url())->body;

  const pid_t sandbox = sandboxes_[0].service.process->pid();
  ASSERT_EQ(::kill(sandbox, SIGSTOP), 0);
  const std::string request = common::NewUuid();
  opb::Run restore;
  ASSERT_TRUE(RestoreVersion(p.id(), 1, request, &restore).ok());
  opb::Run seen;
  ASSERT_TRUE(Eventually([&] {
    seen = Runs(p.id())[0];
    return seen.id() == restore.id() && seen.state() == opb::Run::STATE_RUNNING;
  }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // into its sandbox calls
  RestartOrchestrator(0, {});
  ASSERT_EQ(::kill(sandbox, SIGCONT), 0);

  opb::Run restored = WaitForEnd(restore.id(), absl::Seconds(90));
  ASSERT_EQ(restored.state(), opb::Run::STATE_SUCCEEDED) << restored.error();
  EXPECT_EQ(restored.attempt(), 2) << "taken over after the kill";
  EXPECT_EQ(restored.version(), 3);
  const opb::ListVersionsResponse versions = ListVersions(p.id());
  ASSERT_EQ(versions.versions_size(), 3) << "exactly one new version";
  EXPECT_EQ(versions.versions(0).restored_from(), 1);
  EXPECT_EQ(Fetch(versions.versions(0).sandbox_url())->body, page1);
  int messages = 0;
  for (const mpb::Message& m : Messages(p.id())) messages += m.run_id() == restore.id();
  EXPECT_EQ(messages, 1) << "exactly one message for the restore";
  opb::Run again;
  ASSERT_TRUE(RestoreVersion(p.id(), 1, request, &again).ok());
  EXPECT_EQ(again.id(), restore.id()) << "the request still names the same run";
}

// A deleted project's versions are NOT_FOUND once its purge reached the orchestrator, though the
// replica had just answered from its cache of who owns the project: the purge makes it forget
// (its cache's answers would otherwise last a minute here). A replica not told of the purge
// stops answering once its own answer expires (2 s here).
TEST_F(VersionsE2ETest, ADeletedProjectsVersionsAreNotFoundOnceItsPurgeArrives) {
  RestartOrchestrator(0, {{"QAI_PROJECT_OWNER_TTL", "60s"}});
  StartOrchestrator(1, {{"QAI_PROJECT_OWNER_TTL", "2s"}});
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  auto list = [&](int replica) {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    opb::ListVersionsRequest req;
    req.set_project_id(p.id());
    opb::ListVersionsResponse resp;
    return stubs_[replica]->ListVersions(&ctx, req, &resp).error_code();
  };
  ASSERT_EQ(list(0), StatusCode::OK);  // both replicas now hold that alice owns p
  ASSERT_EQ(list(1), StatusCode::OK);

  ASSERT_TRUE(DeleteProject(p.id()).ok());
  // Well within replica 0's 60 s.
  EXPECT_TRUE(Eventually([&] { return list(0) == StatusCode::NOT_FOUND; }, absl::Seconds(20)));
  EXPECT_EQ(GetVersionCode(p.id(), 1), StatusCode::NOT_FOUND);
  EXPECT_TRUE(Eventually([&] { return list(1) == StatusCode::NOT_FOUND; }, absl::Seconds(10)));
  EXPECT_TRUE(Eventually([&] {
    grpc::ClientContext ctx;
    AsUser(ctx, "alice");
    mpb::ListMessagesRequest req;
    req.set_project_id(p.id());
    mpb::ListMessagesResponse resp;
    return messages_stub_->ListMessages(&ctx, req, &resp).error_code() == StatusCode::NOT_FOUND;
  }));
}

// The workspace diffed against the latest version while a run is in its check (`sleep 4`) shows
// the run's edit, read without disturbing it; once the run made version 2, nothing is left
// against it; and with the sandbox restarted (the workspace no longer open anywhere), the latest
// version stands for the workspace and the answer says so.
TEST_F(VersionsE2ETest, TheWorkspaceDiffsAgainstTheLatestVersionWhileARunWorksInIt) {
  ppb::Project p = CreateProject("Build a bakery site");
  ASSERT_EQ(WaitForEnd(WaitForRuns(p.id(), 1)[0].id()).version(), 1);
  ASSERT_TRUE(Send(p.id(), "Add a counter [[sleep 4]]").ok());
  std::vector<opb::Run> runs;
  ASSERT_TRUE(Eventually([&] {
    runs = Runs(p.id());
    return runs.size() == 2 && runs[0].state() == opb::Run::STATE_RUNNING &&
           runs[0].iteration() >= 3;
  }));
  opb::DiffVersionsResponse during = DiffWorkspace(p.id(), 1);
  EXPECT_FALSE(during.workspace_not_open());
  ASSERT_EQ(during.files_size(), 1) << during.DebugString();
  EXPECT_EQ(during.files(0).path(), "index.html");
  EXPECT_EQ(during.files(0).change(), opb::FileDiff::CHANGE_MODIFIED);
  EXPECT_NE(during.files(0).unified_diff().find("\n+"), std::string::npos);
  EXPECT_NE(during.files(0).unified_diff().find("ounter"), std::string::npos)
      << during.files(0).unified_diff();
  opb::DiffVersionsResponse back = DiffWorkspace(p.id(), 1, /*backwards=*/true);
  ASSERT_EQ(back.files_size(), 1);
  EXPECT_EQ(back.files(0).old_size(), during.files(0).new_size()) << "the workspace is `from`";

  opb::Run run = WaitForEnd(runs[0].id());
  ASSERT_EQ(run.state(), opb::Run::STATE_SUCCEEDED) << run.error() << ": it was not disturbed";
  ASSERT_EQ(run.version(), 2);
  opb::DiffVersionsResponse after = DiffWorkspace(p.id(), 2);
  EXPECT_EQ(after.files_size(), 0) << after.DebugString();
  EXPECT_FALSE(after.workspace_not_open());
  EXPECT_EQ(DiffWorkspace(p.id(), 1).files_size(), 1) << "version 2 is what the run made";

  KillSandbox(0);
  StartSandbox(0);
  opb::DiffVersionsResponse restarted;
  ASSERT_TRUE(Eventually([&] {  // UNAVAILABLE while the orchestrator reconnects
    restarted.Clear();
    return TryDiffWorkspace(p.id(), 1, false, &restarted).ok();
  }));
  EXPECT_TRUE(restarted.workspace_not_open());
  ASSERT_EQ(restarted.files_size(), 1) << "version 2 stood for the workspace";
  EXPECT_NE(restarted.files(0).unified_diff().find("ounter"), std::string::npos);
}

}  // namespace
}  // namespace qai::testing

// Attacks on qai-sandbox by an agent's own commands, each driven the way a model would drive it:
// the scripted OpenAI endpoint (tests/support/fake_openai.h) answers the agent's turns with the
// attack as a `terminal` (or file tool) call, and a real suite of processes (qai-projects,
// qai-messages, qai-sandbox, qai-orchestrator) runs it. Every test asserts what the command
// printed and its exit code (the run's tool_result events), what the model was shown (the
// conversation the endpoint got next), and the effect on the machine itself (files, processes,
// the database) as the test, root, sees it.
//
// Each attack runs in two deployments:
//  - Local: everything as root, as tools/demo.sh runs it (qai-sandbox with QAI_SANDBOX=bwrap,
//    its root in the temporary directory);
//  - Kubernetes: qai-projects, qai-messages and qai-orchestrator as uid 10001 with no
//    capabilities and no_new_privs; qai-sandbox as the first process of a container would be:
//    PID 1 of a PID namespace of its own (what commands orphan is its to reap), root with only
//    the capabilities its manifest grants (kSandboxCapabilities: each of them is needed) and
//    no_new_privs (allowPrivilegeEscalation: false), its root outside /tmp as on a volume. Not
//    emulated: a seccomp or AppArmor profile (RuntimeDefault would refuse bwrap its user
//    namespace).
//
// The sandbox must really be there: with QAI_SANDBOX=unsafe-none, ItLeavesNoProcessBehind,
// ItCannotConnectToAnyService, ItCannotSeeAnotherProjectsCommands and
// ItCannotReadSecretsWriteOutsideOrGainPrivileges fail.

#include <gtest/gtest.h>
#include <httplib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/auth.h"
#include "common/ids.h"
#include "qai/messages/v1/messages.grpc.pb.h"
#include "qai/orchestrator/v1/orchestrator.grpc.pb.h"
#include "qai/projects/v1/projects.grpc.pb.h"
#include "services/orchestrator/model/prompts.h"
#include "services/sandbox/proc_stat.h"
#include "services/sandbox/store.h"
#include "soci/postgresql/soci-postgresql.h"
#include "soci/soci.h"
#include "tests/e2e/harness.h"
#include "tests/support/fake_openai.h"
#include "tests/support/paths.h"
#include "tests/support/pg_server.h"

namespace qai::testing {
namespace {

namespace ppb = qai::projects::v1;
namespace mpb = qai::messages::v1;
namespace opb = qai::orchestrator::v1;
using nlohmann::json;
using ToolResult = opb::RunEvent::ToolResult;

enum class Deployment { kLocal, kKubernetes };

const char* DeploymentName(Deployment d) {
  return d == Deployment::kLocal ? "Local" : "Kubernetes";
}
// Test names and failures show the deployment by name.
void PrintTo(Deployment d, std::ostream* os) { *os << DeploymentName(d); }

// What Kubernetes grants qai-sandbox's container: root, every capability dropped but these
// (SYS_ADMIN for the workspaces' mounts; in the pod's own user namespace there, on the host here).
constexpr char kSandboxCapabilities[] =
    "-all,+chown,+dac_override,+fowner,+kill,+setgid,+setuid,+sys_admin";
// The same as a /proc/<pid>/status mask: CHOWN 0, DAC_OVERRIDE 1, FOWNER 3, KILL 5, SETGID 6,
// SETUID 7, SYS_ADMIN 21.
constexpr uint64_t kSandboxCapabilityMask =
    (1 << 0) | (1 << 1) | (1 << 3) | (1 << 5) | (1 << 6) | (1 << 7) | (uint64_t{1} << 21);
// The user the other services' images run as.
constexpr char kServiceUid[] = "10001";
// How many uids each test's qai-sandbox may give out. Each takes a range of its own, so that
// other suites running on the machine (whose databases allocate the same uids from the same
// default range) never look like this one's projects.
constexpr uid_t kProjectUids = 10000;
constexpr char kOpenAiKey[] = "sk-attacks-0123456789abcdef";
// QAI_SANDBOX_FILE_SIZE_MB's default, in bytes.
constexpr int64_t kFileSizeLimit = int64_t{128} << 20;
// Each workspace's quota (QAI_SANDBOX_DISK_MB, QAI_SANDBOX_DISK_FILES): above one largest file.
constexpr int64_t kDiskLimit = int64_t{160} << 20;
constexpr int kFilesLimit = 2000;

std::string Local(int port) { return absl::StrCat("127.0.0.1:", port); }

bool Eventually(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(30)) {
  const absl::Time until = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return true;
}

std::optional<std::string> ReadHostFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string HostFileDigest(const std::string& path) {
  std::optional<std::string> content = ReadHostFile(path);
  return content ? common::Sha256Hex(*content) : "(unreadable)";
}

bool HostPathExists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// HostProcess: a process of the machine, as /proc shows it to root.
struct HostProcess {
  int pid = 0;
  int ppid = 0;
  char state = '?';
  uid_t uid = 0;
  std::string cmdline;
};

std::vector<HostProcess> HostProcesses() {
  std::vector<HostProcess> out;
  std::error_code error;
  for (std::filesystem::directory_iterator it("/proc", error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename();
    HostProcess p;
    if (!absl::SimpleAtoi(name, &p.pid)) continue;
    std::optional<std::string> stat = ReadHostFile(absl::StrCat("/proc/", name, "/stat"));
    std::optional<std::string> status = ReadHostFile(absl::StrCat("/proc/", name, "/status"));
    if (!stat || !status) continue;  // gone meanwhile
    std::optional<sandbox::ProcStat> parsed = sandbox::ParseProcStat(*stat);
    if (!parsed) continue;
    p.state = parsed->state;
    p.ppid = parsed->ppid;
    const size_t uid = status->find("\nUid:");
    if (uid != std::string::npos)
      p.uid = static_cast<uid_t>(std::strtoul(status->c_str() + uid + 5, nullptr, 10));
    std::string cmdline = ReadHostFile(absl::StrCat("/proc/", name, "/cmdline")).value_or("");
    std::replace(cmdline.begin(), cmdline.end(), '\0', ' ');
    p.cmdline = std::move(cmdline);
    out.push_back(std::move(p));
  }
  return out;
}

std::vector<HostProcess> ProcessesWhere(const std::function<bool(const HostProcess&)>& match) {
  std::vector<HostProcess> out;
  for (HostProcess& p : HostProcesses()) {
    if (match(p)) out.push_back(std::move(p));
  }
  return out;
}

std::vector<HostProcess> ZombieChildren(int parent) {
  return ProcessesWhere([&](const HostProcess& p) { return p.ppid == parent && p.state == 'Z'; });
}

std::vector<HostProcess> Children(int parent) {
  return ProcessesWhere([&](const HostProcess& p) { return p.ppid == parent; });
}

std::string Describe(const std::vector<HostProcess>& processes) {
  std::vector<std::string> lines;
  for (const HostProcess& p : processes) {
    lines.push_back(absl::StrCat(p.pid, " ppid=", p.ppid, " state=", std::string(1, p.state),
                                 " uid=", p.uid, " ", p.cmdline));
  }
  return absl::StrJoin(lines, "\n");
}

// StatusField: a line's value of /proc/<pid>/status ("" when missing).
std::string StatusField(int pid, const std::string& field) {
  std::optional<std::string> status = ReadHostFile(absl::StrCat("/proc/", pid, "/status"));
  if (!status) return "";
  for (absl::string_view line : absl::StrSplit(*status, '\n')) {
    if (absl::ConsumePrefix(&line, field + ":"))
      return std::string(absl::StripAsciiWhitespace(line));
  }
  return "";
}

size_t Count(std::string_view text, std::string_view needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string_view::npos;
       at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

uint64_t Hex(const std::string& text) { return std::strtoull(text.c_str(), nullptr, 16); }

// Refusals: what a command says when the system refused it.
constexpr const char* kRefusals[] = {"No such file or directory", "Permission denied",
                                     "Read-only file system", "Operation not permitted",
                                     "Invalid cross-device link"};

// Call: one tool call of a scripted turn.
struct Call {
  std::string tool;
  json arguments;
};

// Turn: the model's answer to one turn of the agent: tool calls, and `before`, run when the
// endpoint is asked for this turn, so after every command of the turns before it has ended.
struct Turn {
  std::vector<Call> calls;
  std::function<void(const json& messages)> before;
};

Turn Terminal(const std::string& command, std::function<void(const json&)> before = {}) {
  return {.calls = {{orchestrator::kToolTerminal, {{"command", command}}}},
          .before = std::move(before)};
}

Turn WriteFiles(const std::vector<std::pair<std::string, std::string>>& files) {
  json list = json::array();
  for (const auto& [path, content] : files) list.push_back({{"path", path}, {"content", content}});
  return {.calls = {{orchestrator::kToolWriteFiles, {{"files", list}}}}};
}

Turn ReadFiles(const std::vector<std::string>& paths) {
  return {.calls = {{orchestrator::kToolReadFiles, {{"files", paths}}}}};
}

// CallId: turn t's call c (both from 1): "t<turn>" when it is the turn's only call, else
// "t<turn>.<call>".
std::string CallId(size_t turn, size_t call, size_t calls) {
  return calls == 1 ? absl::StrCat("t", turn) : absl::StrCat("t", turn, ".", call);
}

// ToolOutput: what the conversation `messages` shows the model as the result of call_id.
std::optional<std::string> ToolOutput(const json& messages, const std::string& call_id) {
  for (const json& m : messages) {
    if (m.value("role", "") == "tool" && m.value("tool_call_id", "") == call_id)
      return m.value("content", "");
  }
  return std::nullopt;
}

// LastUserMessage: the prompt of an agent's conversation ("" when there is none).
std::string LastUserMessage(const json& messages, size_t* index = nullptr) {
  for (size_t i = messages.size(); i-- > 0;) {
    if (messages[i].value("role", "") == "user" && messages[i]["content"].is_string()) {
      if (index != nullptr) *index = i;
      return messages[i]["content"].get<std::string>();
    }
  }
  return "";
}

// Started: a prompt whose run was asked for.
struct Started {
  std::string project_id;
  std::string owner;
  std::string marker;  // in the prompt: which script answers its run
  std::string run_id;
};

// Outcome: a run that ended, with its events.
struct Outcome {
  Started started;
  opb::Run run;
  std::vector<opb::RunEvent> events;

  // Result: the tool_result event of call_id (an empty one, and a test failure, when missing).
  ToolResult Result(const std::string& call_id) const {
    for (const opb::RunEvent& e : events) {
      if (e.has_tool_result() && e.tool_result().call_id() == call_id) return e.tool_result();
    }
    ADD_FAILURE() << "no tool_result for " << call_id << " in run " << run.id() << " ("
                  << run.error() << ")";
    return {};
  }
};

class SandboxAttacksE2ETest : public ::testing::TestWithParam<Deployment> {
 protected:
  void SetUp() override {
    db_url_ = PgServer::Shared().CreateDatabase();
    const bool k8s = GetParam() == Deployment::kKubernetes;
    // tools/demo.sh keeps workspaces in its temporary directory; the manifest mounts a volume
    // at /var/lib/qai/sandboxes, which, as /var/tmp, no sandbox sees.
    root_ = absl::StrCat(k8s ? "/var/tmp" : TempRoot(), "/qai-attacks-", common::NewUuid());
    projects_port_ = FreePort();
    messages_port_ = FreePort();
    orchestrator_port_ = FreePort();
    sandbox_port_ = FreePort();
    preview_port_ = FreePort();
    fake_.SetFallback([this](const FakeOpenAi::Request& r) { return Answer(r); });
    first_uid_ = 1100000000 + static_cast<uid_t>(std::random_device()() % 80000) * kProjectUids;

    // As the images' user, no capabilities, no way to gain any.
    SpawnOptions unprivileged;
    if (k8s) {
      unprivileged.wrapper = {"setpriv",
                              absl::StrCat("--reuid=", kServiceUid),
                              absl::StrCat("--regid=", kServiceUid),
                              "--clear-groups",
                              "--inh-caps=-all",
                              "--bounding-set=-all",
                              "--no-new-privs",
                              "--pdeathsig=KILL",
                              "--"};
    }
    // As the first process of a container: PID 1 of a PID namespace of its own (so orphaned
    // processes are its to reap), root with the manifest's capabilities only. Dropping
    // capabilities clears the parent-death signal, so it is set again.
    SpawnOptions sandbox_options;
    if (k8s) {
      sandbox_options.wrapper = {"unshare",
                                 "--pid",
                                 "--fork",
                                 "--kill-child",
                                 "--mount-proc",
                                 "setpriv",
                                 absl::StrCat("--inh-caps=", kSandboxCapabilities),
                                 absl::StrCat("--bounding-set=", kSandboxCapabilities),
                                 "--no-new-privs",
                                 "--pdeathsig=KILL",
                                 "--"};
    }

    auto projects = StartService("services/projects/qai-projects",
                                 {{"QAI_DATABASE_URL", db_url_},
                                  {"QAI_LISTEN_ADDR", Local(projects_port_)},
                                  {"QAI_MESSAGES_ADDR", Local(messages_port_)},
                                  {"QAI_ORCHESTRATOR_ADDR", Local(orchestrator_port_)}},
                                 unprivileged);
    ASSERT_TRUE(projects.ok()) << projects.status();
    projects_ = std::move(*projects);
    EnvVars model_env = {{"QAI_MODEL_PROVIDER", "openai"}, {"QAI_OPENAI_MODEL", "fake-model"}};
    EnvVars messages_env = {{"QAI_DATABASE_URL", db_url_},
                            {"QAI_LISTEN_ADDR", Local(messages_port_)},
                            {"QAI_PROJECTS_ADDR", Local(projects_port_)},
                            {"QAI_ORCHESTRATOR_ADDR", Local(orchestrator_port_)},
                            {"QAI_OUTBOX_MAX_BACKOFF", "1s"}};
    messages_env.insert(messages_env.end(), model_env.begin(), model_env.end());
    auto messages = StartService("services/messages/qai-messages", messages_env, unprivileged);
    ASSERT_TRUE(messages.ok()) << messages.status();
    messages_ = std::move(*messages);
    auto sandbox = StartService(
        "services/sandbox/qai-sandbox",
        {{"QAI_DATABASE_URL", db_url_},
         {"QAI_LISTEN_ADDR", Local(sandbox_port_)},
         {"QAI_SANDBOX", "bwrap"},
         {"QAI_SANDBOX_ROOT", root_},
         {"QAI_SANDBOX_UIDS", absl::StrCat(first_uid_, "-", first_uid_ + kProjectUids - 1)},
         {"QAI_PREVIEW_ADDR", Local(preview_port_)},
         {"QAI_COMMAND_TIMEOUT", "60s"},
         {"QAI_SANDBOX_DISK_MB", absl::StrCat(kDiskLimit >> 20)},
         {"QAI_SANDBOX_DISK_FILES", absl::StrCat(kFilesLimit)},
         {"QAI_DRAIN_TIMEOUT", "2s"}},
        sandbox_options);
    ASSERT_TRUE(sandbox.ok()) << sandbox.status();
    sandbox_ = std::move(*sandbox);
    sandbox_pid_ = sandbox_.process->pid();
    if (k8s) {  // unshare's child
      std::vector<HostProcess> children = Children(sandbox_pid_);
      ASSERT_EQ(children.size(), 1u) << Describe(children);
      sandbox_pid_ = children[0].pid;
      ASSERT_TRUE(absl::StrContains(children[0].cmdline, "qai-sandbox")) << children[0].cmdline;
      ASSERT_EQ(StatusField(sandbox_pid_, "NSpid"), absl::StrCat(sandbox_pid_, "\t1"))
          << "PID 1 of its namespace";
    }
    EnvVars orchestrator_env = {{"QAI_DATABASE_URL", db_url_},
                                {"QAI_LISTEN_ADDR", Local(orchestrator_port_)},
                                {"QAI_PROJECTS_ADDR", Local(projects_port_)},
                                {"QAI_MESSAGES_ADDR", Local(messages_port_)},
                                {"QAI_SANDBOX_ADDR", Local(sandbox_port_)},
                                {"QAI_OPENAI_BASE_URL", fake_.base_url()},
                                {"QAI_OPENAI_API_KEY", kOpenAiKey},
                                {"QAI_OPENAI_TIMEOUT", "30s"},
                                {"QAI_COMMAND_TIMEOUT", "60s"},
                                {"QAI_WORKERS", "4"},
                                {"QAI_RUN_LEASE", "10s"},
                                {"QAI_DRAIN_TIMEOUT", "2s"}};
    orchestrator_env.insert(orchestrator_env.end(), model_env.begin(), model_env.end());
    auto orchestrator =
        StartService("services/orchestrator/qai-orchestrator", orchestrator_env, unprivileged);
    ASSERT_TRUE(orchestrator.ok()) << orchestrator.status();
    orchestrator_ = std::move(*orchestrator);

    projects_stub_ = ppb::ProjectService::NewStub(projects_.Channel());
    messages_stub_ = mpb::MessageService::NewStub(messages_.Channel());
    orchestrator_stub_ = opb::AgentOrchestrator::NewStub(orchestrator_.Channel());

    // The deployment is what it claims to be.
    const int orchestrator_pid = orchestrator_.process->pid(), sandbox_pid = sandbox_pid_;
    if (k8s) {
      for (const RunningService* svc : {&projects_, &messages_, &orchestrator_}) {
        const int pid = svc->process->pid();
        ASSERT_TRUE(absl::StartsWith(StatusField(pid, "Uid"), absl::StrCat(kServiceUid, "\t")))
            << StatusField(pid, "Uid");
        ASSERT_EQ(Hex(StatusField(pid, "CapEff")), 0u);
        ASSERT_EQ(Hex(StatusField(pid, "CapPrm")), 0u);
        ASSERT_EQ(StatusField(pid, "NoNewPrivs"), "1");
      }
      ASSERT_TRUE(absl::StartsWith(StatusField(sandbox_pid, "Uid"), "0\t"));
      ASSERT_EQ(Hex(StatusField(sandbox_pid, "CapEff")), kSandboxCapabilityMask);
      ASSERT_EQ(Hex(StatusField(sandbox_pid, "CapBnd")), kSandboxCapabilityMask);
      ASSERT_EQ(StatusField(sandbox_pid, "NoNewPrivs"), "1");
    } else {
      ASSERT_TRUE(absl::StartsWith(StatusField(orchestrator_pid, "Uid"), "0\t"));
      ASSERT_TRUE(absl::StartsWith(StatusField(sandbox_pid, "Uid"), "0\t"));
    }
  }

  void TearDown() override {
    // Whatever an attack did: every service lives on, qai-sandbox has no zombie child left, and
    // no process of any project outlived its command.
    for (const RunningService* svc : {&projects_, &messages_, &sandbox_, &orchestrator_}) {
      if (svc->process == nullptr) continue;
      EXPECT_TRUE(svc->process->Running()) << svc->process->Output();
    }
    if (sandbox_.process != nullptr) {
      const int pid = sandbox_pid_;
      EXPECT_TRUE(Eventually([&] { return ZombieChildren(pid).empty(); }, absl::Seconds(5)))
          << "zombie children of qai-sandbox:\n"
          << Describe(ZombieChildren(pid));
    }
    EXPECT_TRUE(Eventually([&] { return ProjectProcesses().empty(); }, absl::Seconds(10)))
        << "processes of projects' users:\n"
        << Describe(ProjectProcesses());
    if (HasFailure()) {
      for (const RunningService* svc : {&sandbox_, &orchestrator_}) {
        if (svc->process == nullptr) continue;
        std::string out = svc->process->Output();
        if (out.size() > 6000) out = "..." + out.substr(out.size() - 6000);
        std::cerr << "---- " << (svc == &sandbox_ ? "qai-sandbox" : "qai-orchestrator")
                  << " log (tail)\n"
                  << out << "\n";
      }
    }
    orchestrator_ = {};
    sandbox_ = {};
    messages_ = {};
    projects_ = {};
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }

  // --- the scripted model ---

  // Script: how the model answers a prompt holding `marker`: the turns, then a last turn that
  // writes index.html (page) and ends the run with a summary.
  void Script(const std::string& marker, std::vector<Turn> turns, const std::string& page) {
    std::lock_guard lock(mu_);
    scripts_[marker] = {std::move(turns), page};
  }

  FakeOpenAi::Reply Answer(const FakeOpenAi::Request& r) {
    static const json kNoMessages = json::array();
    const json& messages = r.json.contains("messages") ? r.json.at("messages") : kNoMessages;
    const std::string system = messages.empty() ? "" : messages[0].value("content", "");
    if (system == orchestrator::kTitleSystemPrompt) return FakeOpenAi::Json("Attack Page");
    if (system == orchestrator::kResponseSystemPrompt) return FakeOpenAi::Json("Done.");
    size_t user = 0;
    const std::string prompt = LastUserMessage(messages, &user);
    // The turns answered so far: the assistant's messages after the prompt.
    size_t answered = 0;
    for (size_t i = user + 1; i < messages.size(); ++i)
      answered += messages[i].value("role", "") == "assistant";
    std::vector<Turn> turns;
    std::string page;
    {
      std::lock_guard lock(mu_);
      for (const auto& [marker, script] : scripts_) {
        if (absl::StrContains(prompt, marker)) std::tie(turns, page) = script;
      }
    }
    if (answered < turns.size()) {
      const Turn& turn = turns[answered];
      if (turn.before) turn.before(messages);
      std::vector<FakeOpenAi::ToolCall> calls;
      for (size_t c = 0; c < turn.calls.size(); ++c) {
        calls.push_back({CallId(answered + 1, c + 1, turn.calls.size()), turn.calls[c].tool,
                         turn.calls[c].arguments.dump()});
      }
      return FakeOpenAi::Json("", calls);
    }
    if (answered == turns.size() && !page.empty()) {
      return FakeOpenAi::Json(
          "Done. <task_summary>Built the page.</task_summary>",
          {{"done", orchestrator::kToolWriteFiles,
            json{{"files", {{{"path", "index.html"}, {"content", page}}}}}.dump()}});
    }
    return FakeOpenAi::Error(400, "no script for this conversation");
  }

  // ModelSaw: the result of call_id the model was shown in the run of `started`.
  std::string ModelSaw(const Started& started, const std::string& call_id) const {
    std::optional<std::string> seen;
    for (const FakeOpenAi::Request& r : fake_.requests()) {
      if (!r.json.contains("messages")) continue;
      const json& messages = r.json["messages"];
      if (!absl::StrContains(LastUserMessage(messages), started.marker)) continue;
      if (std::optional<std::string> out = ToolOutput(messages, call_id)) seen = out;
    }
    EXPECT_TRUE(seen.has_value()) << "the model was never shown " << call_id;
    return seen.value_or("");
  }

  // ExpectRefused: call_id's command failed, and what the model was shown says why.
  void ExpectRefused(const Outcome& o, const std::string& call_id) const {
    const ToolResult r = o.Result(call_id);
    const std::string seen = ModelSaw(o.started, call_id);
    EXPECT_NE(r.exit_code(), 0) << call_id << " printed: " << r.output();
    bool refused = false;
    for (const char* refusal : kRefusals) refused = refused || absl::StrContains(seen, refusal);
    EXPECT_TRUE(refused) << call_id << ": the model was shown: " << seen;
  }

  // ExpectRefusedOrPrivate: as ExpectRefused, but a command that wrote below the sandbox root
  // succeeds when the root is under /tmp: the command has a /tmp of its own, where the path
  // is its to make. The test checks the machine for the real effect.
  void ExpectRefusedOrPrivate(const Outcome& o, const std::string& call_id) const {
    if (absl::StartsWith(root_, "/tmp/") && o.Result(call_id).exit_code() == 0) return;
    ExpectRefused(o, call_id);
  }

  // --- projects and runs ---

  // Begin: a new project of owner whose first prompt runs `turns` (then writes page).
  Started Begin(const std::string& owner, std::vector<Turn> turns,
                const std::string& page = "<h1>mine</h1>") {
    Started s{.owner = owner, .marker = absl::StrCat("attack-", common::NewUuid())};
    Script(s.marker, std::move(turns), page);
    grpc::ClientContext ctx;
    AsUser(ctx, owner);
    ppb::CreateProjectRequest req;
    req.set_initial_prompt(absl::StrCat("Build a page (", s.marker, ")"));
    ppb::Project p;
    grpc::Status status = projects_stub_->CreateProject(&ctx, req, &p);
    EXPECT_TRUE(status.ok()) << status.error_message();
    s.project_id = p.id();
    std::vector<opb::Run> runs = WaitForRuns(s, 1);
    EXPECT_EQ(runs.size(), 1u);
    if (!runs.empty()) s.run_id = runs[0].id();
    return s;
  }

  // BeginFollowUp: the project's next prompt, running `turns`.
  Started BeginFollowUp(const Started& project, std::vector<Turn> turns,
                        const std::string& page = "<h1>mine</h1>") {
    Started s = project;
    s.marker = absl::StrCat("attack-", common::NewUuid());
    Script(s.marker, std::move(turns), page);
    const size_t before = Runs(s).size();
    grpc::ClientContext ctx;
    AsUser(ctx, s.owner);
    mpb::CreateMessageRequest req;
    req.set_project_id(s.project_id);
    req.set_content(absl::StrCat("Change the page (", s.marker, ")"));
    mpb::Message m;
    grpc::Status status = messages_stub_->CreateMessage(&ctx, req, &m);
    EXPECT_TRUE(status.ok()) << status.error_message();
    std::vector<opb::Run> runs = WaitForRuns(s, before + 1);
    EXPECT_EQ(runs.size(), before + 1);
    if (!runs.empty()) s.run_id = runs[0].id();  // newest first
    return s;
  }

  // Finish: the run once it ended, with every event it streamed.
  Outcome Finish(const Started& s) {
    Outcome o{.started = s};
    grpc::ClientContext ctx;
    AsUser(ctx, s.owner);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(180));
    opb::WatchRunRequest req;
    req.set_run_id(s.run_id);
    auto reader = orchestrator_stub_->WatchRun(&ctx, req);
    opb::RunEvent e;
    while (reader->Read(&e)) o.events.push_back(e);
    grpc::Status status = reader->Finish();
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_TRUE(Eventually([&] {
      grpc::ClientContext get_ctx;
      AsUser(get_ctx, s.owner);
      opb::GetRunRequest get;
      get.set_id(s.run_id);
      return orchestrator_stub_->GetRun(&get_ctx, get, &o.run).ok() &&
             o.run.state() >= opb::Run::STATE_SUCCEEDED;
    }));
    return o;
  }

  Outcome RunNew(const std::string& owner, std::vector<Turn> turns,
                 const std::string& page = "<h1>mine</h1>") {
    return Finish(Begin(owner, std::move(turns), page));
  }

  Outcome RunFollowUp(const Started& project, std::vector<Turn> turns,
                      const std::string& page = "<h1>mine</h1>") {
    return Finish(BeginFollowUp(project, std::move(turns), page));
  }

  std::vector<opb::Run> Runs(const Started& s) {
    grpc::ClientContext ctx;
    AsUser(ctx, s.owner);
    opb::ListRunsRequest req;
    req.set_project_id(s.project_id);
    opb::ListRunsResponse resp;
    if (!orchestrator_stub_->ListRuns(&ctx, req, &resp).ok()) return {};
    return {resp.runs().begin(), resp.runs().end()};
  }

  std::vector<opb::Run> WaitForRuns(const Started& s, size_t n) {
    std::vector<opb::Run> runs;
    Eventually([&] { return (runs = Runs(s)).size() >= n; });
    return runs;
  }

  // WaitForGate: a command that waits (up to 50 s) until the test calls OpenGate on its project.
  static std::string WaitForGate() {
    return "for i in $(seq 250); do [ -e gate ] && break; sleep 0.2; done";
  }
  void OpenGate(const Started& s) const {
    std::ofstream(Seen(Workspace(s.project_id)) + "/gate") << "open\n";
  }

  // Victim: bob's project, whose run wrote secret.txt and index.html, both holding secret_.
  Outcome Victim() {
    Outcome v = RunNew("bob", {WriteFiles({{"secret.txt", secret_}})}, VictimPage());
    EXPECT_EQ(v.run.state(), opb::Run::STATE_SUCCEEDED) << v.run.error();
    EXPECT_EQ(ReadHostFile(Seen(Workspace(v)) + "/index.html").value_or(""), VictimPage());
    return v;
  }
  std::string VictimPage() const { return absl::StrCat("<h1>Victim ", secret_, "</h1>"); }

  // --- the machine, as root sees it ---

  // ProjectProcesses: every process running as one of this qai-sandbox's projects' users.
  std::vector<HostProcess> ProjectProcesses() const {
    return ProcessesWhere([&](const HostProcess& p) {
      return p.uid >= first_uid_ && p.uid < first_uid_ + kProjectUids;
    });
  }

  std::string Workspace(const Outcome& o) const { return Workspace(o.started.project_id); }
  std::string Workspace(const std::string& project_id) const {
    return absl::StrCat(root_, "/workspaces/", project_id);
  }
  // Seen: a path as qai-sandbox sees it, through its root: each workspace is a filesystem
  // mounted in its own mount namespace.
  std::string Seen(const std::string& path) const {
    return absl::StrCat("/proc/", sandbox_pid_, "/root", path);
  }

  // ProjectUid: the uid qai-sandbox allocated to the project.
  int64_t ProjectUid(const std::string& project_id) {
    soci::session s(soci::postgresql, db_url_);
    int64_t uid = -1;
    s << "SELECT uid FROM sandbox.users WHERE project_id = CAST(:p AS uuid)", soci::use(project_id),
        soci::into(uid);
    return uid;
  }

  // SnapshotFiles: every file of every snapshot of the project, path -> content.
  std::map<std::string, std::string> SnapshotFiles(const std::string& project_id) {
    auto pool = common::DbPool::Create({.url = db_url_, .size = 1});
    EXPECT_TRUE(pool.ok()) << pool.status();
    sandbox::SandboxStore store(pool->get());
    soci::session s(soci::postgresql, db_url_);
    std::map<std::string, std::string> files;
    soci::rowset<std::string> ids =
        (s.prepare << "SELECT id::text FROM sandbox.snapshots WHERE project_id = CAST(:p AS uuid)",
         soci::use(project_id));
    for (const std::string& id : ids) {
      absl::StatusOr<sandbox::SnapshotRecord> snapshot = store.GetSnapshot(id);
      EXPECT_TRUE(snapshot.ok()) << snapshot.status();
      if (snapshot.ok()) files.insert(snapshot->files->begin(), snapshot->files->end());
    }
    return files;
  }

  // SnapshotOf: the snapshot id of a preview URL (http://host:port/<id>/).
  static std::string SnapshotOf(const std::string& url) {
    std::vector<std::string> parts = absl::StrSplit(url, '/', absl::SkipEmpty());
    return parts.empty() ? "" : parts.back();
  }

  // Fetch: an HTTP GET of a preview URL.
  static httplib::Result Fetch(const std::string& url, const std::string& path = "") {
    const size_t host_start = url.find("//") + 2;
    const size_t path_start = url.find('/', host_start);
    httplib::Client client("http://" + url.substr(host_start, path_start - host_start));
    return client.Get(url.substr(path_start) + path);
  }

  // Secrets: what no command may ever print: the services' keys and database.
  std::vector<std::string> Secrets() const {
    std::vector<std::string> out = {"QAI_", kJwtSecret, ServiceKey("orchestrator"), kOpenAiKey,
                                    db_url_};
    for (absl::string_view part : absl::StrSplit(db_url_, ' ')) {
      if (absl::ConsumePrefix(&part, "dbname=")) out.emplace_back(part);
    }
    return out;
  }

  // ExpectNoSecrets: text holds none of Secrets().
  void ExpectNoSecrets(const std::string& text, const std::string& what) const {
    for (const std::string& secret : Secrets()) {
      EXPECT_FALSE(absl::StrContains(text, secret)) << what << " shows \"" << secret << "\":\n"
                                                    << text;
    }
  }

  std::string db_url_, root_;
  const std::string secret_ = absl::StrCat("victim-secret-", common::NewUuid());
  uid_t first_uid_ = 0;  // of the uids qai-sandbox gives projects
  int sandbox_pid_ = 0;  // qai-sandbox's own (sandbox_.process may be the wrapper's)
  int projects_port_ = 0, messages_port_ = 0, orchestrator_port_ = 0, sandbox_port_ = 0,
      preview_port_ = 0;
  RunningService projects_, messages_, sandbox_, orchestrator_;
  std::unique_ptr<ppb::ProjectService::Stub> projects_stub_;
  std::unique_ptr<mpb::MessageService::Stub> messages_stub_;
  std::unique_ptr<opb::AgentOrchestrator::Stub> orchestrator_stub_;
  std::mutex mu_;
  std::map<std::string, std::pair<std::vector<Turn>, std::string>>
      scripts_;  // by marker; guarded by mu_
  // Last, so that it stops answering before what its answers read is gone.
  FakeOpenAi fake_;
};

// 1. The services' environments (database URL, keys) through /proc.
TEST_P(SandboxAttacksE2ETest, ItCannotReadTheServicesEnvironments) {
  const int orchestrator_pid = orchestrator_.process->pid(), sandbox_pid = sandbox_pid_;
  // There is something to steal: root sees it.
  ASSERT_TRUE(absl::StrContains(
      ReadHostFile(absl::StrCat("/proc/", orchestrator_pid, "/environ")).value_or(""),
      "QAI_DATABASE_URL="));
  ASSERT_TRUE(
      absl::StrContains(ReadHostFile(absl::StrCat("/proc/", sandbox_pid, "/environ")).value_or(""),
                        "QAI_DATABASE_URL="));
  Outcome o = RunNew("mallory",
                     {Terminal("env"), Terminal("cat /proc/*/environ | tr '\\0' '\\n' | grep QAI_"),
                      Terminal(absl::StrCat("cat /proc/", orchestrator_pid, "/environ")),
                      Terminal(absl::StrCat("cat /proc/", sandbox_pid, "/environ")),
                      Terminal("cat /proc/1/environ; echo; cat /proc/$PPID/environ")});
  for (const char* id : {"t1", "t2", "t3", "t4", "t5"}) {
    ExpectNoSecrets(o.Result(id).output(), id);
    ExpectNoSecrets(ModelSaw(o.started, id), id);
  }
  // Its own environment is the clean one.
  EXPECT_EQ(o.Result("t1").exit_code(), 0);
  EXPECT_TRUE(absl::StrContains(o.Result("t1").output(), "HOME=" + Workspace(o)))
      << o.Result("t1").output();
  EXPECT_NE(o.Result("t2").exit_code(), 0) << "grep found a QAI_ variable";
  ExpectRefused(o, "t3");
  ExpectRefused(o, "t4");
}

// 2. Which other projects exist: the workspaces' directory and the sandbox root.
TEST_P(SandboxAttacksE2ETest, ItCannotListOtherProjectsWorkspaces) {
  Outcome victim = Victim();
  const std::string& victim_id = victim.started.project_id;
  ASSERT_TRUE(HostPathExists(Seen(Workspace(victim))));
  Outcome o =
      RunNew("mallory", {Terminal("ls -la " + root_ + "/workspaces"), Terminal("ls -la .."),
                         Terminal("ls -la " + root_), Terminal("ls -la " + root_ + "/state")});
  for (const char* id : {"t1", "t2", "t3", "t4"}) {
    EXPECT_FALSE(absl::StrContains(o.Result(id).output(), victim_id)) << id << ":\n"
                                                                      << o.Result(id).output();
  }
  // It sees its own workspace at most, or is told no.
  for (const char* id : {"t1", "t2"}) {
    const std::string seen = ModelSaw(o.started, id);
    EXPECT_TRUE(absl::StrContains(seen, o.started.project_id) ||
                absl::StrContains(seen, "Permission denied"))
        << seen;
  }
  ExpectRefused(o, "t4");
}

// 3. Another project's files, by their path.
TEST_P(SandboxAttacksE2ETest, ItCannotReadAnotherProjectsFiles) {
  Outcome victim = Victim();
  const std::string dir = Workspace(victim);
  Outcome o = RunNew(
      "mallory", {Terminal("cat " + dir + "/index.html"), Terminal("cat " + dir + "/secret.txt"),
                  Terminal("cp -r " + dir + " stolen && ls -R stolen"),
                  Terminal("cat ../" + victim.started.project_id + "/secret.txt")});
  for (const char* id : {"t1", "t2", "t3", "t4"}) {
    EXPECT_FALSE(absl::StrContains(o.Result(id).output(), secret_)) << id;
    EXPECT_FALSE(absl::StrContains(ModelSaw(o.started, id), secret_)) << id;
    ExpectRefused(o, id);
  }
  // Nothing of the victim's reached the attacker's workspace or its snapshots.
  for (const auto& entry : std::filesystem::recursive_directory_iterator(Seen(Workspace(o)))) {
    if (!entry.is_regular_file()) continue;
    EXPECT_FALSE(absl::StrContains(ReadHostFile(entry.path()).value_or(""), secret_))
        << entry.path();
  }
  for (const auto& [path, content] : SnapshotFiles(o.started.project_id)) {
    EXPECT_FALSE(absl::StrContains(content, secret_)) << path;
  }
}

// 4. Another project's workspace renamed away and one planted in its place.
TEST_P(SandboxAttacksE2ETest, ItCannotReplaceAnotherProjectsWorkspace) {
  Outcome victim = Victim();
  const std::string& victim_id = victim.started.project_id;
  const std::string workspaces = root_ + "/workspaces";
  Outcome o = RunNew(
      "mallory", {Terminal(absl::StrCat("mv ../", victim_id, " ../x")),
                  Terminal(absl::StrCat("mv ", workspaces, "/", victim_id, " ", workspaces, "/x")),
                  Terminal(absl::StrCat("mkdir -p ", workspaces, "/", victim_id,
                                        " && echo '<h1>pwned</h1>' > ", workspaces, "/", victim_id,
                                        "/index.html")),
                  Terminal(absl::StrCat("rm -r ", workspaces, "/", victim_id)),
                  Terminal(absl::StrCat("ln -s \"$PWD\" ", workspaces, "/x-link"))});
  for (const char* id : {"t1", "t2", "t4"}) ExpectRefused(o, id);
  // Making a directory or a link where it may write: its own private /tmp, when the sandbox
  // root is under /tmp as in tools/demo.sh.
  for (const char* id : {"t3", "t5"}) ExpectRefusedOrPrivate(o, id);

  // On the machine: the victim's workspace is where it was, its own, with its files.
  std::set<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(Seen(workspaces)))
    names.insert(entry.path().filename());
  EXPECT_EQ(names, (std::set<std::string>{victim_id, o.started.project_id}));
  struct stat st;
  ASSERT_EQ(::lstat(Seen(Workspace(victim)).c_str(), &st), 0);
  EXPECT_TRUE(S_ISDIR(st.st_mode));
  EXPECT_EQ(static_cast<int64_t>(st.st_uid), ProjectUid(victim_id));
  EXPECT_EQ(st.st_mode & 07777, 0700u);
  EXPECT_EQ(ReadHostFile(Seen(Workspace(victim)) + "/index.html").value_or(""), VictimPage());
  // Its preview still serves its own page, and its next run finds its files.
  auto page = Fetch(victim.run.sandbox_url());
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_EQ(page->body, VictimPage());
  Outcome next = RunFollowUp(victim.started,
                             {ReadFiles({"index.html", "secret.txt"}), Terminal("cat index.html")},
                             VictimPage());
  EXPECT_EQ(next.run.state(), opb::Run::STATE_SUCCEEDED) << next.run.error();
  EXPECT_TRUE(absl::StrContains(next.Result("t1").output(), secret_)) << next.Result("t1").output();
  EXPECT_EQ(next.Result("t2").output(), VictimPage());
}

// 5. Symlinks where the service keeps its marks of what a workspace holds
// (<root>/state/<project>, rewritten in place; older versions wrote it through
// <project>.tmp), where older layouts kept them (next
// to the workspaces, as <project>.version, and in the workspace itself), pointing at files of
// the system: the service writes its marks after it, and follows none.
TEST_P(SandboxAttacksE2ETest, ItsSymlinksWhereTheServiceKeepsItsMarksChangeNothing) {
  const std::vector<std::string> etc = {"/etc/passwd", "/etc/shadow", "/etc/group"};
  std::map<std::string, std::string> digests;
  for (const std::string& f : etc) digests[f] = HostFileDigest(f);
  Outcome victim = Victim();
  const std::string& v = victim.started.project_id;
  const std::string state = root_ + "/state";
  // The mark names the snapshot the victim's preview shows.
  const std::string victim_snapshot = SnapshotOf(victim.run.sandbox_url());
  ASSERT_EQ(ReadHostFile(Seen(absl::StrCat(state, "/", v))).value_or(""), victim_snapshot);
  const std::string self = "$(basename \"$PWD\")";
  Outcome o = RunNew(
      "mallory", {Terminal(absl::StrCat("ln -s /etc/passwd ", state, "/", v, ".tmp\n",          //
                                        "ln -sf /etc/passwd ", state, "/", v, "\n",             //
                                        "ln -s /etc/shadow ", state, "/", v, ".version.tmp\n",  //
                                        "ln -s /etc/passwd ", state, "/", self, ".tmp")),
                  Terminal(absl::StrCat("ln -s /etc/shadow ", root_, "/", v,
                                        ".version.tmp && ln -s /etc/shadow ", root_, "/", self,
                                        ".version.tmp")),
                  Terminal("ln -s /etc/passwd .version && ln -s /etc/shadow .version.tmp && ln -s "
                           "/etc/passwd index.html.tmp && "
                           "echo planted")});
  const ToolResult marks = o.Result("t1");
  ExpectRefused(o, "t1");
  EXPECT_EQ(Count(marks.output(), "ln: failed"), 4) << marks.output();
  ExpectRefusedOrPrivate(o, "t2");
  EXPECT_EQ(o.Result("t3").output(), "planted\n") << "its own workspace is its own";
  EXPECT_EQ(o.run.state(), opb::Run::STATE_SUCCEEDED) << o.run.error();

  // The service's marks are its own files, the victim's unchanged; nothing was planted beside
  // the workspaces; the system's files are as they were.
  std::map<std::string, std::string> marks_now;
  for (const auto& entry : std::filesystem::directory_iterator(Seen(state))) {
    EXPECT_TRUE(entry.is_regular_file() && !entry.is_symlink()) << entry.path();
    marks_now[entry.path().filename()] = ReadHostFile(entry.path()).value_or("");
  }
  EXPECT_EQ(marks_now,
            (std::map<std::string, std::string>{
                {v, victim_snapshot}, {o.started.project_id, SnapshotOf(o.run.sandbox_url())}}));
  std::set<std::string> beside;
  for (const auto& entry : std::filesystem::directory_iterator(Seen(root_)))
    beside.insert(entry.path().filename());
  EXPECT_EQ(beside, (std::set<std::string>{"state", "workspaces"}));
  for (const std::string& f : etc) EXPECT_EQ(HostFileDigest(f), digests[f]) << f;
  // Both projects' next runs work, each on its own files.
  Outcome again = RunFollowUp(o.started, {Terminal("cat index.html")});
  EXPECT_EQ(again.run.state(), opb::Run::STATE_SUCCEEDED) << again.run.error();
  EXPECT_EQ(again.Result("t1").output(), "<h1>mine</h1>");
  Outcome next = RunFollowUp(victim.started, {Terminal("cat index.html secret.txt")}, VictimPage());
  EXPECT_EQ(next.run.state(), opb::Run::STATE_SUCCEEDED) << next.run.error();
  EXPECT_EQ(next.Result("t1").output(), VictimPage() + secret_);
  for (const std::string& f : etc) EXPECT_EQ(HostFileDigest(f), digests[f]) << f;
}

// 6. A process left behind with setsid (and nohup, and a shell ignoring SIGHUP and SIGTERM).
TEST_P(SandboxAttacksE2ETest, ItLeavesNoProcessBehind) {
  std::mutex mu;
  // The project's processes a moment after the command ended (its sandbox takes that long to
  // die and be reaped), zombies included.
  std::optional<std::vector<HostProcess>> remaining;
  int64_t uid = -1;
  Outcome o = RunNew(
      "mallory",
      {Terminal("id -u"),
       Terminal("setsid sleep 300 & nohup sleep 301 >/dev/null 2>&1 & "
                "(setsid bash -c 'trap \"\" HUP TERM; exec sleep 302' &); sleep 0.5; echo started"),
       Terminal("ps -eo pid,args", [&](const json& messages) {
         const std::string printed = ToolOutput(messages, "t1").value_or("");
         std::lock_guard lock(mu);
         if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(printed), &uid)) return;
         auto of_uid = [&](const HostProcess& p) { return p.uid == static_cast<uid_t>(uid); };
         Eventually([&] { return ProcessesWhere(of_uid).empty(); }, absl::Seconds(3));
         remaining = ProcessesWhere(of_uid);
       })});
  EXPECT_EQ(o.Result("t2").exit_code(), 0);
  EXPECT_EQ(o.Result("t2").output(), "started\n");
  std::lock_guard lock(mu);
  EXPECT_EQ(uid, ProjectUid(o.started.project_id)) << "id -u printed: " << o.Result("t1").output();
  EXPECT_GE(uid, first_uid_);
  ASSERT_TRUE(remaining.has_value());
  EXPECT_TRUE(remaining->empty()) << "left after the command ended:\n" << Describe(*remaining);
  EXPECT_FALSE(absl::StrContains(o.Result("t3").output(), "sleep 30")) << o.Result("t3").output();
  for (const HostProcess& p : ProjectProcesses())
    EXPECT_FALSE(absl::StrContains(p.cmdline, "sleep 30")) << p.cmdline;
}

// 7. Processes without end: the processes limit stops them, and neither this project nor
// another is the worse for it.
TEST_P(SandboxAttacksE2ETest, AForkStormStopsAtTheLimitAndHurtsNoOne) {
  const int sandbox_pid = sandbox_pid_;
  std::atomic<size_t> zombies_after_storm{999};
  Started bystander =
      Begin("bob", {Terminal("for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done")});
  Outcome o =
      RunNew("mallory", {Terminal("for i in $(seq 300); do (sleep 10 &); done; echo storm-done"),
                         Terminal("echo still-alive", [&](const json&) {
                           Eventually([&] { return ZombieChildren(sandbox_pid).empty(); },
                                      absl::Seconds(3));
                           zombies_after_storm = ZombieChildren(sandbox_pid).size();
                         })});
  const ToolResult storm = o.Result("t1");
  EXPECT_TRUE(absl::StrContains(storm.output(), "Resource temporarily unavailable"))
      << "the processes limit fired:\n"
      << storm.output();
  EXPECT_EQ(zombies_after_storm, 0u);
  EXPECT_EQ(o.Result("t2").exit_code(), 0);
  EXPECT_EQ(o.Result("t2").output(), "still-alive\n");
  Outcome b = Finish(bystander);
  EXPECT_EQ(b.Result("t1").exit_code(), 0);
  EXPECT_TRUE(absl::StrContains(b.Result("t1").output(), "tick 6")) << b.Result("t1").output();
  Outcome other = RunNew("carol", {Terminal("echo other-alive")});
  EXPECT_EQ(other.Result("t1").exit_code(), 0);
  EXPECT_EQ(other.Result("t1").output(), "other-alive\n");
  EXPECT_EQ(other.run.state(), opb::Run::STATE_SUCCEEDED) << other.run.error();
}

// 8. Many ordinary commands: each is reaped.
TEST_P(SandboxAttacksE2ETest, ManyCommandsLeaveNoZombies) {
  const int sandbox_pid = sandbox_pid_;
  // 300 commands, in answers of 100 (an answer holds at most kMaxToolCalls).
  constexpr size_t kAnswers = 3, kPerAnswer = 100;
  std::vector<Turn> turns(kAnswers);
  for (Turn& many : turns) {
    for (size_t i = 0; i < kPerAnswer; ++i)
      many.calls.push_back({orchestrator::kToolTerminal, {{"command", "true"}}});
  }
  std::mutex mu;
  std::vector<HostProcess> zombies, children;
  turns.push_back(Terminal("echo done", [&](const json&) {
    // What a command orphans is reaped within a moment.
    Eventually([&] { return Children(sandbox_pid).empty(); }, absl::Seconds(3));
    std::lock_guard lock(mu);
    zombies = ZombieChildren(sandbox_pid);
    children = Children(sandbox_pid);
  }));
  Outcome o = RunNew("mallory", std::move(turns));
  ASSERT_EQ(o.run.state(), opb::Run::STATE_SUCCEEDED) << o.run.error();
  for (size_t answer = 1; answer <= kAnswers; ++answer) {
    for (size_t i = 1; i <= kPerAnswer; ++i) {
      const ToolResult r = o.Result(CallId(answer, i, kPerAnswer));
      EXPECT_EQ(r.exit_code(), 0) << "answer " << answer << ", command " << i << ": " << r.output();
    }
  }
  std::lock_guard lock(mu);
  EXPECT_TRUE(zombies.empty()) << Describe(zombies);
  EXPECT_TRUE(children.empty()) << "qai-sandbox's children between commands:\n"
                                << Describe(children);
}

// 9. The services' ports, PostgreSQL's, the model endpoint's and a cloud's metadata service.
TEST_P(SandboxAttacksE2ETest, ItCannotConnectToAnyService) {
  const std::vector<int> ports = {orchestrator_port_, sandbox_port_,  PgServer::Shared().port(),
                                  projects_port_,     messages_port_, preview_port_,
                                  fake_.port()};
  Outcome o =
      RunNew("mallory",
             {Terminal(absl::StrCat("for p in ", absl::StrJoin(ports, " "),
                                    "; do if timeout 5 bash -c \"exec 3<>/dev/tcp/127.0.0.1/$p\" "
                                    "2>/dev/null; then echo \"port $p: open\"; "
                                    "else echo \"port $p: closed\"; fi; done")),
              Terminal(absl::StrCat("exec 3<>/dev/tcp/127.0.0.1/", PgServer::Shared().port())),
              Terminal("timeout 5 bash -c 'exec 3<>/dev/tcp/169.254.169.254/80'")});
  const std::string scan = o.Result("t1").output();
  for (int port : ports)
    EXPECT_TRUE(absl::StrContains(scan, absl::StrCat("port ", port, ": closed\n"))) << scan;
  EXPECT_FALSE(absl::StrContains(scan, "open")) << scan;
  const std::string pg = ModelSaw(o.started, "t2");
  EXPECT_NE(o.Result("t2").exit_code(), 0);
  EXPECT_TRUE(absl::StrContains(pg, "Connection refused") ||
              absl::StrContains(pg, "Network is unreachable"))
      << pg;
  EXPECT_NE(o.Result("t3").exit_code(), 0) << o.Result("t3").output();
}

// 10. Another project's command line, while it runs.
TEST_P(SandboxAttacksE2ETest, ItCannotSeeAnotherProjectsCommands) {
  const std::string marker = absl::StrCat("victim-command-", common::NewUuid());
  Started victim = Begin("bob", {Terminal(WaitForGate() + "; echo " + marker)});
  auto victim_running = [&] {
    return !ProcessesWhere([&](const HostProcess& p) {
              return absl::StrContains(p.cmdline, marker);
            }).empty();
  };
  ASSERT_TRUE(Eventually(victim_running)) << "the victim's command never ran";
  Outcome o = RunNew("mallory",
                     {Terminal("ps -eo user,pid,args"),
                      Terminal("cat /proc/[0-9]*/cmdline | tr '\\0' ' '"), Terminal("ls /proc")});
  EXPECT_TRUE(victim_running()) << "the victim's command ran all along";
  OpenGate(victim);
  for (const char* id : {"t1", "t2", "t3"}) {
    EXPECT_FALSE(absl::StrContains(o.Result(id).output(), marker)) << id << ":\n"
                                                                   << o.Result(id).output();
    EXPECT_FALSE(absl::StrContains(ModelSaw(o.started, id), marker)) << id;
  }
  EXPECT_EQ(o.Result("t1").exit_code(), 0);
  EXPECT_TRUE(absl::StrContains(o.Result("t1").output(), "ps -eo user,pid,args"))
      << "it sees its own";
  Outcome v = Finish(victim);
  EXPECT_EQ(v.Result("t1").exit_code(), 0);
  EXPECT_EQ(v.Result("t1").output(), marker + "\n");
}

// 11. Secrets of the system, writing outside the workspace, and privileges.
TEST_P(SandboxAttacksE2ETest, ItCannotReadSecretsWriteOutsideOrGainPrivileges) {
  const std::string tag = absl::StrCat("qai-attack-", common::NewUuid());
  const std::vector<std::string> dirs = {"/tmp", "/var/tmp", "/dev/shm", "/usr",
                                         "/etc", root_,      "/"};
  std::string writes;
  for (const std::string& d : dirs) {
    absl::StrAppend(&writes, "echo x > ", d == "/" ? "" : d, "/", tag, " && echo 'wrote ", d,
                    "'\n");
  }
  Outcome o =
      RunNew("mallory",
             {Terminal("cat /etc/shadow"), Terminal(writes),
              Terminal("id; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs):' /proc/self/status"),
              Terminal("unshare --user --map-root-user id -u"), Terminal("ls -a /tmp /dev/shm")});
  ExpectRefused(o, "t1");
  EXPECT_FALSE(absl::StrContains(o.Result("t1").output(), "root:")) << o.Result("t1").output();
  // Nothing was written on the machine (a private /tmp and /dev/shm may take the file for the
  // command's life).
  for (const std::string& d : dirs) {
    EXPECT_FALSE(HostPathExists(absl::StrCat(d == "/" ? "" : d, "/", tag))) << d;
  }
  const std::string wrote = ModelSaw(o.started, "t2");
  EXPECT_TRUE(absl::StrContains(wrote, "Read-only file system") ||
              absl::StrContains(wrote, "Permission denied"))
      << wrote;
  for (const char* d : {"/usr", "/etc", "/var/tmp"})
    EXPECT_FALSE(absl::StrContains(wrote, absl::StrCat("wrote ", d, "\n"))) << wrote;
  EXPECT_FALSE(absl::StrContains(o.Result("t5").output(), tag)) << "gone with the command:\n"
                                                                << o.Result("t5").output();

  const std::string who = o.Result("t3").output();
  const int64_t uid = ProjectUid(o.started.project_id);
  EXPECT_TRUE(absl::StartsWith(who, absl::StrCat("uid=", uid, " gid=", uid, " groups=", uid, "\n")))
      << who;
  for (const char* set : {"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"}) {
    EXPECT_TRUE(absl::StrContains(who, absl::StrCat(set, ":\t0000000000000000\n")))
        << set << " in\n"
        << who;
  }
  EXPECT_TRUE(absl::StrContains(who, "NoNewPrivs:\t1\n")) << who;
  EXPECT_NE(o.Result("t4").exit_code(), 0)
      << "a user namespace of its own: " << o.Result("t4").output();
  EXPECT_FALSE(absl::StartsWith(o.Result("t4").output(), "0\n"));
}

// 12. The file tools, through links the command made: to another project's files and to the
// system's, and by paths that climb out.
TEST_P(SandboxAttacksE2ETest, TheFileToolsRefuseLinksAndPathsOutOfTheWorkspace) {
  const std::string passwd = HostFileDigest("/etc/passwd");
  Outcome victim = Victim();
  const std::string v = victim.started.project_id;
  const std::string vdir = Workspace(victim);
  Outcome o = RunNew(
      "mallory",
      {Terminal(absl::StrCat("ln -s /etc/passwd passwd.txt && ln -s ", vdir,
                             "/secret.txt stolen.txt && ln -s ", vdir,
                             " victim && ln -s /etc etc && echo linked")),
       Terminal(absl::StrCat("ln /etc/passwd hard-passwd.txt; ln ", vdir,
                             "/secret.txt hard-stolen.txt")),
       ReadFiles({"passwd.txt", "stolen.txt", "victim/secret.txt", "etc/passwd", "hard-passwd.txt",
                  "hard-stolen.txt", absl::StrCat("../", v, "/secret.txt"), "/etc/passwd",
                  vdir + "/secret.txt"}),
       WriteFiles({{"passwd.txt", "pwned"},
                   {"stolen.txt", "pwned"},
                   {"victim/index.html", "pwned"},
                   {"etc/passwd", "pwned"},
                   {absl::StrCat("../", v, "/index.html"), "pwned"},
                   {"/etc/passwd", "pwned"},
                   {vdir + "/index.html", "pwned"}})});
  EXPECT_EQ(o.Result("t1").exit_code(), 0) << "links in its own workspace are its own business";
  ExpectRefused(o, "t2");
  const json read = json::parse(ModelSaw(o.started, "t3"), nullptr, false);
  ASSERT_TRUE(read.is_array()) << ModelSaw(o.started, "t3");
  EXPECT_EQ(read.size(), 9u);
  for (const json& r : read) {
    EXPECT_FALSE(r.contains("content")) << r.dump();
    EXPECT_FALSE(r.value("error", "").empty()) << r.dump();
  }
  EXPECT_FALSE(absl::StrContains(o.Result("t3").output(), secret_));
  EXPECT_FALSE(absl::StrContains(o.Result("t3").output(), "root:"));
  const ToolResult wrote = o.Result("t4");
  EXPECT_NE(wrote.exit_code(), 0);
  const std::vector<std::string> lines = absl::StrSplit(ModelSaw(o.started, "t4"), '\n');
  EXPECT_EQ(lines.size(), 7u);
  for (const std::string& line : lines) EXPECT_TRUE(absl::StartsWith(line, "error: ")) << line;

  // The machine: the system's files and the victim's as they were; the attacker's snapshot has
  // its page and nothing a link led to.
  EXPECT_EQ(HostFileDigest("/etc/passwd"), passwd);
  EXPECT_EQ(ReadHostFile(Seen(vdir) + "/index.html").value_or(""), VictimPage());
  EXPECT_EQ(ReadHostFile(Seen(vdir) + "/secret.txt").value_or(""), secret_);
  std::set<std::string> paths;
  for (const auto& [path, content] : SnapshotFiles(o.started.project_id)) paths.insert(path);
  EXPECT_EQ(paths, std::set<std::string>{"index.html"});
  auto leaked = Fetch(o.run.sandbox_url(), "passwd.txt");
  ASSERT_TRUE(leaked);
  EXPECT_EQ(leaked->status, 404);
}

// 13. kill -9 -1: every process it may signal.
TEST_P(SandboxAttacksE2ETest, KillAllReachesOnlyItsOwnProcesses) {
  const std::string marker = absl::StrCat("bystander-", common::NewUuid());
  Started bystander = Begin("bob", {Terminal(WaitForGate() + "; echo " + marker)});
  ASSERT_TRUE(Eventually([&] {
    return !ProcessesWhere([&](const HostProcess& p) {
              return absl::StrContains(p.cmdline, marker);
            }).empty();
  }));
  Outcome o = RunNew("mallory",
                     {Terminal("sleep 30 & kill -9 -1; echo after-kill"), Terminal("echo alive")});
  OpenGate(bystander);
  const ToolResult kill = o.Result("t1");
  EXPECT_TRUE(kill.exit_code() == 0 || kill.exit_code() == 137)
      << kill.exit_code() << ": " << kill.output();
  if (kill.exit_code() == 137) {
    EXPECT_TRUE(absl::StartsWith(kill.output(), "[sandbox] exit code 137: killed by SIGKILL"))
        << kill.output();
  }
  EXPECT_EQ(o.Result("t2").output(), "alive\n");
  Outcome b = Finish(bystander);
  EXPECT_EQ(b.Result("t1").exit_code(), 0) << b.Result("t1").output();
  EXPECT_EQ(b.Result("t1").output(), marker + "\n");
  EXPECT_EQ(b.run.state(), opb::Run::STATE_SUCCEEDED) << b.run.error();
}

// 14. A file larger than the limit, and output without end: stopped, and the model told why.
TEST_P(SandboxAttacksE2ETest, AHugeFileAndAFloodStopAtTheLimitsAndSaySo) {
  Outcome o = RunNew("mallory",
                     {Terminal("head -c 200M /dev/zero > big.bin"), Terminal("stat -c %s big.bin"),
                      Terminal("yes flood | head -c 100M"), Terminal("echo alive")});
  const ToolResult big = o.Result("t1");
  EXPECT_EQ(big.exit_code(), 153);
  const std::string why =
      "[sandbox] exit code 153: killed by SIGXFSZ: it tried to write a file larger than the limit "
      "of 128 MiB\n";
  EXPECT_TRUE(absl::StartsWith(big.output(), why)) << big.output();
  EXPECT_TRUE(absl::StartsWith(ModelSaw(o.started, "t1"), why)) << ModelSaw(o.started, "t1");
  EXPECT_EQ(o.Result("t2").output(), absl::StrCat(kFileSizeLimit, "\n"));
  struct stat st;
  ASSERT_EQ(::stat((Seen(Workspace(o)) + "/big.bin").c_str(), &st), 0);
  EXPECT_EQ(st.st_size, kFileSizeLimit);
  const ToolResult flood = o.Result("t3");
  EXPECT_EQ(flood.exit_code(), 137);
  EXPECT_TRUE(absl::StartsWith(flood.output(),
                               "[sandbox] exit code 137: killed for printing more than 16 MiB"))
      << flood.output().substr(0, 300);
  EXPECT_TRUE(flood.truncated());
  EXPECT_EQ(o.Result("t4").output(), "alive\n");
  EXPECT_EQ(o.run.state(), opb::Run::STATE_SUCCEEDED) << o.run.error();
}

// 15. Filling the disk: the workspace's quota stops it, in bytes and in files, and says so;
// the project carries on once it cleans up, and another project never noticed.
TEST_P(SandboxAttacksE2ETest, FillingTheDiskStopsAtTheWorkspacesQuota) {
  Outcome o = RunNew(
      "mallory",
      {Terminal("head -c 100M /dev/zero > a.bin; head -c 100M /dev/zero > b.bin; echo wrote"),
       Terminal("cat a.bin b.bin | wc -c"),
       Terminal("rm -f a.bin b.bin; for i in $(seq 5000); do : > f$i || break; done; echo made $i"),
       Terminal("rm -f f*; echo alive > ok.txt && cat ok.txt")});
  const ToolResult bytes = o.Result("t1");
  EXPECT_TRUE(absl::StrContains(bytes.output(), "No space left on device")) << bytes.output();
  const std::string why =
      "[sandbox] the workspace is full: it may hold at most 160 MiB in 2000 files and directories";
  EXPECT_TRUE(absl::StartsWith(ModelSaw(o.started, "t1"), why)) << ModelSaw(o.started, "t1");
  int64_t used = 0;
  const std::string counted = o.Result("t2").output();  // after the explanation: still full
  EXPECT_TRUE(absl::SimpleAtoi(
      absl::StripAsciiWhitespace(counted.substr(counted.rfind('\n', counted.size() - 2) + 1)),
      &used))
      << counted;
  EXPECT_LE(used, kDiskLimit);
  EXPECT_GT(used, kDiskLimit - (int64_t{8} << 20)) << "it filled the quota";
  const ToolResult files = o.Result("t3");
  EXPECT_TRUE(absl::StrContains(files.output(), "No space left on device"))
      << files.output().substr(0, 300);
  // The workspace's own directory is one of them.
  EXPECT_TRUE(absl::StrContains(files.output(),
                                absl::StrCat("f", kFilesLimit, ": No space left on device")))
      << files.output().substr(0, 300);
  EXPECT_TRUE(absl::StartsWith(ModelSaw(o.started, "t3"), why))
      << ModelSaw(o.started, "t3").substr(0, 300);
  EXPECT_EQ(o.Result("t4").output(), "alive\n");
  EXPECT_EQ(o.run.state(), opb::Run::STATE_SUCCEEDED) << o.run.error();
  Outcome other = RunNew("carol", {Terminal("head -c 50M /dev/zero > c.bin && echo other-fine")});
  EXPECT_EQ(other.Result("t1").output(), "other-fine\n");
}

INSTANTIATE_TEST_SUITE_P(Deployments, SandboxAttacksE2ETest,
                         ::testing::Values(Deployment::kLocal, Deployment::kKubernetes),
                         [](const ::testing::TestParamInfo<Deployment>& info) {
                           return DeploymentName(info.param);
                         });

}  // namespace
}  // namespace qai::testing

// qai-orchbench: the orchestrator's speed benchmarks (tools/bench/orchestrator_bench.sh runs
// them in one sitting). Each mode prints one JSON line on stdout; progress goes to stderr.
//
//   --mode setup     projects and their first messages for the runs below (see setup.h):
//                    --projects-addr, --token, --orchestrator-listen (qai-messages'
//                    QAI_ORCHESTRATOR_ADDR), --plan "name=count=prompt|...", --out-dir.
//                    Writes <out-dir>/<name>.tsv. Line: {"mode","projects","seconds"}
//   --mode runs      StartRun for every prompt of --prompts and waits until all ended
//                    (see run_batch.h): --orchestrator, --api-key, --database-url, --callers,
//                    --workers (the replica's QAI_WORKERS, for the line). Line: {"mode",
//                    "workers","runs","start_errors","succeeded","failed","cancelled",
//                    "unfinished","start_seconds","seconds","rate","queued_*","worked_*","total_*"}
//   --mode latency   event append -> watcher latency (see latency.h). It claims its probe run
//                    first, prints "claimed" to stderr, and only then waits for --replicas
//                    ("label=host:port,..."), which must start after that line (an idle
//                    worker would otherwise claim the run). Line: {"mode","events","rate",
//                    "seconds","append_*", and per replica label L: "L_p50_ms","L_p90_ms",
//                    "L_p99_ms","L_max_ms","L_mean_ms","L_negative","L_missing","L_send_p50_ms",
//                    "L_send_p99_ms"}
//   --mode watchers  --watchers idle WatchRun streams on one replica (--orchestrator, whose
//                    process id is in --pid-file): its VmRSS before and after, and a real run
//                    (--probes, half before, half with the watchers open) plus the append ->
//                    watcher latency on a separate stream, without and with them. The watchers sit
//                    on a long run (--hold: a prompt that sleeps) and --queued runs queued behind
//                    it in its project; cancelling that project ends them all. Claims its
//                    probe run first, like latency (so the replica starts after "claimed").
//
// Exit status: 0 when the mode did what it measures without errors, 1 otherwise (the line is
// still printed when there is something to print), 2 for bad flags.

#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/config.h"
#include "common/db_pool.h"
#include "common/ids.h"
#include "nlohmann/json.hpp"
#include "services/orchestrator/store/run_store.h"
#include "tests/support/proc_status.h"
#include "tools/chainbench/recording_orchestrator.h"
#include "tools/orchbench/calls.h"
#include "tools/orchbench/event_stream.h"
#include "tools/orchbench/idle_watchers.h"
#include "tools/orchbench/latency.h"
#include "tools/orchbench/probe_run.h"
#include "tools/orchbench/run_batch.h"
#include "tools/orchbench/setup.h"
#include "tools/orchbench/stamp.h"

namespace {

using nlohmann::ordered_json;
using qai::common::Config;
namespace ob = ::qai::orchbench;
namespace opb = ::qai::orchestrator::v1;

void Say(const std::string& text) { std::fprintf(stderr, "qai-orchbench: %s\n", text.c_str()); }

int Fail(const absl::Status& status) {
  Say(status.ToString());
  return 1;
}

double Rounded(double ms) { return std::round(ms * 1000) / 1000; }

// Put: a summary as flat keys <prefix>_p50_ms etc.
void Put(ordered_json& line, const std::string& prefix, const qai::chainbench::Summary& s,
         bool all = false) {
  line[prefix + "_p50_ms"] = Rounded(s.p50_ms);
  if (all) line[prefix + "_p90_ms"] = Rounded(s.p90_ms);
  line[prefix + "_p99_ms"] = Rounded(s.p99_ms);
  if (all) {
    line[prefix + "_max_ms"] = Rounded(s.max_ms);
    line[prefix + "_mean_ms"] = Rounded(s.mean_ms);
  }
}

bool Connect(const std::shared_ptr<grpc::Channel>& channel, absl::Duration timeout) {
  return channel->WaitForConnected(absl::ToChronoTime(absl::Now() + timeout));
}

absl::StatusOr<std::unique_ptr<qai::common::DbPool>> Database(const Config& config, int size) {
  if (config.Get("database-url").empty())
    return absl::InvalidArgumentError("--database-url is required");
  return qai::common::DbPool::Create({.url = config.Get("database-url"), .size = size});
}

// ------------------------------------------------------------------------------------------------

int Setup(const Config& config) {
  absl::StatusOr<std::vector<ob::SetupGroup>> groups = ob::ParsePlan(config.Get("plan"));
  if (!groups.ok()) return Fail(groups.status());
  absl::StatusOr<std::unique_ptr<qai::chainbench::RecordingOrchestrator>> stand_in =
      qai::chainbench::RecordingOrchestrator::Start(config.Get("orchestrator-listen"));
  if (!stand_in.ok()) return Fail(stand_in.status());
  auto channel =
      grpc::CreateChannel(config.Get("projects-addr"), grpc::InsecureChannelCredentials());
  if (!Connect(channel, absl::Seconds(10)))
    return Fail(absl::UnavailableError("cannot reach --projects-addr"));
  const absl::Time start = absl::Now();
  absl::StatusOr<std::map<std::string, std::vector<ob::Prompt>>> prompts =
      ob::CreatePrompts(channel, config.Get("token"), **stand_in, *groups,
                        static_cast<int>(config.GetInt("callers")), config.GetDuration("timeout"));
  if (!prompts.ok()) return Fail(prompts.status());
  int projects = 0;
  for (const auto& [name, list] : *prompts) {
    const std::string path = absl::StrCat(config.Get("out-dir"), "/", name, ".tsv");
    std::ofstream out(path);
    for (const ob::Prompt& p : list)
      out << p.project_id << '\t' << p.message_id << '\t' << p.prompt << '\n';
    if (!out) return Fail(absl::InternalError(absl::StrCat("cannot write ", path)));
    projects += static_cast<int>(list.size());
  }
  ordered_json line = {{"mode", "setup"},
                       {"projects", projects},
                       {"seconds", Rounded(absl::ToDoubleSeconds(absl::Now() - start))}};
  std::cout << line.dump() << std::endl;
  return 0;
}

// ------------------------------------------------------------------------------------------------

int Runs(const Config& config) {
  absl::StatusOr<std::vector<ob::Prompt>> prompts = ob::ReadPrompts(config.Get("prompts"));
  if (!prompts.ok()) return Fail(prompts.status());
  absl::StatusOr<std::unique_ptr<qai::common::DbPool>> db = Database(config, 2);
  if (!db.ok()) return Fail(db.status());
  auto channel =
      grpc::CreateChannel(config.Get("orchestrator"), grpc::InsecureChannelCredentials());
  if (!Connect(channel, absl::Seconds(30)))
    return Fail(absl::UnavailableError("cannot reach --orchestrator"));
  ob::Orchestrator orchestrator(channel, config.Get("api-key"), config.Get("token"));
  absl::StatusOr<ob::BatchResult> r =
      ob::RunBatch(orchestrator, **db,
                   {.prompts = *std::move(prompts),
                    .callers = static_cast<int>(config.GetInt("callers")),
                    .timeout = config.GetDuration("timeout")});
  if (!r.ok()) return Fail(r.status());
  ordered_json line = {{"mode", "runs"},
                       {"workers", config.GetInt("workers")},
                       {"runs", r->runs},
                       {"start_errors", r->start_errors},
                       {"succeeded", r->succeeded},
                       {"failed", r->failed},
                       {"cancelled", r->cancelled},
                       {"unfinished", r->unfinished},
                       {"start_seconds", Rounded(r->start_seconds)},
                       {"seconds", Rounded(r->seconds)},
                       {"rate", std::round(r->rate * 10) / 10}};
  Put(line, "queued", r->queued);
  Put(line, "worked", r->worked);
  Put(line, "total", r->total);
  std::cout << line.dump() << std::endl;
  if (!r->first_error.empty()) Say(absl::StrCat("first StartRun error: ", r->first_error));
  return r->start_errors == 0 && r->unfinished == 0 && r->succeeded == r->runs ? 0 : 1;
}

// ------------------------------------------------------------------------------------------------

// ClaimProbe: the probe run, claimed before any replica is there to race for it.
absl::StatusOr<std::unique_ptr<ob::ProbeRun>> ClaimProbe(qai::orchestrator::RunStore& store) {
  absl::StatusOr<std::unique_ptr<ob::ProbeRun>> probe = ob::ProbeRun::Claim(&store, absl::Hours(2));
  if (probe.ok())
    Say(absl::StrCat("claimed probe run ", (*probe)->run_id(), "; waiting for the replicas"));
  return probe;
}

ob::LatencyOptions LatencyFlags(const Config& config) {
  return {.events = static_cast<int>(config.GetInt("events")),
          .rate = static_cast<double>(config.GetInt("rate")),
          .warmup = 20};
}

int Latency(const Config& config) {
  std::vector<std::pair<std::string, std::string>> replicas;
  for (const std::string& item : config.GetList("replicas")) {
    std::pair<std::string, std::string> kv = absl::StrSplit(item, absl::MaxSplits('=', 1));
    if (kv.first.empty() || kv.second.empty())
      return Fail(absl::InvalidArgumentError("--replicas: label=host:port,..."));
    replicas.push_back(kv);
  }
  if (replicas.empty()) return Fail(absl::InvalidArgumentError("--replicas is required"));
  absl::StatusOr<std::unique_ptr<qai::common::DbPool>> db = Database(config, 2);
  if (!db.ok()) return Fail(db.status());
  qai::orchestrator::RunStore store(db->get());
  absl::StatusOr<std::unique_ptr<ob::ProbeRun>> probe = ClaimProbe(store);
  if (!probe.ok()) return Fail(probe.status());

  std::vector<std::unique_ptr<ob::EventStream>> streams;
  std::vector<ob::EventStream*> raw;
  for (const auto& [label, addr] : replicas) {
    auto channel = grpc::CreateChannel(addr, grpc::InsecureChannelCredentials());
    if (!Connect(channel, absl::Seconds(60)))
      return Fail(absl::UnavailableError(absl::StrCat("cannot reach ", addr)));
    streams.push_back(std::make_unique<ob::EventStream>(
        channel, config.Get("token"), (*probe)->run_id(), (*probe)->last_sequence()));
    raw.push_back(streams.back().get());
  }
  const ob::LatencyOptions options = LatencyFlags(config);
  absl::StatusOr<ob::LatencyResult> r = ob::MeasureLatency(**probe, raw, options);
  absl::Status ended = (*probe)->End();
  if (!r.ok()) return Fail(r.status());
  if (!ended.ok()) return Fail(ended);
  bool complete = true;
  for (auto& s : streams) {
    complete = s->WaitUntil([](const auto& got) { return !got.empty() && got.back().terminal; },
                            absl::Seconds(10)) &&
               complete;
  }
  ordered_json line = {{"mode", "latency"},
                       {"events", options.events},
                       {"rate", options.rate},
                       {"seconds", Rounded(r->seconds)}};
  Put(line, "append", r->append);
  for (size_t i = 0; i < replicas.size(); ++i) {
    const std::string& label = replicas[i].first;
    const ob::StreamLatency& s = r->streams[i];
    Put(line, label, s.from_commit, /*all=*/true);
    line[label + "_negative"] = s.from_commit.negative;
    line[label + "_missing"] = s.missing;
    Put(line, label + "_send", s.from_send);
    complete = complete && s.missing == 0;
  }
  std::cout << line.dump() << std::endl;
  return complete ? 0 : 1;
}

// ------------------------------------------------------------------------------------------------

// RaiseFileLimit: the soft RLIMIT_NOFILE up to the hard one; returns the new soft limit.
int64_t RaiseFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return -1;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    (void)setrlimit(RLIMIT_NOFILE, &limit);
    (void)getrlimit(RLIMIT_NOFILE, &limit);
  }
  return static_cast<int64_t>(limit.rlim_cur);
}

struct ProbeFigures {
  std::vector<double> run_ms;     // StartRun called -> its terminal event received
  std::vector<double> worked_ms;  // the run's end_time - start_time
  int failures = 0;
};

// RunProbes: real runs, one after another, each timed from StartRun to its terminal event.
ProbeFigures RunProbes(const ob::Orchestrator& orchestrator,
                       const std::shared_ptr<grpc::Channel>& channel,
                       const std::vector<ob::Prompt>& prompts) {
  ProbeFigures f;
  for (const ob::Prompt& p : prompts) {
    const int64_t start = ob::SteadyNanos();
    absl::StatusOr<opb::Run> run = orchestrator.StartRun(p);
    if (!run.ok()) {
      Say(absl::StrCat("probe StartRun: ", run.status().ToString()));
      ++f.failures;
      continue;
    }
    ob::EventStream stream(channel, orchestrator.token(), run->id(), 0);
    const bool ended = stream.WaitUntil(
        [](const auto& got) { return !got.empty() && got.back().terminal; }, absl::Seconds(60));
    absl::StatusOr<opb::Run> done = orchestrator.WaitForEnd(run->id(), absl::Seconds(10));
    if (!ended || !done.ok() || done->state() != opb::Run::STATE_SUCCEEDED) {
      Say(absl::StrCat("probe run ", run->id(), " did not succeed"));
      ++f.failures;
      continue;
    }
    f.run_ms.push_back(static_cast<double>(stream.received().back().arrival_ns - start) / 1e6);
    const auto micros = [](const google::protobuf::Timestamp& t) {
      return t.seconds() * 1000000 + t.nanos() / 1000;
    };
    f.worked_ms.push_back(
        static_cast<double>(micros(done->end_time()) - micros(done->start_time())) / 1e3);
  }
  return f;
}

// ReadPid: the process id in a file (written by whoever started the replica), once it is there.
absl::StatusOr<pid_t> ReadPid(const std::string& path, absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  for (;;) {
    std::ifstream in(path);
    long pid = 0;
    if (in >> pid && pid > 0) return static_cast<pid_t>(pid);
    if (absl::Now() > until)
      return absl::NotFoundError(absl::StrCat("no process id in --pid-file ", path));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[(v.size() - 1) / 2];
}

int Watchers(const Config& config) {
  const int count = static_cast<int>(config.GetInt("watchers"));
  absl::StatusOr<std::vector<ob::Prompt>> hold = ob::ReadPrompts(config.Get("hold"));
  if (!hold.ok()) return Fail(hold.status());
  if (hold->empty()) return Fail(absl::InvalidArgumentError("--hold has no prompt"));
  absl::StatusOr<std::vector<ob::Prompt>> probes = ob::ReadPrompts(config.Get("probes"));
  if (!probes.ok()) return Fail(probes.status());
  if (probes->size() < 2)
    return Fail(absl::InvalidArgumentError("--probes needs at least two prompts"));
  absl::StatusOr<std::unique_ptr<qai::common::DbPool>> db = Database(config, 2);
  if (!db.ok()) return Fail(db.status());
  qai::orchestrator::RunStore store(db->get());
  absl::StatusOr<std::unique_ptr<ob::ProbeRun>> probe = ClaimProbe(store);
  if (!probe.ok()) return Fail(probe.status());

  const int64_t nofile = RaiseFileLimit();
  auto channel =
      grpc::CreateChannel(config.Get("orchestrator"), grpc::InsecureChannelCredentials());
  if (!Connect(channel, absl::Seconds(60)))
    return Fail(absl::UnavailableError("cannot reach --orchestrator"));
  ob::Orchestrator orchestrator(channel, config.Get("api-key"), config.Get("token"));
  absl::StatusOr<pid_t> pid = ReadPid(config.Get("pid-file"), absl::Seconds(10));
  if (!pid.ok()) return Fail(pid.status());

  // The long run, and runs queued behind it in its project: what the watchers watch.
  absl::StatusOr<opb::Run> long_run = orchestrator.StartRun(hold->front());
  if (!long_run.ok()) return Fail(long_run.status());
  {
    ob::EventStream stream(channel, orchestrator.token(), long_run->id(), 0);
    if (!stream.WaitUntil(
            [](const auto& got) { return !got.empty() && got.back().tool == "terminal"; },
            absl::Seconds(60))) {
      return Fail(absl::DeadlineExceededError("the long run did not reach its command"));
    }
  }
  std::vector<std::string> watched = {long_run->id()};
  for (int i = 0; i < config.GetInt("queued"); ++i) {
    absl::StatusOr<opb::Run> queued = orchestrator.StartRun(
        {hold->front().project_id, qai::common::NewUuid(), absl::StrCat("Queued behind ", i)});
    if (!queued.ok()) return Fail(queued.status());
    if (queued->state() != opb::Run::STATE_QUEUED)
      return Fail(absl::InternalError("a run behind the long one ran"));
    watched.push_back(queued->id());
  }
  std::map<std::string, int64_t> last_sequences;
  for (const std::string& id : watched) {
    absl::StatusOr<opb::Run> run = orchestrator.GetRun(id);
    if (!run.ok()) return Fail(run.status());
    last_sequences[id] = run->last_sequence();
  }

  const std::vector<ob::Prompt> before_prompts(
      probes->begin(), probes->begin() + static_cast<long>(probes->size() / 2));
  const std::vector<ob::Prompt> with_prompts(
      probes->begin() + static_cast<long>(probes->size() / 2), probes->end());
  const ob::LatencyOptions latency_options = LatencyFlags(config);
  auto measure_latency = [&]() -> absl::StatusOr<ob::LatencyResult> {
    ob::EventStream stream(channel, orchestrator.token(), (*probe)->run_id(),
                           (*probe)->last_sequence());
    return ob::MeasureLatency(**probe, {&stream}, latency_options);
  };
  const absl::Duration settle = config.GetDuration("settle");

  Say("without watchers: probe runs and latency");
  ProbeFigures without = RunProbes(orchestrator, channel, before_prompts);
  absl::StatusOr<ob::LatencyResult> latency_without = measure_latency();
  if (!latency_without.ok()) return Fail(latency_without.status());
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(settle));
  absl::StatusOr<int64_t> rss_before = qai::testing::ProcessStatusKiB(*pid, "VmRSS");
  if (!rss_before.ok()) return Fail(rss_before.status());

  Say(absl::StrCat("opening ", count, " watchers on ", watched.size(), " runs"));
  const int channel_count = static_cast<int>(config.GetInt("channels"));
  std::vector<std::shared_ptr<grpc::Channel>> channels =
      ob::MakeChannels(config.Get("orchestrator"), channel_count);
  for (const auto& c : channels) {
    if (!Connect(c, absl::Seconds(10)))
      return Fail(absl::UnavailableError("cannot connect a watcher channel"));
  }
  int exit_code = 0;
  ordered_json line = {{"mode", "watchers"},
                       {"watchers", count},
                       {"channels", channel_count},
                       {"runs_watched", watched.size()},
                       {"rlimit_nofile", nofile}};
  {
    ob::IdleWatchers watchers(channels, orchestrator.token());
    const absl::Time open_start = absl::Now();
    watchers.Open(watched, count);
    const bool caught_up = watchers.WaitUntilCaughtUp(last_sequences, absl::Minutes(3));
    line["open_seconds"] = Rounded(absl::ToDoubleSeconds(absl::Now() - open_start));
    ob::IdleWatchers::Counts opened = watchers.counts();
    line["opened"] = opened.opened - opened.ended;
    if (!caught_up || opened.ended > 0) {
      Say(absl::StrCat("watchers: caught up ", caught_up, ", ended early ", opened.ended, " (",
                       opened.first_error, ")"));
      exit_code = 1;
    }
    std::this_thread::sleep_for(absl::ToChronoNanoseconds(settle));
    absl::StatusOr<int64_t> rss_open = qai::testing::ProcessStatusKiB(*pid, "VmRSS");
    if (!rss_open.ok()) return Fail(rss_open.status());
    line["rss_before_kib"] = *rss_before;
    line["rss_open_kib"] = *rss_open;
    line["kib_per_watcher"] =
        std::round(static_cast<double>(*rss_open - *rss_before) / count * 100) / 100;

    Say("with watchers: probe runs and latency");
    ProbeFigures with = RunProbes(orchestrator, channel, with_prompts);
    absl::StatusOr<ob::LatencyResult> latency_with = measure_latency();
    if (!latency_with.ok()) return Fail(latency_with.status());
    ob::IdleWatchers::Counts idle = watchers.counts();
    line["still_open"] = idle.opened - idle.ended;
    if (without.failures + with.failures > 0) exit_code = 1;

    line["run_ms_without"] = Rounded(Median(without.run_ms));
    line["run_ms_with"] = Rounded(Median(with.run_ms));
    line["worked_ms_without"] = Rounded(Median(without.worked_ms));
    line["worked_ms_with"] = Rounded(Median(with.worked_ms));
    line["probe_runs"] = without.run_ms.size() + with.run_ms.size();
    Put(line, "lat_without", latency_without->streams[0].from_commit);
    line["lat_without_max_ms"] = Rounded(latency_without->streams[0].from_commit.max_ms);
    Put(line, "lat_with", latency_with->streams[0].from_commit);
    line["lat_with_max_ms"] = Rounded(latency_with->streams[0].from_commit.max_ms);
    line["lat_events"] = latency_options.events;

    // The end: the long run is cancelled (its command killed) and the queued ones with it,
    // and every watcher gets its run's terminal event.
    Say("cancelling the watched runs");
    const absl::Time end_start = absl::Now();
    if (absl::Status s = orchestrator.CancelProjectRuns(hold->front().project_id); !s.ok())
      return Fail(s);
    const bool all_ended = watchers.WaitUntilEnded(absl::Minutes(3));
    line["end_seconds"] = Rounded(absl::ToDoubleSeconds(absl::Now() - end_start));
    ob::IdleWatchers::Counts ended = watchers.counts();
    line["ended_ok"] = ended.ended_ok;
    line["saw_terminal"] = ended.saw_terminal;
    if (!all_ended || ended.ended_ok != count || ended.saw_terminal != count) {
      Say(absl::StrCat("watchers: ", ended.ended_ok, " ended OK, ", ended.saw_terminal,
                       " saw the end; first error: ", ended.first_error));
      exit_code = 1;
    }
  }
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(settle));
  absl::StatusOr<int64_t> rss_closed = qai::testing::ProcessStatusKiB(*pid, "VmRSS");
  line["rss_closed_kib"] = rss_closed.value_or(-1);
  if (absl::Status s = (*probe)->End(); !s.ok())
    Say(absl::StrCat("ending the probe run: ", s.ToString()));
  std::cout << line.dump() << std::endl;
  return exit_code;
}

int Run(int argc, char** argv) {
  auto is_positive = [](std::string_view v) -> std::string {
    if (std::string why = qai::common::IsInt(v); !why.empty()) return why;
    return std::stoll(std::string(v)) >= 1 ? "" : "must be at least 1";
  };
  absl::StatusOr<Config> config = Config::Parse(
      {
          {.name = "mode",
           .help = "setup, runs, latency or watchers",
           .required = true,
           .validate = [](std::string_view v) -> std::string {
             return v == "setup" || v == "runs" || v == "latency" || v == "watchers"
                        ? ""
                        : "must be setup, runs, latency or watchers";
           }},
          {.name = "api-key",
           .help = "qai-messages' service key, for StartRun (x-api-key)",
           .secret = true},
          {.name = "database-url",
           .help = "the orchestrator's database (runs, latency, watchers)",
           .secret = true},
          {.name = "orchestrator", .help = "an orchestrator replica, host:port (runs, watchers)"},
          {.name = "timeout",
           .default_value = "600s",
           .help = "setup: for the messages; runs: for the batch",
           .validate = qai::common::IsDuration},
          {.name = "callers",
           .default_value = "4",
           .help = "concurrent CreateProject / StartRun callers",
           .validate = is_positive},
          // setup
          {.name = "projects-addr", .help = "setup: ProjectService, host:port"},
          {.name = "token", .help = "setup: bearer token of the projects' owner", .secret = true},
          {.name = "orchestrator-listen",
           .default_value = "127.0.0.1:0",
           .help = "setup: where the stand-in AgentOrchestrator listens"},
          {.name = "plan", .help = "setup: name=count=prompt|..."},
          {.name = "out-dir", .default_value = ".", .help = "setup: where <name>.tsv files go"},
          // runs
          {.name = "prompts", .help = "runs: a .tsv file from setup"},
          {.name = "workers",
           .default_value = "0",
           .help = "runs: the replica's QAI_WORKERS (only reported)",
           .validate = qai::common::IsInt},
          // latency, watchers
          {.name = "replicas", .help = "latency: label=host:port,..."},
          {.name = "events",
           .default_value = "1000",
           .help = "latency events measured",
           .validate = is_positive},
          {.name = "rate",
           .default_value = "200",
           .help = "latency events per second",
           .validate = is_positive},
          // watchers
          {.name = "pid-file", .help = "watchers: a file that holds the replica's process id"},
          {.name = "watchers",
           .default_value = "10000",
           .help = "watchers: idle streams",
           .validate = is_positive},
          {.name = "channels",
           .default_value = "8",
           .help = "watchers: connections they share",
           .validate = is_positive},
          {.name = "hold", .help = "watchers: .tsv whose first prompt makes a long run"},
          {.name = "queued",
           .default_value = "99",
           .help = "watchers: runs queued behind the long one",
           .validate = qai::common::IsInt},
          {.name = "probes",
           .help = "watchers: .tsv of real runs to time (half before, half with watchers)"},
          {.name = "settle",
           .default_value = "2s",
           .help = "watchers: pause before each memory reading",
           .validate = qai::common::IsDuration},
      },
      argc, argv);
  if (!config.ok()) {
    if (config.status().code() == absl::StatusCode::kNotFound) {  // --help
      std::printf("%s\n", std::string(config.status().message()).c_str());
      return 0;
    }
    Say(std::string(config.status().message()));
    return 2;
  }
  const std::string& mode = config->Get("mode");
  if (mode == "setup") return Setup(*config);
  if (mode == "runs") return Runs(*config);
  if (mode == "latency") return Latency(*config);
  return Watchers(*config);
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }

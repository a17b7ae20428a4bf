#include "tools/chainbench/chain_runner.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/ids.h"

namespace qai::chainbench {
namespace {

using Clock = std::chrono::steady_clock;
namespace pb = ::qai::messages::v1;

// Sent: one CreateMessage call of a phase.
struct Sent {
  bool ok = false;
  std::string message_id;
  std::string content;
  Clock::time_point returned;
  int64_t call_nanos = 0;
};

// Phase: `count` prompts over `concurrency` closed-loop callers. Each caller takes the next
// index and fills that slot only, so the slots need no lock.
class Phase {
 public:
  Phase(const ChainOptions& options, pb::MessageService::StubInterface& stub, std::string name,
        int count)
      : options_(options), stub_(stub), name_(std::move(name)), sent_(static_cast<size_t>(count)) {}

  void Run() {
    const auto start = Clock::now();
    std::vector<std::thread> callers;
    for (int i = 0; i < options_.concurrency; ++i) callers.emplace_back([this] { Loop(); });
    for (std::thread& t : callers) t.join();
    seconds_ = std::chrono::duration<double>(Clock::now() - start).count();
  }

  const std::vector<Sent>& sent() const { return sent_; }
  double seconds() const { return seconds_; }
  int64_t errors() const { return errors_.load(); }

  std::vector<std::string> CreatedIds() const {
    std::vector<std::string> ids;
    for (const Sent& s : sent_) {
      if (s.ok) ids.push_back(s.message_id);
    }
    return ids;
  }

 private:
  void Loop() {
    for (size_t i = next_.fetch_add(1); i < sent_.size(); i = next_.fetch_add(1)) {
      Sent& slot = sent_[i];
      pb::CreateMessageRequest request;
      request.set_project_id(options_.project_id);
      slot.content = absl::StrCat("Chain benchmark, ", name_, " prompt ", i + 1,
                                  ": build a one-page site for a bakery.");
      request.set_content(slot.content);
      request.set_request_id(common::NewUuid());
      grpc::ClientContext context;
      context.set_deadline(std::chrono::system_clock::now() +
                           absl::ToChronoNanoseconds(options_.timeout));
      if (!options_.token.empty())
        context.AddMetadata("authorization", absl::StrCat("Bearer ", options_.token));
      pb::Message message;
      const auto start = Clock::now();
      const grpc::Status status = stub_.CreateMessage(&context, request, &message);
      slot.returned = Clock::now();
      slot.call_nanos =
          std::chrono::duration_cast<std::chrono::nanoseconds>(slot.returned - start).count();
      if (status.ok()) {
        slot.ok = true;
        slot.message_id = message.id();
      } else if (errors_.fetch_add(1) < options_.errors_to_print) {
        std::fprintf(stderr, "qai-chainbench: CreateMessage failed: code %d: %s\n",
                     static_cast<int>(status.error_code()), status.error_message().c_str());
      }
      if (options_.think > absl::ZeroDuration())
        std::this_thread::sleep_for(absl::ToChronoNanoseconds(options_.think));
    }
  }

  const ChainOptions& options_;
  pb::MessageService::StubInterface& stub_;
  const std::string name_;
  std::vector<Sent> sent_;
  std::atomic<size_t> next_{0};
  std::atomic<int64_t> errors_{0};
  double seconds_ = 0;
};

// AwaitStartRuns: waits for the StartRuns of a phase's messages; returns how many never came.
int64_t AwaitStartRuns(const ChainOptions& options, RecordingOrchestrator& orchestrator,
                       const Phase& phase, const char* name) {
  std::vector<std::string> missing =
      orchestrator.WaitFor(phase.CreatedIds(), options.arrival_timeout);
  if (!missing.empty()) {
    std::fprintf(stderr, "qai-chainbench: %zu %s messages got no StartRun within %s (first: %s)\n",
                 missing.size(), name, absl::FormatDuration(options.arrival_timeout).c_str(),
                 missing.front().c_str());
  }
  return static_cast<int64_t>(missing.size());
}

}  // namespace

ChainResult RunChain(const ChainOptions& options, pb::MessageService::StubInterface& stub,
                     RecordingOrchestrator& orchestrator, const std::vector<std::string>& known) {
  ChainResult result;
  Phase warmup(options, stub, "warm-up", options.warmup);
  warmup.Run();
  result.missing += AwaitStartRuns(options, orchestrator, warmup, "warm-up");

  Phase measured(options, stub, "measured", options.prompts);
  measured.Run();
  result.missing += AwaitStartRuns(options, orchestrator, measured, "measured");
  std::this_thread::sleep_for(absl::ToChronoNanoseconds(options.linger));
  const std::map<std::string, Arrival> arrivals = orchestrator.Arrivals();

  std::set<std::string> expected(known.begin(), known.end());
  for (const Phase* phase : {&warmup, &measured}) {
    for (const Sent& s : phase->sent()) {
      if (!s.ok) continue;
      expected.insert(s.message_id);
      auto it = arrivals.find(s.message_id);
      if (it != arrivals.end() &&
          (it->second.project_id != options.project_id || it->second.prompt != s.content)) {
        ++result.mismatched;
      }
    }
  }
  for (const auto& [id, arrival] : arrivals) {
    result.duplicates += arrival.calls - 1;
    if (!expected.contains(id)) ++result.unmatched;
  }

  std::vector<int64_t> chain, create;
  std::optional<Clock::time_point> first_arrival, last_arrival;
  for (const Sent& s : measured.sent()) {
    if (!s.ok) continue;
    create.push_back(s.call_nanos);
    if (auto it = arrivals.find(s.message_id); it != arrivals.end()) {
      const Clock::time_point arrived = it->second.first;
      chain.push_back(
          std::chrono::duration_cast<std::chrono::nanoseconds>(arrived - s.returned).count());
      if (!first_arrival || arrived < *first_arrival) first_arrival = arrived;
      if (!last_arrival || arrived > *last_arrival) last_arrival = arrived;
    }
  }
  if (chain.size() > 1 && *last_arrival > *first_arrival) {
    result.arrival_rate = static_cast<double>(chain.size() - 1) /
                          std::chrono::duration<double>(*last_arrival - *first_arrival).count();
  }
  result.created = static_cast<int64_t>(create.size());
  result.errors = measured.errors() + warmup.errors();
  result.chain = Summarize(std::move(chain));
  result.create = Summarize(std::move(create));
  result.seconds = measured.seconds();
  result.rate = result.seconds > 0 ? static_cast<double>(result.created) / result.seconds : 0;
  return result;
}

}  // namespace qai::chainbench
